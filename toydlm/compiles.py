"""Counting XLA compilations in a process: how many programs a run builds, and which functions they are.

Every jitted program JAX builds for a new shape or static argument costs a compilation (seconds on a
small CPU) or, with the persistent compilation cache, a load from disk. `count_compiles()` listens to
JAX's own monitoring events for the duration of a block, so a run can report its count and name the
functions behind them (the avoidable ones show up as one function compiled many times).
"""

from __future__ import annotations

import collections
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from jax import monitoring

BACKEND_COMPILE = "/jax/core/compile/backend_compile_duration"  # a program compiled or loaded from the cache
CACHE_HIT = "/jax/compilation_cache/cache_hits"  # ... of which loaded from the persistent cache


@dataclass
class Compiles:
    """What was compiled while the block ran."""

    n: int = 0
    seconds: float = 0.0
    cache_hits: int = 0
    by_function: collections.Counter = field(default_factory=collections.Counter)

    def to_dict(self) -> dict:
        return {"n_compiles": self.n, "n_compile_cache_hits": self.cache_hits, "compile_s": self.seconds,
                "compiles_by_function": dict(self.by_function.most_common())}


@contextmanager
def count_compiles() -> Iterator[Compiles]:
    """Count the XLA programs built (fresh or from the persistent cache) in this process inside the block."""
    c = Compiles()

    def on_duration(event: str, duration: float, **kw) -> None:
        if event == BACKEND_COMPILE:
            c.n += 1
            c.seconds += duration
            c.by_function[str(kw.get("fun_name", "?"))] += 1

    def on_event(event: str, **kw) -> None:
        if event == CACHE_HIT:
            c.cache_hits += 1

    monitoring.register_event_duration_secs_listener(on_duration)
    monitoring.register_event_listener(on_event)
    try:
        yield c
    finally:
        monitoring.unregister_event_duration_listener(on_duration)
        monitoring.unregister_event_listener(on_event)
