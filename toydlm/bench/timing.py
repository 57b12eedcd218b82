"""Steady-state wall time: warm-up calls first (JIT compilation, caches), then the best of k timed calls."""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable

from toydlm.errors import UserError


def best_of(fn: Callable[[], object], k: int = 5, warmup: int = 1) -> float:
    """Steady-state wall time of `fn()` in seconds: `warmup` untimed calls (JIT compilation, caches),
    then the minimum over `k` timed calls. `fn` must block until its result is ready."""
    if k < 1:
        raise UserError(f"k must be >= 1, got {k}")
    for _ in range(warmup):
        fn()
    best = float("inf")
    for _ in range(k):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def best_of_each(fns: dict[Hashable, Callable[[], object]], k: int = 5, warmup: int = 1) -> dict[Hashable, float]:
    """`best_of` for several functions timed in interleaved rounds (one call of each per round), so a change
    of machine load during the measurement hits every function alike instead of biasing one of them."""
    if k < 1:
        raise UserError(f"k must be >= 1, got {k}")
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(k):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t0)
    return best
