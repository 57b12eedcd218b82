"""The oracle denoiser: exact, normalised, consistent with the grammar's distribution."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from toydlm.grammar import MASK_ID, PROMPT_LEN, Grammar, grammar_oracle

G = Grammar()
ORACLE = grammar_oracle(G)
APPLY = jax.jit(ORACLE.fn)


def probs_of(canvas: np.ndarray) -> np.ndarray:
    return np.asarray(jax.nn.softmax(APPLY(ORACLE.params, jnp.asarray(canvas)).logits, axis=-1))


def test_marginals_are_normalised_and_never_predict_mask():
    s = G.sample(64, 0)
    rng = np.random.default_rng(0)
    c = s.tokens.copy()
    hide = rng.random(s.response_ids.shape) < 0.6
    c[:, PROMPT_LEN:][hide] = MASK_ID
    p = probs_of(c)
    np.testing.assert_allclose(p.sum(-1), 1.0, atol=1e-5)
    assert p[..., MASK_ID].max() == 0.0
    # committed positions are copied
    committed = c[:, PROMPT_LEN:] != MASK_ID
    top = p[:, PROMPT_LEN:].argmax(-1)
    np.testing.assert_array_equal(top[committed], c[:, PROMPT_LEN:][committed])


def test_chain_rule_left_to_right_equals_exact_response_probability():
    s = G.sample(32, 1)
    L = G.response_len
    logp = np.zeros(len(s))
    for i in range(L):
        c = s.tokens.copy()
        c[:, PROMPT_LEN + i:] = MASK_ID
        p = probs_of(c)[np.arange(len(s)), PROMPT_LEN + i, s.response_ids[:, i]]
        logp += np.log(p)
    np.testing.assert_allclose(np.exp(logp), G.response_prob(s.prompt_ids, s.response_ids), rtol=1e-4)


@pytest.mark.parametrize("seed", [2, 3])
def test_marginals_match_monte_carlo_frequencies_of_consistent_completions(seed):
    rng = np.random.default_rng(seed)
    base = G.sample(1, seed, topic_kind=1, wrapper=3)
    keep = np.zeros(G.response_len, bool)
    keep[rng.choice(G.response_len, 2, replace=False)] = True
    keep[0] = True  # condition on the decision token as well
    canvas = base.tokens.copy()
    canvas[0, PROMPT_LEN:][~keep] = MASK_ID
    p = probs_of(canvas)[0, PROMPT_LEN:]
    pool = G.sample(400_000, seed + 100, topic_kind=1, wrapper=3)
    ok = (pool.topic == base.topic[0]) & (pool.response_ids[:, keep] == base.response_ids[0, keep]).all(1)
    m = int(ok.sum())
    assert m > 2000
    for pos in np.flatnonzero(~keep):
        freq = np.bincount(pool.response_ids[ok, pos], minlength=G.vocab_size) / m
        se = np.sqrt(np.maximum(p[pos] * (1 - p[pos]), 1e-12) / m)
        assert np.all(np.abs(freq - p[pos]) <= 5 * se + 1e-6), (pos, np.abs(freq - p[pos]).max())


def test_off_support_canvas_falls_back_to_fewest_mismatches():
    s = G.sample(1, 5, topic_kind=1, wrapper=0)
    c = s.tokens.copy()
    c[0, PROMPT_LEN:] = MASK_ID
    c[0, PROMPT_LEN + 5] = G.vocab.id("b0")  # a benign-lexicon token: impossible for a harmful topic
    p = probs_of(c)
    assert np.isfinite(p).all()
    np.testing.assert_allclose(p.sum(-1), 1.0, atol=1e-5)
