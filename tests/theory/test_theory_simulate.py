"""Property 2: the simulator agrees with the exact recursion within sampling error (fixed seeds)."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from theory_strategies import step_params

import theory
from theory.chain import P

N = 20_000


def _se(p, n):
    # binomial SE with one pseudo-observation, so that events of probability ~0 still get a scale
    return math.sqrt((p * (1 - p) + 1.0 / n) / n)


@settings(max_examples=25)
@given(step_params(), st.sampled_from("CPH"))
def test_simulator_matches_recursion(p, start):
    exact = theory.predict(*p, start=start)
    sim = theory.simulate(*p, n=N, start=start, seed=0, return_states=True)
    a = float(exact["asr"])
    assert abs(sim["asr"] - a) <= 5 * _se(a, N)
    freq = theory.state_frequencies(sim["states"])
    sp = exact["state_probs"]
    assert (np.abs(freq - sp) <= 5 * np.sqrt((sp * (1 - sp) + 1.0 / N) / N)).all()
    nv = sim["n_visit"]
    pv = float(exact["p_visit_pending"])
    assert abs(nv / N - pv) <= 5 * _se(pv, N)
    if nv >= 100:
        for k in ("hrr", "frr"):
            e = float(exact[k])
            assert abs(sim[k] - e) <= 5 * _se(e, nv), k


def test_simulator_is_deterministic_and_seeded():
    p = [np.full(4, 0.3), np.full(4, 0.4), np.full(4, 0.2), np.full(4, 0.1), np.full(4, 0.1)]
    a = theory.simulate(*p, n=1000, seed=3, return_states=True)["states"]
    b = theory.simulate(*p, n=1000, seed=3, return_states=True)["states"]
    c = theory.simulate(*p, n=1000, seed=4, return_states=True)["states"]
    assert (a == b).all() and (a != c).any()


def test_simulator_zero_probability_transitions_never_happen():
    T = 8
    p = [np.full(T, 0.5), np.ones(T), np.zeros(T), np.zeros(T), np.zeros(T)]
    st_ = theory.simulate(*p, n=50_000, seed=1, return_states=True)["states"]
    assert not (st_ == P).any() and not (st_ == 3).any()


def test_simulator_rejects_batches():
    with pytest.raises(ValueError, match="one parameter set"):
        theory.simulate(np.zeros((2, 3)), np.zeros(3), np.zeros(3), np.zeros(3), np.zeros(3), n=10)
