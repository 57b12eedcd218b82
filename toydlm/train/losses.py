"""The two training objectives on the same data: AR next-token NLL and the MDLM NELBO.

Both score only the response positions (EOS padding included) and never predict the mask
id (its logit is excluded from the softmax). `logits_fn(tokens_BL) -> logits_BLV` is the raw
backbone; the functions are pure, so they run under jit, grad and sharding unchanged.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from toydlm.model import NEG_INF

T_EPS = 1e-3  # t is mapped to [T_EPS, 1] (MDLM's sampling_eps)
LogitsFn = Callable[[jax.Array], jax.Array]


def token_logprobs(logits_BLV: jax.Array, targets_BL: jax.Array, mask_id: int) -> jax.Array:
    """log p(target) per position with the mask id removed from the vocabulary."""
    logits_BLV = logits_BLV.at[..., mask_id].set(NEG_INF)
    logp_BLV = jax.nn.log_softmax(logits_BLV, axis=-1)
    return jnp.take_along_axis(logp_BLV, targets_BL[..., None], axis=-1)[..., 0]


def ar_loss(
    logits_fn: LogitsFn, tokens_BL: jax.Array, key: jax.Array, *, prompt_len: int, mask_id: int
) -> tuple[jax.Array, dict]:
    """Mean next-token NLL over the response positions (the prompt is context only)."""
    del key  # deterministic objective
    logits_BLV = logits_fn(tokens_BL)
    # the output at i predicts token i + 1: response tokens P..L-1 come from outputs P-1..L-2
    lp_BR = token_logprobs(logits_BLV[:, prompt_len - 1 : -1], tokens_BL[:, prompt_len:], mask_id)
    loss = -lp_BR.mean()
    return loss, {"nll": loss}


def stratified_times(key: jax.Array, batch: int) -> jax.Array:
    """Antithetic/stratified t over the batch: t_i = (u + i/B) mod 1, mapped to [T_EPS, 1]."""
    u = jax.random.uniform(key, ())
    t = jnp.mod(u + jnp.arange(batch) / batch, 1.0)
    return (1.0 - T_EPS) * t + T_EPS


def suffix_masks(t_B: jax.Array, resp_len: int) -> jax.Array:
    """The last round(t * R) response positions of each row masked: the canvases AR-order decoding visits
    (a clean prefix, the rest masked), at the same masked fraction t as the independent masks."""
    first_masked_B = jnp.round((1.0 - t_B) * resp_len)
    return jnp.arange(resp_len)[None, :] >= first_masked_B[:, None]


def mdlm_corrupt(
    tokens_BL: jax.Array, key: jax.Array, *, prompt_len: int, mask_id: int, suffix_frac: float = 0.0
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Mask each response token independently with probability t (alpha_t = 1 - t); with `suffix_frac` > 0,
    that share of rows (drawn per row) gets `suffix_masks` at its t instead.

    Returns (z_BL, masked_BR, t_B); the prompt is never masked.
    """
    kt, km = jax.random.split(key)
    B, L = tokens_BL.shape
    t_B = stratified_times(kt, B)
    masked_BR = jax.random.uniform(km, (B, L - prompt_len)) < t_B[:, None]
    if suffix_frac > 0.0:  # a static branch: with none, the random streams are those of plain MDLM training
        as_suffix_B = jax.random.uniform(jax.random.split(key, 3)[2], (B,)) < suffix_frac  # a stream of its own
        masked_BR = jnp.where(as_suffix_B[:, None], suffix_masks(t_B, L - prompt_len), masked_BR)
    resp = jnp.where(masked_BR, mask_id, tokens_BL[:, prompt_len:])
    return jnp.concatenate([tokens_BL[:, :prompt_len], resp], axis=1), masked_BR, t_B


def mdlm_loss(
    logits_fn: LogitsFn, tokens_BL: jax.Array, key: jax.Array, *, prompt_len: int, mask_id: int,
    suffix_frac: float = 0.0,
) -> tuple[jax.Array, dict]:
    """Continuous-time MDLM NELBO per response token, linear schedule, weight 1/t.

    sum over masked response tokens of CE / t, divided by B * L_resp (not by the number of
    masked tokens). Unmasked positions contribute 0 (SUBS carry-over). `suffix_frac`: the share of
    rows masked as a suffix (`mdlm_corrupt`); with any, the loss is a training objective, not the NELBO.
    """
    z_BL, masked_BR, t_B = mdlm_corrupt(tokens_BL, key, prompt_len=prompt_len, mask_id=mask_id,
                                        suffix_frac=suffix_frac)
    lp_BR = token_logprobs(logits_fn(z_BL)[:, prompt_len:], tokens_BL[:, prompt_len:], mask_id)
    ce_BR = jnp.where(masked_BR, -lp_BR, 0.0)
    loss = (ce_BR / t_B[:, None]).sum() / ce_BR.size
    n_masked = masked_BR.sum()
    return loss, {"nelbo": loss, "masked_ce": ce_BR.sum() / jnp.maximum(n_masked, 1)}


LOSSES = {"ar": ar_loss, "mdlm": mdlm_loss}
