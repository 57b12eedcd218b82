"""Sample a list of cells on one loaded checkpoint (skipping finished ones), with a compute estimate first."""

from __future__ import annotations

import time

from toydlm.real.kit.generate import CellPlan, sample_cell
from toydlm.real.kit.store import CellStore


def estimate(plans: list[CellPlan], gen_length: int, tokens_per_s: float, mean_len: float) -> dict:
    """Rows, worst-case tokens (every row runs to the cap) and the expected hours at a measured rate."""
    rows = sum(len(p.users) * p.samples for p in plans)
    return {"cells": len(plans), "rows": rows, "tokens_worst": rows * gen_length,
            "hours_worst": rows * gen_length / tokens_per_s / 3600,
            "hours_expected": rows * mean_len / tokens_per_s / 3600, "tokens_per_s": tokens_per_s}


def run_cells(setup, store: CellStore, plans: list[CellPlan], sha: str, progress: bool = True) -> dict[str, dict]:
    """Every plan's stored record (sampled now when missing): name -> {spec, samples, seconds, tokens}."""
    from tqdm import tqdm

    out = {}
    for plan in plans:
        spec = plan.spec(sha, setup.gen_length)
        rec = store.get(spec)
        if rec is None:
            n_rows = len(plan.users) * plan.samples
            chunks = -(-n_rows // setup.batch_size)
            bar = tqdm(total=chunks * setup.gen_length, desc=plan.name, disable=not progress, leave=False)
            t0 = time.perf_counter()
            samples = sample_cell(setup, plan, on_step=lambda i, bar=bar: bar.update(1))
            bar.close()
            secs = time.perf_counter() - t0
            toks = sum(s["length"] + (0 if not s["ended"] else 1) for s in samples)
            rec = store.put(spec, samples, {"seconds": secs, "tokens": toks, "tokens_per_s": toks / secs})
            print(f"{plan.name}: {n_rows} rows, {toks} tokens in {secs:.0f} s ({toks / secs:.1f} tokens/s)", flush=True)
        out[plan.name] = rec
    return out
