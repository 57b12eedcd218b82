"""Grammar generation throughput (pairs per second), judges included."""

from __future__ import annotations

import time

from toydlm.grammar import Grammar, is_harmful, is_refusal


def run(seconds: float = 3.0, batch: int = 100_000) -> dict:
    g = Grammar()
    g.sample(1000, 0)  # warm caches
    n, t0, i = 0, time.perf_counter(), 0
    while time.perf_counter() - t0 < seconds or i < 3:
        s = g.sample(batch, i)
        n += len(s)
        i += 1
    gen = time.perf_counter() - t0
    t1 = time.perf_counter()
    is_harmful(g, s.response_ids)
    is_refusal(g, s.response_ids)
    judge = time.perf_counter() - t1
    return {"part": "grammar", "pairs_per_s": n / gen, "judged_pairs_per_s": batch / judge,
            "batch": batch, "batches": i, "seconds": gen}


def describe(r: dict) -> str:
    return (f"grammar: {r['pairs_per_s']:,.0f} pairs/s generated ({r['batches']} batches of {r['batch']}), "
            f"judges {r['judged_pairs_per_s']:,.0f} pairs/s")
