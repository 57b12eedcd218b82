"""Two drivers over the same policies: a jitted `lax.scan` and a Python loop.

- `scan_run`: the JaxDenoiser is called inside `jax.lax.scan`; the whole T-step sampling is
  one jitted, batched function with the denoiser params as an argument (not a constant).
- `loop_run`: any external denoiser (a callable returning logits, a `DenoiserOutput`, or a
  `(logits, hidden)` pair; torch tensors arrive through DLPack) is called from Python, then
  the jitted policy step runs. Same keys, same policy, same record: identical traces.

Keys: row r of a run uses `fold_in(run_key(seed), r)` and step i uses `fold_in(row_key, i)`, so a
row's draws depend on (seed, row index, step) only, never on batch size or chunking.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache, partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from toydlm.denoiser import DenoiserOutput, JaxDenoiser
from toydlm.parallel import split_rows
from toydlm.samplers.config import SamplerConfig
from toydlm.samplers.policies import make_policy
from toydlm.samplers.state import Force, SamplerState, apply_force

SEED_STREAM = 0x5A4D  # sampler keys are independent of the numpy stream that draws prompts


def run_key(seed: int) -> jax.Array:
    """The base key of a sampling run with this seed (rows fold their index into it)."""
    return jax.random.fold_in(jax.random.PRNGKey(seed), SEED_STREAM)


def row_keys(seed_key: jax.Array, rows: np.ndarray) -> jax.Array:
    """One key per row from its global row index."""
    return jax.vmap(lambda r: jax.random.fold_in(seed_key, r))(jnp.asarray(rows, jnp.uint32))


def step_keys(keys_B: jax.Array, i) -> jax.Array:
    return jax.vmap(lambda k: jax.random.fold_in(k, i))(keys_B)


@partial(jax.jit, static_argnums=1)
def all_step_keys(keys_B: jax.Array, steps: int) -> jax.Array:
    """`[T, B]` keys of every step, made outside the scan (one small compilation per shape)."""
    return jax.vmap(lambda i: step_keys(keys_B, i))(jnp.arange(steps, dtype=jnp.int32))


def record(new: SamplerState, seen: SamplerState, hidden, mask_id: int) -> dict:
    """One trace row: the step's outcome, plus pooled hidden states of the canvas it saw.

    `hidden_mean`: mean final-layer state over response positions; `hidden_committed`: over
    response positions already committed in the canvas the denoiser saw (NaN if none).
    `hidden` is `[B, P+L, D]`, or `[B, P+L, K, D]` with every layer (last = final layer, see
    `toydlm.model.with_layers`); then `hidden_layers_mean` / `hidden_layers_committed` `[B, K, D]`
    hold the same two poolings per layer as well.
    """
    L = new.pinned.shape[1]
    P = new.canvas.shape[1] - L
    rec = {"canvas": new.canvas[:, P:], "xhat_argmax": new.xhat_argmax, "xhat_sample": new.xhat_sample,
           "confidence": new.conf, "committed": new.committed, "remasked": new.remasked}
    if hidden is not None:
        h = jnp.asarray(hidden, jnp.float32)[:, P:]  # [B, L, D] or [B, L, K, D]
        done = (seen.canvas[:, P:] != mask_id).astype(jnp.float32)
        n = done.sum(1, keepdims=True)
        if h.ndim == 4:
            rec["hidden_mean"], rec["hidden_committed"] = _pool(h[:, :, -1], done, n)
            rec["hidden_layers_mean"], rec["hidden_layers_committed"] = _pool(h, done, n)
        else:
            rec["hidden_mean"], rec["hidden_committed"] = _pool(h, done, n)
    return rec


def _pool(h_BLxD: jax.Array, done_BL: jax.Array, n_B1: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Mean over all response positions and over committed ones (NaN where none is committed)."""
    pooled = jnp.einsum("bl,bl...->b...", done_BL, h_BLxD)
    n = n_B1.reshape(n_B1.shape[:1] + (1,) * (pooled.ndim - 1))
    return h_BLxD.mean(1), jnp.where(n > 0, pooled / jnp.maximum(n, 1), jnp.nan)


