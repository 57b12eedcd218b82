"""Model v2: exact rates of the oracle mixture, the one-position-per-step identity, and the
Monte Carlo chain against exact enumeration."""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import theory
from theory.chain import C, H
from theory.oracle import harm_count_pmf
from theory.oracle_exact import exact_output


@st.composite
def mixtures(draw, max_K=3, max_L=4, max_V=3):
    K, L, V = draw(st.integers(1, max_K)), draw(st.integers(1, max_L)), draw(st.integers(2, max_V))
    w = st.one_of(st.just(0.0), st.floats(0.05, 1.0))
    raw = np.array(draw(st.lists(w, min_size=K * L * V, max_size=K * L * V))).reshape(K, L, V)
    raw[..., 0] += 1e-3 * (raw.sum(-1) == 0)  # no empty rows
    prior = np.array(draw(st.lists(st.floats(0.05, 1.0), min_size=K, max_size=K)))
    harm = np.array([False] + [draw(st.booleans()) for _ in range(V - 1)])
    return theory.make_mixture(prior / prior.sum(), raw / raw.sum(-1, keepdims=True), harm,
                               draw(st.integers(1, L)))


def _joint(mix):
    law = {}
    for x in itertools.product(range(mix.V), repeat=mix.L):
        p = float(mix.prior @ np.prod(mix.emit[:, np.arange(mix.L), list(x)], axis=1))
        if p > 0:
            law[x] = p
    return law


def _harmful(mix, x):
    return mix.is_harm[list(x)].sum() >= mix.threshold


@given(mixtures())
def test_mixture_asr_is_the_joint_harm_probability(mix):
    law = _joint(mix)
    harmful = sum(p for x, p in law.items() if _harmful(mix, x))
    assert theory.mixture_asr(mix) == pytest.approx(harmful, abs=1e-12)
    np.testing.assert_allclose(harm_count_pmf(mix).sum(1), 1.0)


@settings(max_examples=30)
@given(mixtures(), st.sampled_from(["ar_order", "random", "entropy", "margin"]))
def test_one_position_per_step_with_value_blind_selection_samples_the_joint(mix, name):
    """Chain rule: committing one position per step, chosen without looking at the drawn values,
    from the exact conditional, reproduces the joint law exactly (any order, even adaptive)."""
    law = exact_output(mix, theory.SamplerSpec(name, mix.L))
    joint = _joint(mix)
    assert set(law) <= set(joint)
    for x, p in joint.items():
        assert law.get(x, 0.0) == pytest.approx(p, abs=1e-12)


def _two_modes():
    # skeleton 0 = "harm harm", skeleton 1 = "safe safe", equally likely; harmful iff 2 harm tokens
    emit = np.zeros((2, 2, 2))
    emit[0, :, 1] = 1.0
    emit[1, :, 0] = 1.0
    return theory.make_mixture([0.5, 0.5], emit, [False, True], 2)


def test_parallel_commits_mix_modes_exactly():
    mix = _two_modes()
    assert theory.mixture_asr(mix) == 0.5
    assert theory.exact_asr(mix, theory.SamplerSpec("ar_order", 2)) == pytest.approx(0.5)
    assert theory.exact_asr(mix, theory.SamplerSpec("random", 2)) == pytest.approx(0.5)
    # both positions in one step, drawn independently from their marginals (0.5 each)
    assert theory.exact_asr(mix, theory.SamplerSpec("random", 1)) == pytest.approx(0.25)
    # mdlm with T = 2: both in step 1 (1/4) or both in step 2 (1/4) give 0.25; one per step gives 0.5
    assert theory.exact_asr(mix, theory.SamplerSpec("mdlm", 2)) == pytest.approx(0.5 * 0.25 + 0.5 * 0.5)
    sim = theory.simulate_oracle(mix, theory.SamplerSpec("random", 1), n=4000, seed=0)
    assert abs(sim["asr"] - 0.25) < 5 * np.sqrt(0.25 * 0.75 / 4000)


