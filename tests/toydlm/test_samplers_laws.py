"""Pure laws of the sampler building blocks: k_i schedule, tie-breaking top-k, top-p, ReMDM sigma."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from toydlm.samplers import SamplerConfig, anneal_weight, k_schedule, remdm
from toydlm.samplers.config import k_at
from toydlm.samplers.proposals import inverse_cdf_draw, top_p_filter
from toydlm.samplers.selection import entropy_score, margin_score, top_k_mask


@given(st.integers(0, 400), st.integers(1, 200))
def test_k_schedule_sums_to_n_and_is_balanced(n, steps):
    k = k_schedule(n, steps)
    assert len(k) == steps and k.sum() == n
    assert k.max() - k.min() <= 1 and np.all(np.diff(k) <= 0)  # equal counts, extras first


@given(st.integers(0, 64), st.integers(1, 40), st.data())
def test_k_at_matches_k_schedule(n, steps, data):
    i = data.draw(st.integers(0, steps - 1))
    assert int(k_at(jnp.int32(n), steps, jnp.int32(i))) == k_schedule(n, steps)[i]


@given(st.floats(0, 1), st.integers(1, 50))
def test_anneal_weight_schedule(a0, steps):
    a = np.array([float(anneal_weight(a0, i, steps)) for i in range(steps)])
    assert a[0] == pytest.approx(a0, abs=1e-6)
    assert np.all(np.diff(a) <= 1e-7) and np.all((a >= 0) & (a <= 1))
    if steps > 1:
        assert a[-1] == pytest.approx(0.0, abs=1e-6)


PAD = 24  # fixed shapes: one compilation for every example
_top_k = jax.jit(top_k_mask)
_top_p = jax.jit(top_p_filter, static_argnums=1)


@given(st.lists(st.floats(-3, 3), min_size=1, max_size=PAD), st.data())
def test_top_k_mask_takes_the_best_eligible(scores, data):
    n = len(scores)
    elig = np.zeros(PAD, bool)
    elig[:n] = data.draw(st.lists(st.booleans(), min_size=n, max_size=n))
    k = data.draw(st.integers(0, n))
    s = np.zeros(PAD, np.float32)
    s[:n] = scores
    tie = np.random.default_rng(n).random(PAD).astype(np.float32)
    sel = np.asarray(_top_k(jnp.asarray(s), jnp.asarray(elig), jnp.int32(k), jnp.asarray(tie)))
    assert sel.sum() == min(k, elig.sum()) and not np.any(sel & ~elig)
    if sel.any() and (elig & ~sel).any():
        assert s[sel].min() >= s[elig & ~sel].max()


def test_top_k_ties_follow_the_keyed_draw_not_the_position():
    L = 16
    score, elig = jnp.zeros(L), jnp.ones(L, bool)
    firsts = set()
    for seed in range(20):
        tie = np.random.default_rng(seed).random(L).astype(np.float32)
        sel = np.asarray(top_k_mask(score, elig, 1, jnp.asarray(tie)))
        assert sel.sum() == 1 and sel.argmax() == tie.argmin()
        firsts.add(int(sel.argmax()))
    assert len(firsts) > 5  # a stable argsort would always pick position 0


@given(st.lists(st.floats(-5, 5), min_size=2, max_size=PAD),
       st.sampled_from([0.05, 0.3, 0.5, 0.9, 0.99, 1.0]))
def test_top_p_keeps_the_smallest_sufficient_nucleus(logits, top_p):
    z = np.full(PAD, -np.inf, np.float32)
    z[: len(logits)] = logits
    kept = np.isfinite(np.asarray(_top_p(jnp.asarray(z)[None], top_p)[0]))
    p = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
    assert kept.any() and p[kept].sum() >= min(top_p, 1.0) - 1e-5
    if kept.sum() > 1:  # dropping the least probable kept token falls below top_p
        assert p[kept].sum() - p[kept].min() < top_p + 1e-5


def test_entropy_and_margin_scores():
    p = jnp.array([[1.0, 0, 0, 0], [0.25, 0.25, 0.25, 0.25], [0.7, 0.2, 0.1, 0.0]])
    np.testing.assert_allclose(entropy_score(p), [0.0, -np.log(4), 0.7 * np.log(0.7) + 0.2 * np.log(0.2)
                                                  + 0.1 * np.log(0.1)], rtol=1e-5)
    np.testing.assert_allclose(margin_score(p), [1.0, 0.0, 0.5], atol=1e-6)


@pytest.mark.parametrize("schedule", ["cap", "rescale", "conf", "loop"])
def test_remdm_sigma_is_valid_and_last_step_commits_all(schedule):
    cfg = SamplerConfig("remdm", steps=20, remdm_schedule=schedule).resolved(16)
    psi = jnp.linspace(0.1, 1.0, 16)
    decoded = jnp.arange(16) % 2 == 0
    for i in range(cfg.steps):
        t, s = remdm.times(i, cfg.steps)
        a_t, a_s = remdm.alpha(t, cfg), remdm.alpha(s, cfg)
        sig, sig_m = remdm.sigma(cfg, t, a_t, a_s, psi, decoded)
        smax = float(remdm.sigma_max(a_t, a_s))
        assert np.all(np.asarray(sig) <= smax + 1e-6) and np.all(np.asarray(sig)[~np.asarray(decoded)] == 0)
        pu = float(remdm.unmask_prob(a_t, a_s, sig_m))
        assert 0 <= pu <= 1
        if i == cfg.steps - 1:
            assert pu == 1.0 and np.all(np.asarray(sig) == 0)


def test_mdlm_unmask_prob_is_one_over_remaining_steps():
    cfg = SamplerConfig("remdm", steps=10, eta=0.0, remdm_schedule="cap").resolved(16)
    for i in range(10):
        t, s = remdm.times(i, 10)
        p = float(remdm.unmask_prob(remdm.alpha(t, cfg), remdm.alpha(s, cfg), 0.0))
        assert p == pytest.approx(1 / (10 - i))


def test_remdm_loop_phase_keeps_the_masked_fraction_stationary():
    cfg = SamplerConfig("remdm", steps=100, remdm_schedule="loop").resolved(16)
    m = 1 - cfg.alpha_on
    for i in range(100):
        t, s = remdm.times(i, 100)
        if not (cfg.t_off < float(s) and float(t) <= cfg.t_on):
            continue
        a_t, a_s = remdm.alpha(t, cfg), remdm.alpha(s, cfg)
        assert float(a_t) == pytest.approx(cfg.alpha_on) and float(a_s) == pytest.approx(cfg.alpha_on)
        _, sig = remdm.sigma(cfg, t, a_t, a_s, jnp.zeros(4), jnp.ones(4, bool))
        pu = float(remdm.unmask_prob(a_t, a_s, sig))
        assert m * (1 - pu) + (1 - m) * float(sig) == pytest.approx(m, rel=1e-5)


@pytest.mark.parametrize("kw, msg", [
    (dict(name="nope"), "unknown sampler"),
    (dict(name="ar_order", steps=8), "steps must equal"),
    (dict(name="low_confidence", block_length=5), "must divide"),
    (dict(name="low_confidence", block_length=4, steps=6), "multiple of the number of blocks"),
    (dict(name="mdlm", block_length=4), "selection samplers"),
    (dict(name="random", temperature=-1.0), "temperature"),
    (dict(name="ar", top_p=0.0), "top_p"),
    (dict(name="remdm", remdm_schedule="switch"), "remdm schedule"),
    (dict(name="random", draw="gumbel"), "unknown draw"),
])
def test_invalid_configs_raise(kw, msg):
    with pytest.raises(ValueError, match=msg):
        SamplerConfig(**kw).resolved(16)


def test_config_roundtrip():
    c = SamplerConfig("remdm", steps=32, remdm_schedule="loop", eta=0.05)
    assert SamplerConfig.from_dict(c.to_dict()) == c
    assert "draw" not in c.to_dict()  # the default draw keeps the keys of configs made before it existed
    icdf = c.replace(draw="inverse_cdf")
    assert icdf.to_dict()["draw"] == "inverse_cdf" and SamplerConfig.from_dict(icdf.to_dict()) == icdf
    with pytest.raises(ValueError, match="unknown sampler config field"):
        SamplerConfig.from_dict({"name": "mdlm", "bogus": 1})


_icdf = jax.jit(inverse_cdf_draw)


@given(st.lists(st.floats(0, 10), min_size=2, max_size=PAD), st.lists(st.floats(0, 1, exclude_min=True,
       exclude_max=True), min_size=1, max_size=8))
def test_inverse_cdf_draws_the_token_whose_cumulative_mass_first_reaches_u(weights, us):
    """Against a float64 reference; a token of zero probability is never drawn."""
    w = np.zeros(PAD)
    w[: len(weights)] = weights
    if w.sum() == 0:
        w[0] = 1.0
    p = w / w.sum()
    tok = np.asarray(_icdf(jnp.asarray(np.tile(p, (len(us), 1)), jnp.float32), jnp.asarray(us, jnp.float32)[:, None]))
    assert (p[tok] > 0).all()
    c = np.cumsum(p)
    for t, u in zip(tok, us):
        ref = int(np.searchsorted(c, u * c[-1]))
        if abs(c[min(ref, PAD - 1)] - u * c[-1]) > 1e-5 and (ref == 0 or abs(c[ref - 1] - u * c[-1]) > 1e-5):
            assert t == ref  # away from float32 rounding at a boundary the token is the reference's


@pytest.mark.parametrize("draw", ["race", "inverse_cdf"])
def test_both_draws_sample_the_tempered_distribution(draw):
    """Proposals at T = 0.7 over 20,000 draws match softmax(logits / T) (each frequency within 4.5 binomial
    SEs; a fixed key), and the mask id is never proposed."""
    from toydlm.samplers.proposals import draw as propose
    from toydlm.samplers.proposals import process_logits, step_noise

    cfg = SamplerConfig("random", temperature=0.7, draw=draw)
    logits = jnp.asarray([0.0, 1.0, -1.0, 2.0, 0.5, 3.0], jnp.float32)
    L = 20_000
    lg = process_logits(jnp.tile(logits, (L, 1)), cfg, mask_id=5)
    noise, _ = step_noise(jax.random.PRNGKey(11), L, 6, True, draw == "inverse_cdf")
    tok = np.asarray(propose(lg, cfg, noise))
    p = np.asarray(jax.nn.softmax(lg[0] / 0.7))
    freq = np.bincount(tok, minlength=6) / L
    assert freq[5] == 0.0
    np.testing.assert_array_less(np.abs(freq - p), 4.5 * np.sqrt(p * (1 - p) / L) + 1e-12)


def test_inverse_cdf_never_draws_a_zero_probability_token_at_a_real_vocabulary_size():
    """At 10,635 tokens with every other one at probability 0 (as top-p filtering or a ban leaves them), a
    uniform aimed at the cumulative sum at each zero token, or just above it, still draws a token of positive
    probability. (A float32 cumulative sum need not be monotone, which the draw guards against; on this
    machine's XLA it was, so this checks the law, not that trap.)"""
    V = 10635
    rng = np.random.default_rng(0)
    w = rng.random(V) * (np.arange(V) % 2 == 0)
    p = jnp.asarray(w / w.sum(), jnp.float32)
    c = np.asarray(jnp.cumsum(p))
    at = c[np.asarray(p) == 0] / c[-1]
    u = np.concatenate([at, np.nextafter(at, np.float32(1))]).astype(np.float32)
    u = u[(u > 0) & (u < 1)]
    tok = np.asarray(jax.jit(inverse_cdf_draw)(jnp.broadcast_to(p, (len(u), V)), jnp.asarray(u)[:, None]))
    assert (np.asarray(p)[tok] > 0).all()


def test_a_draw_given_the_other_kind_of_noise_fails_loudly():
    from toydlm.samplers.proposals import draw as propose

    lg = jnp.zeros((3, 8))
    with pytest.raises(ValueError, match="width 1"):
        propose(lg, SamplerConfig("random", draw="inverse_cdf"), jnp.ones((3, 8)))
    with pytest.raises(ValueError, match="width 8"):
        propose(lg, SamplerConfig("random"), jnp.ones((3, 1)))
