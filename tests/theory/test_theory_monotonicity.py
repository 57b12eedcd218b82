"""Property 4: monotonicity of ASR in s_t and r_t, its exact conditions, and counterexamples."""

import numpy as np
import pytest
from hypothesis import HealthCheck, find, given, settings
from hypothesis import strategies as st
from theory_strategies import step_params

import theory
from theory import sensitivity

NAMES = ("h", "s", "r", "rho", "lam")
FIND = settings(max_examples=3000, database=None, suppress_health_check=list(HealthCheck))


def _asr(p, start="C"):
    return float(theory.predict(*p, start=start)["asr"])


def _set(p, name, t, value):
    q = [a.copy() for a in p]
    q[NAMES.index(name)][t] = value
    return q


def _valid_range(p, name, t):
    h, s, r, rho, lam = (a[t] for a in p)
    return {"h": (0, 1), "s": (0, 1 - r), "r": (0, 1 - s), "rho": (0, 1 - lam), "lam": (0, 1 - rho)}[name]


@given(step_params(), st.data(), st.sampled_from(NAMES), st.sampled_from("CPH"))
def test_gradient_is_the_exact_slope(p, data, name, start):
    """ASR is affine in each per-step parameter, so any finite difference equals the adjoint slope."""
    t = data.draw(st.integers(0, len(p[0]) - 1))
    lo, hi = _valid_range(p, name, t)
    if hi - lo < 1e-6:
        return
    a, b = lo, hi
    slope = (_asr(_set(p, name, t, b), start) - _asr(_set(p, name, t, a), start)) / (b - a)
    g = sensitivity.asr_gradient(*p, start=start)[name][t]
    assert g == pytest.approx(slope, abs=1e-9)


@given(step_params(rho_zero=True, lam_zero=True), st.data())
def test_asr_non_decreasing_in_s_without_remasking_or_late_refusal(p, data):
    t = data.draw(st.integers(0, len(p[0]) - 1))
    lo, hi = _valid_range(p, "s", t)
    a, b = sorted(data.draw(st.floats(lo, hi)) for _ in range(2))
    assert _asr(_set(p, "s", t, b)) >= _asr(_set(p, "s", t, a)) - 1e-12


@given(step_params())
def test_sufficient_condition_for_s(p):
    h, s, r, rho, lam = p
    cond = sensitivity.sufficient_s(h, r, rho, lam)
    assert (sensitivity.monotone_in_s(*p)[cond]).all()


@given(step_params(rho_zero=True, lam_zero=True))
def test_sufficient_condition_for_r(p):
    h, s, r, rho, lam = p
    cond = sensitivity.sufficient_r(h, r, rho, lam)
    assert (sensitivity.monotone_in_r(*p)[cond]).all()


def test_exact_condition_matches_finite_difference_sign():
    rng = np.random.default_rng(0)
    for _ in range(200):
        T = 4
        h, s = rng.random(T), rng.random(T)
        r, rho = (1 - s) * rng.random(T), 0.5 * rng.random(T)
        lam = (1 - rho) * rng.random(T)
        p = [h, s, r, rho, lam]
        mono = sensitivity.monotone_in_s(*p)
        for t in range(T):
            d = _asr(_set(p, "s", t, 1 - r[t])) - _asr(_set(p, "s", t, 0.0))
            assert (d >= -1e-12) == mono[t] or abs(d) < 1e-10


def _decreases_in_s(p):
    return (sensitivity.asr_gradient(*p)["s"] < -1e-6).any()


def test_hypothesis_finds_s_counterexample_with_remasking():
    p = find(step_params(lam_zero=True, max_T=4), _decreases_in_s, settings=FIND)
    h, s, r, rho, lam = p
    assert (p[3] > 0).any()
    assert not sensitivity.sufficient_s(h, r, rho, lam).all()


def test_hypothesis_finds_s_counterexample_with_late_refusal():
    p = find(step_params(rho_zero=True, max_T=4), _decreases_in_s, settings=FIND)
    assert (p[4] > 0).any()


def test_hypothesis_finds_r_counterexample_without_remasking():
    p = find(step_params(rho_zero=True, lam_zero=True, max_T=4),
             lambda p: (sensitivity.asr_gradient(*p)["r"] > 1e-6).any(), settings=FIND)
    h, s, r, rho, lam = p
    bad = sensitivity.asr_gradient(*p)["r"] > 1e-6
    assert not sensitivity.sufficient_r(h, r, rho, lam)[bad].any()


def test_hand_counterexamples():
    # late refusal: committing at step 1 leaves step 2's lam = 1 to refuse; pending harm counts at T
    p = [np.array([1.0, 0.0]), np.array([0.0, 0.0]), np.zeros(2), np.zeros(2), np.array([0.0, 1.0])]
    assert _asr(_set(p, "s", 0, 1.0)) < _asr(p)  # 0 < 1
    # re-masking beats revision: committed harm is re-masked at step 2, pending harm is not revised
    p = [np.array([1.0, 0.0]), np.zeros(2), np.zeros(2), np.array([0.0, 1.0]), np.zeros(2)]
    assert _asr(_set(p, "s", 0, 1.0)) < _asr(p)
    # revision raises ASR when clean is likelier to turn harmful (h_3 = 1) than pending to stay
    # harmful (1 - r_3 = 0.5): step 1 proposes harm surely and leaves it pending (s = 0 throughout,
    # and a harm still pending at T counts as committed)
    p = [np.array([1.0, 0.0, 1.0]), np.zeros(3), np.array([0.0, 0.0, 0.5]), np.zeros(3), np.zeros(3)]
    assert _asr(p) == pytest.approx(0.5)  # r_2 = 0: still pending at step 3, revised w.p. 0.5
    assert _asr(_set(p, "r", 1, 1.0)) == pytest.approx(1.0)  # r_2 = 1: back to C, re-proposed
    assert not sensitivity.monotone_in_r(*p)[1]
    assert not sensitivity.sufficient_r(p[0], p[2], p[3], p[4])[1]
