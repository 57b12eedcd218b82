"""Signal cells: a real checkpoint's greedy generations with their per-step pooled states.

A cell is the real-AR cell (`toydlm.realar.generate.CellPlan`) decoded with hidden states on: its
samples go to a JSON record in a `CellStore`, its `[N, T, D]` producing-state means to an `.npz`
beside it (float16; they are large and are not results). Both are written once the cell is done, so
an interrupted run loses at most the cell in progress.
"""

from __future__ import annotations

import io
import time
from pathlib import Path

import numpy as np

from toydlm.io import atomic_write_bytes
from toydlm.realar.generate import CellPlan, responses
from toydlm.realar.store import CellStore
from toydlm.realsri.states import trace_states


def sample_signal_cell(setup, plan: CellPlan, on_step=None) -> tuple[list[dict], np.ndarray]:
    """(samples, producing-state means `[N, T, D]`) of `plan` on the loaded checkpoint; T is the setup's
    generation length (the study's 32 steps)."""
    from toydlm.bridge.encode import encode_prompts
    from toydlm.bridge.kvar import kv_ar_sample

    users = [u for u in plan.users for _ in range(plan.samples)]
    prefills = [p for p in plan.prefills for _ in range(plan.samples)]
    ids, att = encode_prompts(setup.tok, users, prefills)
    cfg = setup.cfg.replace(temperature=plan.temperature)
    trace = kv_ar_sample(setup.hf, ids, att, setup.gen_length, cfg, plan.seed, setup.mask_id, setup.eos_id,
                         setup.vocab, setup.batch_size, end_ids=setup.end_ids, record_hidden=True,
                         on_step=on_step, stop_at_end=True, draw=plan.draw)
    samples = responses(setup.tok, trace.final_response, setup.eos_id, plan.samples)
    return samples, trace_states(trace, np.asarray([s["length"] for s in samples]))


def states_path(store: CellStore, spec: dict) -> Path:
    return store.path(spec).with_suffix(".npz")


def run_signal_cells(setup, store: CellStore, plans: list[CellPlan], sha: str,
                     progress: bool = True) -> dict[str, tuple[dict, np.ndarray]]:
    """name -> (record, states) for every plan, sampled now when not stored."""
    from tqdm import tqdm

    out = {}
    for plan in plans:
        spec = plan.spec(sha, setup.gen_length) | {"record": "producing_states"}
        rec, npz = store.get(spec), states_path(store, spec)
        if rec is None or not npz.exists():
            chunks = -(-len(plan.users) * plan.samples // setup.batch_size)
            bar = tqdm(total=chunks * setup.gen_length, desc=plan.name, disable=not progress, leave=False)
            t0 = time.perf_counter()
            samples, states = sample_signal_cell(setup, plan, on_step=lambda i, bar=bar: bar.update(1))
            bar.close()
            buf = io.BytesIO()
            np.savez_compressed(buf, states=states.astype(np.float16))
            atomic_write_bytes(npz, buf.getvalue())
            rec = store.put(spec, samples, {"seconds": time.perf_counter() - t0})
            print(f"{plan.name}: {len(samples)} rows in {rec['seconds']:.0f} s", flush=True)
        with np.load(npz) as z:
            out[plan.name] = (rec, z["states"].astype(np.float32))
    return out
