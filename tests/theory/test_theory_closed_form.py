"""Closed forms of the time-homogeneous chain against the forward recursion."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from theory_strategies import homogeneous, unit

import theory
from theory import closed_form

Ts = st.integers(1, 40)


@given(unit, unit, unit, Ts)
def test_asr_no_remask(h, s, u, T):
    r = (1 - s) * u
    z = np.zeros(T)
    rec = theory.predict(np.full(T, h), np.full(T, s), np.full(T, r), z, z)["asr"]
    assert closed_form.asr_no_remask(h, s, r, T) == pytest.approx(float(rec), abs=1e-10)


@given(unit, unit, Ts)
def test_asr_ar_with_late_refusal(h, lam, T):
    z = np.zeros(T)
    rec = theory.predict(np.full(T, h), np.ones(T), z, z, np.full(T, lam))["asr"]
    assert closed_form.asr_ar(h, lam, T) == pytest.approx(float(rec), abs=1e-10)


@pytest.mark.parametrize("h", [0.0, 0.3, 1.0])
def test_asr_ar_at_h_equals_lam(h):
    T = 7
    z = np.zeros(T)
    rec = theory.predict(np.full(T, h), np.ones(T), z, z, np.full(T, h))["asr"]
    assert closed_form.asr_ar(h, h, T) == pytest.approx(float(rec), abs=1e-12)
    assert closed_form.asr_ar(h, h + 1e-9, T) == pytest.approx(float(rec), abs=1e-7)


@given(homogeneous())
def test_stationary_is_a_fixed_point(p):
    h, s, r, rho = p
    pi = closed_form.stationary(h, s, r, rho)
    M = theory.transition_matrices([h], [s], [r], [rho], [0.0])[0][:3, :3]
    np.testing.assert_allclose(pi @ M, pi, atol=1e-12)
    assert pi.sum() == pytest.approx(1.0)
    assert closed_form.asr_stationary(h, s, r, rho) == pytest.approx(pi[1] + pi[2])


@given(st.floats(0.1, 0.9), st.floats(0.1, 0.9), st.floats(0.1, 0.9))
def test_hrr_limit(h, s, u):
    r = (1 - s) * u
    T = 600  # the first visit to P and the first sojourn there end by T: (0.9 ** 590 < 1e-26)
    z = np.zeros(T)
    out = theory.predict(np.full(T, h), np.full(T, s), np.full(T, r), z, z)
    assert float(out["hrr"]) == pytest.approx(float(closed_form.hrr_limit(s, r)), abs=1e-9)
    assert float(out["frr"]) < float(out["hrr"]) + 1e-12  # recovery needs a revision without H
