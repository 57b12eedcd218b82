"""The grammar as a perfect denoiser: exact posterior marginals for any partial canvas.

Given its skeleton a response's positions are independent, so for a canvas with some
response positions committed the posterior over skeletons is
`prior(k | prompt) * prod_{committed l} P(x_l | k, l)` and every masked position's exact
marginal is the posterior mixture of the per-skeleton position distributions. For the
left-to-right canvas this is the exact next-token distribution, so one function serves
masked-diffusion samplers and AR order.

Off-support canvases (an attack committed tokens no skeleton allows) fall back gracefully:
each mismatching position costs `MISMATCH` nats and a zero prior `IMPOSSIBLE` nats, so the
posterior picks the possible skeletons with the fewest mismatches. On-support canvases are
exact (the penalties underflow to zero probability).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from toydlm.denoiser import DenoiserOutput, JaxDenoiser
from toydlm.grammar.core import Grammar
from toydlm.grammar.vocab import MASK_ID, PROMPT_LEN

MISMATCH = -1e3
IMPOSSIBLE = -1e6
NEG = -1e9  # logit of an impossible token


def oracle_tables(g: Grammar) -> dict[str, jax.Array]:
    """Arrays the oracle needs, as a params pytree (so jit does not bake them in)."""
    with np.errstate(divide="ignore"):
        log_prior = np.where(g.skeletons.prior > 0, np.log(g.skeletons.prior), IMPOSSIBLE)
        log_src = np.where(g.source_dist > 0, np.log(g.source_dist), MISMATCH)
    S = g.source_dist.shape[1]
    slot_onehot = np.eye(S, dtype=np.float32)[g.skeletons.slots]  # [K, L, S]
    return {
        "log_prior": jnp.asarray(log_prior, jnp.float32),  # [2, W, K]
        "log_src": jnp.asarray(log_src, jnp.float32),  # [T, S, V]
        "src": jnp.asarray(g.source_dist, jnp.float32),  # [T, S, V]
        "slot_onehot": jnp.asarray(slot_onehot),  # [K, L, S]
        "wrapper0": jnp.int32(g.vocab.groups["wrapper"][0]),
        "topic0": jnp.int32(g.vocab.groups["benign_topic"][0]),
        "n_benign": jnp.int32(g.config.n_benign_topics),
    }


def skeleton_posterior(tables: dict, canvas_BL: jax.Array) -> jax.Array:
    """[B, K] exact posterior over skeletons given the committed response positions."""
    prompt, resp = canvas_BL[:, :PROMPT_LEN], canvas_BL[:, PROMPT_LEN:]
    w = prompt[:, 0] - tables["wrapper0"]
    topic = prompt[:, 2] - tables["topic0"]
    topic_kind = (topic >= tables["n_benign"]).astype(jnp.int32)
    committed = (resp != MASK_ID).astype(jnp.float32)  # [B, L]
    log_src = tables["log_src"][topic]  # [B, S, V]
    # a[b, s, l] = log P(token resp[b, l] | source s)
    a = jnp.take_along_axis(log_src, jnp.broadcast_to(resp[:, None, :], (resp.shape[0], log_src.shape[1],
                                                                          resp.shape[1])), axis=2)
    loglik = jnp.einsum("kls,bsl,bl->bk", tables["slot_onehot"], a, committed)
    return jax.nn.softmax(tables["log_prior"][topic_kind, w] + loglik, axis=-1)


def oracle_apply(tables: dict, canvas_BL: jax.Array) -> DenoiserOutput:
    """Exact marginals at masked response positions; one-hot at committed ones."""
    post = skeleton_posterior(tables, canvas_BL)  # [B, K]
    topic = canvas_BL[:, 2] - tables["topic0"]
    weight = jnp.einsum("bk,kls->bls", post, tables["slot_onehot"])  # [B, L, S]
    marg = jnp.einsum("bls,bsv->blv", weight, tables["src"][topic])  # [B, L, V]
    V = marg.shape[-1]
    onehot = jax.nn.one_hot(canvas_BL, V, dtype=jnp.float32)  # [B, P+L, V]
    resp_masked = (canvas_BL[:, PROMPT_LEN:] == MASK_ID)[..., None]
    probs_resp = jnp.where(resp_masked, marg, onehot[:, PROMPT_LEN:])
    probs = jnp.concatenate([onehot[:, :PROMPT_LEN], probs_resp], axis=1)
    probs = probs.at[..., MASK_ID].set(0.0)
    logits = jnp.where(probs > 0, jnp.log(jnp.maximum(probs, 1e-38)), NEG)
    hidden = jnp.broadcast_to(post[:, None, :], (*canvas_BL.shape, post.shape[-1]))
    return DenoiserOutput(logits=logits, hidden=hidden)


def grammar_oracle(g: Grammar) -> JaxDenoiser:
    """The oracle as a JaxDenoiser; its 'hidden state' is the skeleton posterior."""
    return JaxDenoiser(fn=oracle_apply, params=oracle_tables(g), vocab_size=g.vocab_size, mask_id=MASK_ID,
                       prompt_len=PROMPT_LEN, response_len=g.response_len, name="oracle", causal=False)
