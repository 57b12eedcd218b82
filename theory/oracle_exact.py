"""Model v2, exact by enumeration: the law of a sampler's output on a small oracle (test oracle).

Recursion over committed canvases with memoisation; exponential in L and V, so for L <= ~6.
It defines the ground truth that `oracle_sim` must match within sampling error, and proves
numerically the identity `ASR = mixture_asr` for ar_order and one-position-per-step `random`.
"""

from __future__ import annotations

import itertools
import math
from functools import cache

import numpy as np

from theory.oracle import Mixture, marginals
from theory.oracle_sim import SamplerSpec, _confidence


def _top_k_sets(score: np.ndarray, cand: list[int], k: int) -> list[tuple[tuple[int, ...], float]]:
    """Law of the top-k subset of `cand` by `score`, ties at the boundary broken uniformly."""
    vals = sorted((score[c] for c in cand), reverse=True)
    cut = vals[k - 1]
    above = [c for c in cand if score[c] > cut]
    tied = [c for c in cand if score[c] == cut]
    need = k - len(above)
    combos = list(itertools.combinations(tied, need))
    return [(tuple(sorted(above + list(c))), 1.0 / len(combos)) for c in combos]


def exact_output(mix: Mixture, spec: SamplerSpec, min_prob: float = 0.0) -> dict[tuple[int, ...], float]:
    """Exact law of the final canvas {tokens: probability} of `spec` on the oracle of `mix`."""
    L = mix.L
    blocks, counts, bl = spec.plan(L)
    T = spec.steps
    out: dict[tuple[int, ...], float] = {}

    @cache
    def marg(canvas: tuple[int, ...]) -> np.ndarray:
        return marginals(mix, np.array(canvas))

    def values(mg: np.ndarray, ls: tuple[int, ...]):
        opts = [[(v, mg[j, v]) for v in np.flatnonzero(mg[j] > 0)] for j in ls]
        for combo in itertools.product(*opts):
            yield tuple(v for v, _ in combo), math.prod(p for _, p in combo)

    def commit(canvas, ls, vs):
        c = list(canvas)
        for j, v in zip(ls, vs, strict=True):
            c[j] = int(v)
        return tuple(c)

    def successors(canvas: tuple[int, ...], t: int):
        mg = marg(canvas)
        masked = [j for j in range(L) if canvas[j] < 0]
        if spec.kind == "ar_order":
            for vs, p in values(mg, (t,)):
                yield commit(canvas, (t,), vs), p
            return
        if spec.kind == "mdlm":
            q = 1.0 / (T - t)
            for r in range(len(masked) + 1):
                for ls in itertools.combinations(masked, r):
                    ps = q**r * (1 - q) ** (len(masked) - r)
                    if ps == 0:
                        continue
                    for vs, p in values(mg, ls):
                        yield commit(canvas, ls, vs), ps * p
            return
        b = blocks[t]
        elig = [j for j in masked if b * bl <= j < (b + 1) * bl]
        k = int(counts[t])
        if spec.kind == "random":
            combos = list(itertools.combinations(elig, k))
            for ls in combos:
                for vs, p in values(mg, ls):
                    yield commit(canvas, ls, vs), p / len(combos)
            return
        if spec.kind in ("entropy", "margin"):
            score = _confidence(spec.kind, mg, np.zeros(L, np.int64))
            for ls, ps in _top_k_sets(score, elig, k):
                for vs, p in values(mg, ls):
                    yield commit(canvas, ls, vs), ps * p
            return
        # low_confidence: the score depends on the drawn x0 at every eligible position
        for x0s, px in values(mg, tuple(elig)):
            score = np.full(L, -np.inf)
            for j, v in zip(elig, x0s, strict=True):
                score[j] = mg[j, v]
            x0 = dict(zip(elig, x0s, strict=True))
            for ls, ps in _top_k_sets(score, elig, k):
                yield commit(canvas, ls, tuple(x0[j] for j in ls)), px * ps

    layer = {tuple([-1] * L): 1.0}
    for t in range(T):
        nxt: dict[tuple[int, ...], float] = {}
        for canvas, p in layer.items():
            for c2, q in successors(canvas, t):
                if p * q > min_prob:
                    nxt[c2] = nxt.get(c2, 0.0) + p * q
        layer = nxt
    for canvas, p in layer.items():
        if min(canvas) < 0:
            raise AssertionError("positions left masked at the end")
        out[canvas] = out.get(canvas, 0.0) + p
    return out


def exact_asr(mix: Mixture, spec: SamplerSpec) -> float:
    """Exact ASR of `spec` on the oracle of `mix` (by enumeration; small instances only)."""
    law = exact_output(mix, spec)
    return float(sum(p for c, p in law.items() if mix.is_harm[list(c)].sum() >= mix.threshold))
