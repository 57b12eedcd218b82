"""Throughput benchmark of the v1 chain (called by `toydlm bench theory --json`)."""

from __future__ import annotations

import os
import time

import numpy as np

from theory.chain import predict
from theory.simulate import simulate


def _random_sets(B: int, T: int, seed: int = 0) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    h, s = rng.random((B, T)), rng.random((B, T))
    r = (1 - s) * rng.random((B, T))
    rho = 0.5 * rng.random((B, T))
    lam = (1 - rho) * rng.random((B, T))
    return h, s, r, rho, lam


def run(seconds: float = 5.0, T: int = 32, batch: int = 100_000, trajectories: int = 1 << 20) -> dict:
    """Measure exact predictions of T-step parameter sets per second (validation included) and
    simulated trajectories per second; each gets half of `seconds` (at least one repetition)."""
    params = _random_sets(batch, T)
    predict(*(p[:8] for p in params))  # warm-up
    budget = seconds / 2
    n_sets, t0 = 0, time.perf_counter()
    while True:
        predict(*params)
        n_sets += batch
        dt_exact = time.perf_counter() - t0
        if dt_exact >= budget:
            break
    one = tuple(p[0] for p in params)
    n_traj, t0, seed = 0, time.perf_counter(), 0
    while True:
        simulate(*one, n=trajectories, seed=seed)
        n_traj += trajectories
        seed += 1
        dt_sim = time.perf_counter() - t0
        if dt_sim >= budget:
            break
    return {
        "exact_sets_per_s": n_sets / dt_exact,
        "sim_traj_per_s": n_traj / dt_sim,
        "T": T,
        "exact_batch": batch,
        "sim_batch": trajectories,
        "seconds": dt_exact + dt_sim,
        "cpu_count": os.cpu_count(),
    }


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
