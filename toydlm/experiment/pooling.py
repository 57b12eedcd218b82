"""Pooling a learned-model cell over training seeds: the mean over seeds, with an SE that carries their spread.

A run with K training seeds measures every learned-model cell once per seed. The summary reports one row
per cell: each rate is the mean of the K per-seed rates, and its SE is the *seed-mean SE*

    SE = max( sd_k(rate_k) / sqrt(K),  sqrt(sum_k se_k^2) / K )

The first term is the standard error of a mean of K independent draws; each seed's estimate already
carries its binomial noise, so the sample SD across seeds includes training variance *and* sampling
noise. With K = 3 that SD has two degrees of freedom and can come out near zero by chance, so the SE
never falls below the second term, the pure binomial SE of the mean (all that is left at K = 1).
Counts (`n`, ...) are summed, every other number is averaged over the seeds that have it, and
`per_seed` keeps each seed's own `asr`, `asr_se` and prediction beside the pooled value, and
`asr_seed_sd` is the SD of ASR across seeds (None for one seed).
"""

from __future__ import annotations

import math

import numpy as np

GROUP = ("grammar", "model", "sampler", "attack", "temperature")
COUNTS = ("n", "n_first_commits", "n_ever_pending", "n_ever_pending_sampled_draft")
PER_SEED = ("asr", "asr_se", "pred_asr", "refusal_rate", "hrr", "model_offset")
ESTIMATOR = ("seed-mean SE: max(SD across seeds / sqrt(K), sqrt(sum of per-seed SE^2) / K); "
             "the SD across seeds includes each seed's binomial noise")


def seed_mean_se(values: list[float], ses: list[float]) -> float:
    """SE of the mean over seeds (module docstring): between-seed SD / sqrt(K), floored at the binomial SE."""
    k = len(values)
    within = math.sqrt(sum(s * s for s in ses)) / k
    if k < 2:
        return within
    return max(float(np.std(values, ddof=1)) / math.sqrt(k), within)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _pool_field(name: str, rs: list[dict]):
    """One field of the pooled row from the per-seed rows (None where no seed has a number)."""
    vals = [r.get(name) for r in rs]
    if not any(_is_number(v) for v in vals):
        return rs[0].get(name)
    if name in COUNTS:
        return int(sum(v for v in vals if _is_number(v)))
    if name.endswith("_se") and name[:-3] in rs[0]:
        pairs = [(r[name[:-3]], r[name]) for r in rs if _is_number(r.get(name[:-3])) and _is_number(r.get(name))]
        return seed_mean_se([v for v, _ in pairs], [s for _, s in pairs]) if pairs else None
    return float(np.mean([v for v in vals if _is_number(v)]))


def pool_row(rs: list[dict]) -> dict:
    """One learned-model cell over its K seeds (rows in seed order)."""
    out = dict(rs[0])
    for name, v in rs[0].items():
        if name in ("model_seed", "seed", "temperature") or isinstance(v, (list, dict, str, bool)):
            continue
        out[name] = _pool_field(name, rs)
    out["model_seed"] = None
    out["model_seeds"] = [r["model_seed"] for r in rs]
    out["key"] = rs[0]["key"].replace(f"{rs[0]['model']}-s{rs[0]['model_seed']}", f"{rs[0]['model']}-pooled", 1)
    out["per_seed"] = [{"model_seed": r["model_seed"], **{k: r.get(k) for k in PER_SEED}, "key": r["key"]}
                       for r in rs]
    out["asr_se_estimator"] = ESTIMATOR
    asr = [r["asr"] for r in rs]
    out["asr_seed_sd"] = float(np.std(asr, ddof=1)) if len(asr) > 1 else None  # training seeds' spread
    return out


def pool_seeds(rows: list[dict]) -> list[dict]:
    """Every learned-model cell pooled over its seeds (first-appearance order); oracle rows unchanged."""
    groups: dict[tuple, list[dict]] = {}
    order: list[tuple | int] = []
    for i, r in enumerate(rows):
        if r.get("model_seed") is None:
            order.append(i)
            continue
        g = tuple(r[k] for k in GROUP)
        if g not in groups:
            order.append(g)
        groups.setdefault(g, []).append(r)
    return [rows[o] if isinstance(o, int) else pool_row(sorted(groups[o], key=lambda r: r["model_seed"]))
            for o in order]


def rows_of_seed(rows: list[dict], seed: int) -> list[dict]:
    """One seed's learned-model rows plus every oracle row: the cells a single-seed run would report."""
    return [r for r in rows if r.get("model_seed") in (None, seed)]


def pooled_curves(pooled: list[dict], curves: dict[str, dict]) -> dict[str, dict]:
    """Step-wise curves of each pooled cell: the mean over its seeds' curves, point by point."""
    out = {}
    for r in pooled:
        parts = [curves.get(e["key"]) for e in r.get("per_seed", [])]
        if not parts or any(c is None for c in parts):
            continue
        out[r["key"]] = {name: np.mean([np.asarray(c[name], float) for c in parts], axis=0).tolist()
                         for name in parts[0]}
    return out
