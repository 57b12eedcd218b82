"""Bridge sampling: the toy lab's policies and Python-loop driver over an external denoiser.

Keys follow `toydlm.sampling` exactly (same seed stream, one key per row and step), so a
toy model wrapped as an external denoiser gives the same trace as the toy lab's own run.
Every end-of-turn id in `end_ids` is recorded as the canonical `eos_id` (`canonical_ends`,
`toydlm.bridge.ends`); the sampler state, and so the model, keeps the ids it committed.
"""

from __future__ import annotations

from types import SimpleNamespace

import jax
import numpy as np

from toydlm.samplers import SamplerConfig, init_state, loop_run, no_force, row_keys, run_key
from toydlm.trace import Trace, build_trace, concat_traces


def prompt_batch(prompt_ids: np.ndarray, response_len: int, mask_id: int) -> SimpleNamespace:
    """A plain (attack-free) prompt batch in the shape `build_trace` expects."""
    n = len(prompt_ids)
    z = np.zeros(n, np.int32)
    return SimpleNamespace(prompt_ids=np.asarray(prompt_ids, np.int32),
                           response=np.full((n, response_len), mask_id, np.int32),
                           pinned=np.zeros((n, response_len), bool), force_step=np.full(n, -1, np.int32),
                           force_pos=z, force_tok=z, topic_kind=z, wrapper=z, topic=z)


def canonical_ends(rec: dict, eos_id: int, end_ids=()) -> dict:
    """Driver records with every end id in `canvas` and both drafts replaced by the canonical `eos_id`."""
    others = [int(i) for i in end_ids if int(i) != int(eos_id)]
    if not others:
        return rec
    out = dict(rec)
    for k in ("canvas", "xhat_argmax", "xhat_sample"):
        a = np.asarray(rec[k])
        out[k] = np.where(np.isin(a, others), np.asarray(eos_id, a.dtype), a)
    return out


def row_index(rows: np.ndarray | None, a: int, b: int) -> np.ndarray:
    """The key indices of chunk a..b: named outright by `rows`, else a..b."""
    return np.arange(a, b) if rows is None else np.asarray(rows[a:b], np.int64)


def loop_sample(denoiser, prompt_ids: np.ndarray, response_len: int, cfg: SamplerConfig, seed: int,
                mask_id: int, eos_id: int, batch_size: int = 64,
                before_batch=None, on_step=None, end_ids=(), rows: np.ndarray | None = None) -> Trace:
    """Sample every prompt with the Python-loop driver; `before_batch(a, b)` prepares a chunk
    (e.g. sets the HF adapter's attention mask); `end_ids` are recorded as `eos_id`. Row i draws with
    the keys of row i, or of row `rows[i]` when given (a part of a larger set, contiguous or not)."""
    cfg = cfg.resolved(response_len)
    key = run_key(seed)
    parts = []
    for a in range(0, len(prompt_ids), batch_size):
        b = min(a + batch_size, len(prompt_ids))
        if before_batch is not None:
            before_batch(a, b)
        batch = prompt_batch(prompt_ids[a:b], response_len, mask_id)
        state = init_state(batch.prompt_ids, batch.response, batch.pinned, mask_id)
        keys = row_keys(key, row_index(rows, a, b))
        final, rec = loop_run(denoiser, cfg, state, keys, no_force(b - a), mask_id=mask_id, on_step=on_step)
        parts.append(build_trace(canonical_ends(rec, eos_id, end_ids), final, batch, {}, None, eos_id=eos_id))
    trace = concat_traces(parts)
    trace.meta.update({"sampler": cfg.to_dict(), "seed": seed, "mask_id": mask_id, "eos_id": eos_id,
                       "end_ids": [int(i) for i in end_ids] or [int(eos_id)], "driver": "loop"})
    return trace


class JaxAsExternal:
    """A toy JaxDenoiser seen as an external (torch-returning) model, to check the bridge path."""

    def __init__(self, denoiser):
        self.inner = denoiser
        self.mask_id = denoiser.mask_id
        self.causal = denoiser.causal
        self._fn = jax.jit(denoiser.fn)

    def __call__(self, canvas):
        import torch

        out = self._fn(self.inner.params, canvas)
        logits = torch.from_dlpack(np.asarray(out.logits))
        hidden = None if out.hidden is None else torch.from_dlpack(np.asarray(out.hidden))
        return logits, hidden
