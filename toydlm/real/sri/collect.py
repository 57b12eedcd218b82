"""Signal cells: a real checkpoint's greedy generations with their per-step pooled states.

A cell is the real-AR cell (`toydlm.real.kit.generate.CellPlan`) decoded with hidden states on: its
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
from toydlm.real.kit.generate import CellPlan, decode_cell, responses
from toydlm.real.kit.store import CellStore
from toydlm.real.sri.states import trace_states


def sample_signal_cell(setup, plan: CellPlan, on_step=None) -> tuple[list[dict], np.ndarray]:
    """(samples, producing-state means `[N, T, D]`) of `plan` on the loaded checkpoint; T is the setup's
    generation length (the study's 32 steps)."""
    trace = decode_cell(setup, plan, on_step, record_hidden=True)
    samples = responses(setup.tok, trace.final_response, setup.eos_id, plan.samples)
    return samples, trace_states(trace, np.asarray([s["length"] for s in samples]))


POOLING = "producing_states"  # what the states file holds; part of every signal cell's key


def signal_spec(plan: CellPlan, sha: str, gen_length: int) -> dict:
    """A signal cell's store key: the real-AR cell's spec, marked as carrying pooled states."""
    return plan.spec(sha, gen_length) | {"record": POOLING}


def states_path(store: CellStore, spec: dict) -> Path:
    return store.path(spec).with_suffix(".npz")


def load_signal_cell(store: CellStore, spec: dict) -> tuple[dict, np.ndarray] | None:
    """A stored signal cell (record, states `[N, T, D]` as float32), or None when either file is missing."""
    rec, npz = store.get(spec), states_path(store, spec)
    if rec is None or not npz.exists():
        return None
    with np.load(npz) as z:
        return rec, z["states"].astype(np.float32)


def run_signal_cells(setup, store: CellStore, plans: list[CellPlan], sha: str, progress: bool = True) -> list[str]:
    """Sample every plan whose signal cell is not stored yet; returns the names sampled now."""
    from tqdm import tqdm

    done = []
    for plan in plans:
        spec = signal_spec(plan, sha, setup.gen_length)
        if store.get(spec) is not None and states_path(store, spec).exists():
            continue
        chunks = -(-len(plan.users) * plan.samples // setup.batch_size)
        bar = tqdm(total=chunks * setup.gen_length, desc=plan.name, disable=not progress, leave=False)
        t0 = time.perf_counter()
        samples, states = sample_signal_cell(setup, plan, on_step=lambda i, bar=bar: bar.update(1))
        bar.close()
        buf = io.BytesIO()
        np.savez_compressed(buf, states=states.astype(np.float16))
        atomic_write_bytes(states_path(store, spec), buf.getvalue())
        rec = store.put(spec, samples, {"seconds": time.perf_counter() - t0})
        print(f"{plan.name}: {len(samples)} rows in {rec['seconds']:.0f} s", flush=True)
        done.append(plan.name)
    return done
