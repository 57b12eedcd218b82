"""Sampler policies: pure JAX `step(state, logits, keys) -> state`, one per sampler name.

Each policy is written for one row and vmapped over the batch, so every row draws from its
own key (a row's result does not depend on the batch it was sampled in). One step:
1. proposals x̂₀ at every masked response position (argmax and the drawn sample);
2. *selection*: which masked positions get committed (left to right, a selection rule's score
   with the k_i schedule, or ancestral unmasking);
3. *re-masking*: which committed positions go back to mask (`remdm` only; never pinned ones).
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from toydlm.samplers import remdm
from toydlm.samplers.config import LEFT_TO_RIGHT, SamplerConfig, k_at, n_blocks, selection_names, selection_rule
from toydlm.samplers.proposals import draw, process_logits, step_noise
from toydlm.samplers.selection import ScoreInputs, top_k_mask
from toydlm.samplers.state import SamplerState

Policy = Callable[[SamplerState, jax.Array, jax.Array], SamplerState]


def _leftmost(masked_L: jax.Array) -> jax.Array:
    return masked_L & (jnp.cumsum(masked_L) == 1)


def _end_proposals(cfg: SamplerConfig, x_smp: jax.Array) -> jax.Array | None:
    """Where the drawn proposal is an end token, for the EOS-last control (None when it is off)."""
    if not cfg.eos_last:
        return None
    return jnp.isin(x_smp, jnp.asarray((cfg.eos_id, *cfg.end_ids), jnp.int32))


def _selection(cfg: SamplerConfig, L: int, i, masked, block_n, p_sample, p_LV, u_sel, u_tie, last=None):
    """LLaDA/Dream selection: the top-k_i eligible positions of the current block by the rule's score."""
    nb = n_blocks(cfg, L)
    spb = cfg.steps // nb
    b, j = i // spb, i % spb
    in_block = (jnp.arange(L) // (L // nb)) == b
    eligible = masked & in_block
    n_b = jnp.where(j == 0, jnp.sum(eligible).astype(jnp.int32), block_n)
    k = k_at(n_b, spb, j)
    inputs = ScoreInputs(position=np.arange(L, dtype=np.int32), confidence=p_sample, probs=p_LV,
                         uniform=u_sel, step_in_block=j, steps_per_block=spb, cfg=cfg)
    score = selection_rule(cfg.name)(inputs)
    return top_k_mask(score, eligible, k, u_tie, last), n_b


def _ancestral(cfg: SamplerConfig, i, masked, pinned, psi, u_un, u_re):
    """MDLM (sigma = 0) or ReMDM: stochastic unmasking and re-masking on the time grid."""
    L = masked.shape[0]
    t, s = remdm.times(i, cfg.steps)
    if cfg.name == "mdlm":  # linear alpha: unmask w.p. (t - s) / t = 1 / (T - i)
        p_un = 1.0 / (cfg.steps - i).astype(jnp.float32)
        return masked & (u_un < p_un), jnp.zeros(L, bool)
    a_t, a_s = remdm.alpha(t, cfg), remdm.alpha(s, cfg)
    decoded = ~masked & ~pinned
    sig_dec, sig_masked = remdm.sigma(cfg, t, a_t, a_s, psi, decoded)
    commit = masked & (u_un < remdm.unmask_prob(a_t, a_s, sig_masked))
    remask = decoded & (u_re < sig_dec)
    return commit, remask


def row_step(cfg: SamplerConfig, mask_id: int, state: SamplerState, logits_NV: jax.Array,
             key: jax.Array) -> SamplerState:
    """One step for one row (unbatched state fields; logits over the whole canvas `[P+L, V]`)."""
    L = state.pinned.shape[0]
    P = state.canvas.shape[0] - L
    resp = state.canvas[P:]
    i = state.step
    masked = resp == mask_id
    lg = process_logits(logits_NV[P:], cfg, mask_id)
    noise, (u_sel, u_tie, u_un, u_re) = step_noise(key, L, lg.shape[-1], cfg.temperature > 0,
                                                   cfg.draw == "inverse_cdf")
    p_LV = jax.nn.softmax(lg, axis=-1)
    x_arg = jnp.argmax(lg, axis=-1).astype(jnp.int32)
    x_smp = draw(lg, cfg, noise)
    p_sample = jnp.take_along_axis(p_LV, x_smp[:, None], axis=-1)[:, 0]
    block_n = state.block_n
    if cfg.name in LEFT_TO_RIGHT:
        commit, remask = _leftmost(masked), jnp.zeros(L, bool)
    elif cfg.name in selection_names():
        commit, block_n = _selection(cfg, L, i, masked, block_n, p_sample, p_LV, u_sel, u_tie,
                                     _end_proposals(cfg, x_smp))
        remask = jnp.zeros(L, bool)
    else:
        commit, remask = _ancestral(cfg, i, masked, state.pinned, state.commit_conf, u_un, u_re)
    new = jnp.where(commit, x_smp, resp)
    new = jnp.where(remask, mask_id, new)
    if cfg.name == "ar":  # an AR decoder predicts only the next token and commits it at once: its draft is the
        xhat_a = xhat_s = new  # canvas after the step, so it never holds an uncommitted harmful draft (HRR = 0)
    else:
        xhat_a, xhat_s = jnp.where(masked, x_arg, resp), jnp.where(masked, x_smp, resp)
    return SamplerState(
        canvas=jnp.concatenate([state.canvas[:P], new]), step=i + 1, pinned=state.pinned,
        commit_conf=jnp.where(commit, p_sample, jnp.where(remask, jnp.nan, state.commit_conf)),
        commit_step=jnp.where(commit, i, jnp.where(remask, -1, state.commit_step)),
        block_n=block_n,
        xhat_argmax=xhat_a, xhat_sample=xhat_s,
        conf=jnp.where(masked, p_sample, jnp.nan), committed=commit, remasked=remask)


def make_policy(cfg: SamplerConfig, mask_id: int) -> Policy:
    """The batched policy `step(state [B...], logits [B, P+L, V], keys [B]) -> state`.

    `cfg` must be resolved (`cfg.resolved(L)`): the step count is part of the policy.
    """
    if cfg.steps is None:
        raise ValueError("resolve the sampler config first (cfg.resolved(response_len))")

    def one(state, logits, key):
        return row_step(cfg, mask_id, state, logits, key)

    return jax.vmap(one)
