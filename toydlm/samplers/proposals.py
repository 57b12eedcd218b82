"""Token proposals and per-step noise for one row of logits `[L, V]`, all in float32.

Proposals are what a sampler would commit at a masked position: argmax at temperature 0,
otherwise a Gumbel-max draw (in its exponential-race form) from the tempered (optionally
top-p filtered) distribution. All noise of a row-step comes from one keyed `jax.random.bits`
draw turned into float32 uniforms on (0, 1) (low-precision Gumbel noise biases samples:
Zheng et al. 2409.02908, jax-ml/jax#30879). Position scores for selection are in `selection.py`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from toydlm.samplers.config import SamplerConfig


def process_logits(logits_LV: jax.Array, cfg: SamplerConfig, mask_id: int) -> jax.Array:
    """float32 logits with the mask id (and, with `eos_inf`, every end token: EOS and `end_ids`) set to -inf."""
    lg = logits_LV.astype(jnp.float32).at[..., mask_id].set(-jnp.inf)
    if cfg.eos_inf:
        lg = lg.at[..., jnp.asarray((cfg.eos_id, *cfg.end_ids), jnp.int32)].set(-jnp.inf)
    return lg


def top_p_filter(logits_LV: jax.Array, top_p: float) -> jax.Array:
    """Keep the smallest set of most probable tokens whose mass reaches top_p (the top one always)."""
    p = jax.nn.softmax(logits_LV, axis=-1)
    order = jnp.argsort(-p, axis=-1)
    p_sorted = jnp.take_along_axis(p, order, axis=-1)
    keep_sorted = (jnp.cumsum(p_sorted, axis=-1) - p_sorted) < top_p
    keep = jnp.take_along_axis(keep_sorted, jnp.argsort(order, axis=-1), axis=-1)
    return jnp.where(keep, logits_LV, -jnp.inf)


N_UNIFORMS = 4  # per position and step: selection score, tie-break, unmask, re-mask


def uniform_from_bits(bits: jax.Array) -> jax.Array:
    """float32 uniforms strictly inside (0, 1) from uint32 bits (23-bit grid midpoints)."""
    return ((bits >> 9).astype(jnp.float32) + 0.5) * jnp.float32(2.0 ** -23)


def step_noise(key: jax.Array, L: int, V: int, with_proposal_noise: bool, inverse_cdf: bool = False
               ) -> tuple[jax.Array | None, jax.Array]:
    """All randomness of one row-step from one keyed draw (one threefry call compiles once).

    Returns (the proposal noise or None, uniforms `[N_UNIFORMS, L]`). The proposal noise is Exp(1) race
    noise `[L, V]`, or with `inverse_cdf` one uniform per position `[L, 1]`.
    """
    width = (1 if inverse_cdf else V) if with_proposal_noise else 0
    u = uniform_from_bits(jax.random.bits(key, (L, width + N_UNIFORMS), jnp.uint32))
    noise = (u[:, :1] if inverse_cdf else -jnp.log(u[:, :V])) if with_proposal_noise else None
    return noise, u[:, -N_UNIFORMS:].T


def inverse_cdf_draw(p_LV: jax.Array, u_L1: jax.Array) -> jax.Array:
    """The first token of positive probability whose cumulative probability reaches u of the total mass.
    Exact in law up to float32 rounding of the sum; a float32 cumulative sum need not be monotone, so tokens
    of probability 0 are excluded explicitly (the most probable token if rounding leaves none)."""
    c_LV = jnp.cumsum(p_LV, axis=-1)
    hit_LV = (c_LV >= u_L1 * c_LV[:, -1:]) & (p_LV > 0)
    idx = jnp.where(hit_LV.any(-1), jnp.argmax(hit_LV, axis=-1), jnp.argmax(p_LV, axis=-1))
    return idx.astype(jnp.int32)


def draw(lg_LV: jax.Array, cfg: SamplerConfig, noise: jax.Array | None) -> jax.Array:
    """Proposed token per position `[L]` from processed logits and the step's proposal noise (`step_noise`):
    Exp(1) race noise `[L, V]`, or with `cfg.draw == "inverse_cdf"` one uniform per position `[L, 1]`."""
    if cfg.temperature == 0:
        return jnp.argmax(lg_LV, axis=-1).astype(jnp.int32)
    width = 1 if cfg.draw == "inverse_cdf" else lg_LV.shape[-1]
    if noise is None or noise.shape[-1] != width:  # shapes are static: the wrong noise fails at trace time
        raise ValueError(f"draw {cfg.draw!r} needs proposal noise of width {width}, got "
                         f"{None if noise is None else noise.shape}")
    z = lg_LV / jnp.float32(cfg.temperature)
    if cfg.top_p < 1:
        z = top_p_filter(z, cfg.top_p)
    if cfg.draw == "inverse_cdf":
        return inverse_cdf_draw(jax.nn.softmax(z, axis=-1), noise)
    # exponential race: argmax(p / E), E ~ Exp(1), is Gumbel-max (argmax(log p + G)) with one log
    # per entry instead of two (MDLM's form); the draw dominates a step's cost on CPU
    return jnp.argmax(jax.nn.softmax(z, axis=-1) / noise, axis=-1).astype(jnp.int32)
