"""Sampling one cell on every model of a seed ensemble in one program, one trace per seed.

`sample_seeds(dens, ...)` gives what `[sample(d, ...) for d in dens]` gives: the same prompts, the
same per-row keys (a row's draws depend on its prompt index, not on which member runs it), one
judged `Trace` per model. The K models run as one stacked denoiser (`toydlm.samplers.ensemble`): each
prompt row of a chunk is repeated K times, side by side, through one jitted scan. Per-row results
equal sampling each model alone up to the float rounding of batched kernels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields, replace

import jax
import numpy as np

from toydlm.attacks import PromptBatch, build_prompts
from toydlm.denoiser import JaxDenoiser
from toydlm.grammar import Grammar
from toydlm.samplers import SamplerConfig, check_pairing, row_keys, run_key
from toydlm.samplers.ensemble import stack_denoisers
from toydlm.sampling import run_meta, sample_rows
from toydlm.trace import Trace, build_trace, concat_traces


def repeat_rows(rows: PromptBatch, k: int) -> PromptBatch:
    """Each row of the chunk K times, side by side (member m gets rows m, m + K, m + 2K, ...)."""
    return replace(rows, **{f.name: np.repeat(getattr(rows, f.name), k, axis=0)
                            for f in fields(rows) if f.name != "attack"})


def member_rows(tree, m: int, k: int, axis: int):
    """Member m's rows (every K-th, from m) along `axis` of every leaf."""
    return jax.tree.map(lambda x: np.take(np.asarray(x), np.arange(m, x.shape[axis], k), axis=axis), tree)


def sample_seeds(dens: Sequence[JaxDenoiser], grammar: Grammar, cfg: SamplerConfig, *, attack: str | None,
                 n: int, seed: int, batch_size: int = 1024) -> list[Trace]:
    """One trace per model of `dens` (one architecture), all sampled in one program per chunk."""
    cfg = cfg.resolved(grammar.response_len)
    check_pairing(dens[0], cfg)
    batch = build_prompts(attack, grammar, n, seed, cfg.steps)
    stacked, K = stack_denoisers(dens), len(dens)
    mask_id, key = int(dens[0].mask_id), run_key(seed)
    step = max(1, batch_size // K)
    parts: list[list[Trace]] = [[] for _ in dens]
    for a in range(0, len(batch), step):
        rows = batch.rows(a, min(a + step, len(batch)))
        b = len(rows)
        keys = row_keys(key, np.arange(a, a + b))
        final, rec = sample_rows(stacked, cfg, repeat_rows(rows, K), np.repeat(np.asarray(keys), K, axis=0),
                                 "scan", mask_id, False)
        for m in range(K):
            parts[m].append(build_trace(member_rows(rec, m, K, 1), member_rows(final, m, K, 0), rows, {},
                                        grammar, eos_id=cfg.eos_id))
    traces = [concat_traces(p) for p in parts]
    for d, t in zip(dens, traces):
        t.meta.update(run_meta(d, grammar, cfg, batch, seed, "scan", mask_id, None))
    return traces