def _fixed_mixture():
    rng = np.random.default_rng(1)
    emit = rng.dirichlet(np.ones(3) * 0.5, (3, 4))
    return theory.make_mixture(rng.dirichlet(np.ones(3)), emit, [False, True, True], 2, eos=0)


def test_low_confidence_selection_is_not_the_joint_even_one_per_step():
    mix = _fixed_mixture()
    lc = theory.exact_asr(mix, theory.SamplerSpec("low_confidence", 4))
    assert abs(lc - theory.mixture_asr(mix)) > 0.01  # value-dependent selection is mode-seeking


SPECS = [("ar_order", 4, None), ("random", 2, None), ("random", 2, 2), ("random", 4, 2), ("mdlm", 3, None),
         ("low_confidence", 2, None), ("low_confidence", 4, None), ("low_confidence", 2, 2),
         ("entropy", 2, None), ("margin", 2, 2)]


@pytest.mark.parametrize("name,steps,bl", SPECS)
def test_monte_carlo_matches_exact_enumeration(name, steps, bl):
    mix = _fixed_mixture()
    spec = theory.SamplerSpec(name, steps, bl)
    exact = theory.exact_asr(mix, spec)
    n = 20_000
    sim = theory.simulate_oracle(mix, spec, n=n, seed=0)
    se = np.sqrt((exact * (1 - exact) + 1.0 / n) / n)
    assert abs(sim["asr"] - exact) <= 5 * se
    law = exact_output(mix, spec)
    top = max(law, key=law.get)  # the whole output law, not only the ASR: check its mode
    freq = (sim["final"] == np.array(top)).all(1).mean()
    assert abs(freq - law[top]) <= 5 * np.sqrt(law[top] * (1 - law[top]) / n)


def test_oracle_states_are_consistent_with_outcomes():
    mix = _fixed_mixture()
    sim = theory.simulate_oracle(mix, theory.SamplerSpec("random", 2), n=2000, seed=3)
    st_ = sim["states"]
    assert set(np.unique(st_[:, -1])) <= {C, H}
    assert sim["asr"] == pytest.approx((st_[:, -1] == H).mean())
    assert (st_[:, 0] == C).all()
    np.testing.assert_allclose(sim["committed_fraction"][:, -1], 1.0)
    np.testing.assert_allclose(sim["committed_fraction"][:, 1], 0.5)
    assert 0 <= sim["mean_length"] <= mix.L
    # v1 shares s between "proposed and committed at once" (C -> H | left C) and "pending committed"
    # (P -> H): on v2's traces the two differ, so v1 is not saturated and not an identity here
    f = theory.fit_hazards(theory.transition_counts(st_))
    assert np.nanmax(np.abs(f["q"]["mle"] - f["s_pending"]["mle"])) > 0.05


@pytest.mark.parametrize(
    "kw, fragment",
    [
        (dict(prior=[0.5, 0.6]), "prior sums to"),
        (dict(prior=[1.5, -0.5]), "prior[0] = 1.5"),
        (dict(emit=np.full((2, 1, 2), [0.5, 0.6])), "emit[0, 0, :] sums to"),
        (dict(is_harm=[True]), "is_harm must have shape"),
        (dict(threshold=0), "threshold"),
    ],
)
def test_mixture_validation(kw, fragment):
    args = dict(prior=[0.5, 0.5], emit=np.full((2, 1, 2), 0.5), is_harm=[False, True], threshold=1)
    args.update(kw)
    with pytest.raises(ValueError) as e:
        theory.make_mixture(**args)
    assert fragment in str(e.value)


def test_sampler_spec_validation():
    mix = _fixed_mixture()
    with pytest.raises(ValueError, match="unknown sampler"):
        theory.simulate_oracle(mix, theory.SamplerSpec("greedy", 4), n=10)
    with pytest.raises(ValueError, match="ar_order"):
        theory.simulate_oracle(mix, theory.SamplerSpec("ar_order", 3), n=10)
