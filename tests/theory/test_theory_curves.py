"""Per-step curves and first-hit-time laws against simulation and simple identities."""

import numpy as np
import pytest
from hypothesis import given
from theory_strategies import step_params

import theory
from theory.chain import C, H, P


@given(step_params(rho_zero=True, lam_zero=True))
def test_first_hit_of_absorbing_h_is_the_increment_of_its_marginal(p):
    pmf = theory.first_hit_pmf(*p, target="H")
    sp = theory.predict(*p)["state_probs"]
    np.testing.assert_allclose(np.cumsum(pmf), sp[:, H], atol=1e-12)


@given(step_params())
def test_first_hit_is_a_subprobability(p):
    for target in ("P", "H", "PH", "R"):
        pmf = theory.first_hit_pmf(*p, target=target)
        assert (pmf >= 0).all() and pmf.sum() <= 1 + 1e-12
        assert pmf[0] == 0.0  # start C is outside every target
    np.testing.assert_allclose(theory.first_hit_pmf(*p, target="PH")[1], p[0][0], atol=1e-12)


def test_unknown_target():
    with pytest.raises(ValueError, match="unknown target"):
        theory.first_hit_pmf([0.1], [0.1], [0.1], [0.0], [0.0], target="X")


def _empirical_curves(states):
    x0, x1 = states[:, :-1], states[:, 1:]
    proposed = np.logical_or.accumulate((x0 == C) & (x1 != C) | (x1 == P), axis=1)
    committed = np.logical_or.accumulate(x1 == H, axis=1)
    cgp = (proposed & committed).sum(0) / proposed.sum(0)
    clean = (x0 == C) | (x0 == P)
    pgc = (clean & ((x1 == P) | (x1 == H))).sum(0) / clean.sum(0)
    return cgp, pgc, proposed.sum(0), clean.sum(0)


def test_curves_match_simulation():
    T = 6
    rng = np.random.default_rng(2)
    h, s = rng.uniform(0.1, 0.6, T), rng.uniform(0.1, 0.6, T)
    r, rho, lam = (1 - s) * rng.uniform(0, 0.5, T), rng.uniform(0, 0.3, T), rng.uniform(0, 0.3, T)
    p = [h, s, r, rho, lam]
    curves = theory.step_curves(*p)
    sim = theory.simulate(*p, n=200_000, seed=5, return_states=True)
    cgp, pgc, n_prop, n_clean = _empirical_curves(sim["states"].astype(int))
    for exact, emp, n in ((curves["commit_given_proposed"], cgp, n_prop),
                          (curves["proposal_given_clean"], pgc, n_clean)):
        se = np.sqrt(exact * (1 - exact) / n)
        assert (np.abs(emp - exact) <= 5 * se + 1e-12).all()


def test_ar_limit_commits_every_proposal_at_once():
    T = 5
    c = theory.step_curves(np.full(T, 0.3), np.ones(T), np.zeros(T), np.zeros(T), np.zeros(T))
    np.testing.assert_allclose(c["commit_given_proposed"], 1.0)
    np.testing.assert_allclose(c["proposal_given_clean"], 0.3)
    np.testing.assert_allclose(c["pending"], 0.0)