@lru_cache(maxsize=64)
def _scan_fn(fn: Callable, cfg: SamplerConfig, mask_id: int, with_hidden: bool):
    policy = make_policy(cfg, mask_id)

    def run(params, state: SamplerState, keys_TB, force: Force):
        def body(st, xs):
            i, keys_B = xs
            st = apply_force(st, force, i)
            out = fn(params, st.canvas)
            new = policy(st, out.logits, keys_B)
            return new, record(new, st, out.hidden if with_hidden else None, mask_id)

        return jax.lax.scan(body, state, (jnp.arange(cfg.steps, dtype=jnp.int32), keys_TB))

    return jax.jit(run)


def scan_run(denoiser: JaxDenoiser, cfg: SamplerConfig, state: SamplerState, keys_B, force: Force,
             with_hidden: bool = True) -> tuple[SamplerState, dict]:
    """All T steps in one jitted scan. Returns (final state, records stacked `[T, B, ...]`).

    With several devices (and a batch they divide) the batch is split over a `data` mesh
    and the params replicated; jit partitions the scan, rows stay bit-identical.
    """
    if with_hidden:
        with_hidden = _has_hidden(denoiser, state)
    f = _scan_fn(denoiser.fn, cfg, int(denoiser.mask_id), with_hidden)
    params, (state, keys_B, force) = split_rows(denoiser.params, (state, keys_B, Force(*force)))
    return f(params, state, all_step_keys(keys_B, cfg.steps), force)


def _has_hidden(denoiser: JaxDenoiser, state: SamplerState) -> bool:
    out = jax.eval_shape(denoiser.fn, denoiser.params, state.canvas)
    return out.hidden is not None


# ---------------------------------------------------------------------------- Python loop
@lru_cache(maxsize=64)
def _policy_jit(cfg: SamplerConfig, mask_id: int):
    return jax.jit(make_policy(cfg, mask_id))


_force_jit = jax.jit(apply_force)
_record_jit = jax.jit(record, static_argnums=3)


@lru_cache(maxsize=16)
def _fn_jit(fn: Callable):
    return jax.jit(fn)


def as_output(x: Any) -> DenoiserOutput:
    """Normalise an external denoiser's return value to float32 JAX arrays (DLPack for torch)."""
    if isinstance(x, DenoiserOutput):
        logits, hidden = x.logits, x.hidden
    elif isinstance(x, tuple) and len(x) == 2:
        logits, hidden = x
    else:
        logits, hidden = x, None
    return DenoiserOutput(_to_jax(logits).astype(jnp.float32), None if hidden is None else _to_jax(hidden))


def _to_jax(a: Any) -> jax.Array:
    if isinstance(a, (np.ndarray, jax.Array)):
        return jnp.asarray(a)
    if hasattr(a, "__dlpack__"):
        return jax.dlpack.from_dlpack(a)
    return jnp.asarray(a)


def loop_run(denoiser: Any, cfg: SamplerConfig, state: SamplerState, keys_B, force: Force,
             mask_id: int | None = None, with_hidden: bool = True,
             on_step: Callable[[int], None] | None = None) -> tuple[SamplerState, dict]:
    """The same sampling as `scan_run`, one Python iteration per step (for external denoisers)."""
    if isinstance(denoiser, JaxDenoiser):
        fn, params = _fn_jit(denoiser.fn), denoiser.params
        call = lambda canvas: fn(params, canvas)
    else:
        call = denoiser
    mask_id = int(denoiser.mask_id if mask_id is None else mask_id)
    policy = _policy_jit(cfg, mask_id)
    force = Force(*(jnp.asarray(f) for f in force))
    keys_TB = all_step_keys(keys_B, cfg.steps)
    recs = []
    st = state
    for i in range(cfg.steps):
        st = _force_jit(st, force, jnp.int32(i))
        out = as_output(call(st.canvas))
        new = policy(st, out.logits, keys_TB[i])
        recs.append(_record_jit(new, st, out.hidden if with_hidden else None, mask_id))
        st = new
        if on_step is not None:
            on_step(i)
    stacked = {k: jnp.stack([r[k] for r in recs]) for k in recs[0]}
    return st, stacked
