"""Fitting: counts, ML hazards with intervals at the nominal coverage, parametric c-hazards, transfer."""

import numpy as np
import pytest

import theory
from theory.hazard_model import sigmoid

T = 6
TRUE = {
    "h": np.array([0.3, 0.25, 0.2, 0.15, 0.1, 0.1]),
    "s": np.array([0.2, 0.3, 0.4, 0.5, 0.6, 0.7]),
    "r": np.array([0.3, 0.3, 0.25, 0.2, 0.2, 0.1]),
    "rho": np.array([0.1, 0.1, 0.15, 0.1, 0.05, 0.05]),
    "lam": np.array([0.2, 0.1, 0.1, 0.2, 0.1, 0.1]),
}
ARGS = [TRUE[k] for k in ("h", "s", "r", "rho", "lam")]


def test_transition_counts_and_validation():
    states = np.array([[0, 1, 2, 3], [0, 0, 1, 0]])
    n = theory.transition_counts(states)
    assert n.shape == (3, 4, 4) and n.sum() == 6
    assert n[0, 0, 1] == 1 and n[0, 0, 0] == 1 and n[2, 2, 3] == 1 and n[2, 1, 0] == 1
    with pytest.raises(ValueError, match=r"states\[1, 2\] = 7"):
        theory.transition_counts(np.array([[0, 1, 2], [0, 0, 7]]))
    with pytest.raises(ValueError, match="integers"):
        theory.transition_counts(np.zeros((2, 3)))


def test_mle_matches_closed_form_on_counts():
    n = np.zeros((1, 4, 4))
    n[0, 0] = [60, 30, 10, 0]  # C: 60 stay, 30 to P, 10 to H
    n[0, 1] = [20, 50, 30, 0]  # P: 20 revised, 50 stay, 30 committed
    n[0, 2] = [5, 0, 85, 10]
    f = theory.fit_hazards(n)
    assert f["h"]["mle"][0] == pytest.approx(0.4)
    s = 40 / 140
    assert f["s"]["mle"][0] == pytest.approx(s)
    assert f["r"]["mle"][0] == pytest.approx((1 - s) * 20 / 70)
    assert f["rho"]["mle"][0] == pytest.approx(0.05) and f["lam"]["mle"][0] == pytest.approx(0.1)
    # the joint MLE of (s, r) maximises the likelihood of rows C (split) and P
    def ll(s, r):
        return 40 * np.log(s) + 30 * np.log(1 - s) + 20 * np.log(r) + 50 * np.log(1 - s - r)
    r = f["r"]["mle"][0]
    for ds, dr in ((1e-3, 0), (-1e-3, 0), (0, 1e-3), (0, -1e-3)):
        assert ll(s + ds, r + dr) < ll(s, r)


@pytest.mark.parametrize("known_s", [False, True])
def test_intervals_cover_truth_at_nominal_rate(known_s):
    hits = total = 0
    for seed in range(12):
        sim = theory.simulate(*ARGS, n=4000, seed=seed, return_states=True)
        n = theory.transition_counts(sim["states"])
        f = theory.fit_hazards(n, s=TRUE["s"] if known_s else None, conf=0.95, seed=seed)
        for k in ("h", "r", "rho", "lam") + (() if known_s else ("s",)):
            lo, hi = f[k]["lo"], f[k]["hi"]
            ok = ~np.isnan(lo)
            hits += int(((lo <= TRUE[k]) & (TRUE[k] <= hi))[ok].sum())
            total += int(ok.sum())
    cover = hits / total
    assert total >= 250
    # 95% nominal; +-3.5 binomial SDs for ~300 intervals
    assert 0.91 <= cover <= 0.99, cover


def test_mle_is_close_with_lots_of_data():
    sim = theory.simulate(*ARGS, n=200_000, seed=0, return_states=True)
    f = theory.fit_hazards(theory.transition_counts(sim["states"]))
    for k in TRUE:
        se = (f[k]["hi"] - f[k]["lo"]) / 3.92
        ok = ~np.isnan(se)  # step 1 has nobody in P or H yet
        assert ok.sum() >= T - 1
        assert (np.abs(f[k]["mle"] - TRUE[k]) <= 5 * se)[ok].all(), k


def test_binned_counts():
    states = np.array([[0, 1, 2], [0, 0, 0]])
    c = np.array([[0.0, 0.5, 1.0], [0.0, 0.2, 0.7]])
    n = theory.binned_counts(states, c, [0.0, 0.25, 1.0])
    assert n[0].sum() == 3 and n[1].sum() == 1 and n[1, 1, 2] == 1


def test_fit_logistic_recovers_coefficients():
    rng = np.random.default_rng(0)
    x = np.linspace(0, 1, 11)
    n = np.full(11, 2000.0)
    k = rng.binomial(2000, sigmoid(-1.0 + 2.0 * x)).astype(float)
    m = theory.fit_logistic(x, k, n)
    z = (m.coef - [-1.0, 2.0]) / np.sqrt(np.diag(m.cov))
    assert (np.abs(z) < 4).all()
    with pytest.raises(ValueError, match=r"k\[0\]"):
        theory.fit_logistic([0.0], [3.0], [2.0])


COEF = {"h": (-0.5, -2.5), "r": (-1.0, 1.5), "lam": (-2.0, 1.0)}


def _simulate_c_model(T, s, rho, n, seed):
    c = np.arange(T) / T  # committed fraction before each step
    h = sigmoid(COEF["h"][0] + COEF["h"][1] * c)
    r = (1 - s) * sigmoid(COEF["r"][0] + COEF["r"][1] * c)
    lam = (1 - rho) * sigmoid(COEF["lam"][0] + COEF["lam"][1] * c)
    sim = theory.simulate(h, s, r, rho, lam, n=n, seed=seed, return_states=True)
    frac = np.broadcast_to(np.arange(T + 1) / T, sim["states"].shape)
    return sim["states"], frac, (h, s, r, rho, lam)


def test_hazard_model_intervals_cover_at_nominal_rate():
    T = 8
    s, rho = np.linspace(0.2, 0.6, T), np.full(T, 0.1)
    hits = total = 0
    for seed in range(15):
        states, frac, _ = _simulate_c_model(T, s, rho, 5000, seed)
        model = theory.fit_hazard_model(states, frac)
        for name, m in (("h", model.h), ("r", model.r_cond), ("lam", model.lam_cond)):
            z = np.abs(m.coef - COEF[name]) / np.sqrt(np.diag(m.cov))
            hits += int((z <= 1.959963984540054).sum())
            total += 2
    assert 0.85 <= hits / total <= 1.0, hits / total


def test_cross_sampler_transfer_predicts_other_step_count_and_commit_schedule():
    Ta, Tb = 8, 16
    sa, rhoa = np.linspace(0.2, 0.6, Ta), np.full(Ta, 0.1)
    states, frac, _ = _simulate_c_model(Ta, sa, rhoa, 50_000, seed=1)
    sb, rhob = 1.0 / (Tb - np.arange(Tb)), np.zeros(Tb)  # mdlm-like commit schedule, no re-masking
    cb = np.arange(Tb) / Tb
    pred = theory.cross_sampler(states, frac, sb, rhob, cb, draws=400)
    _, _, truth = _simulate_c_model(Tb, sb, rhob, 10, seed=0)
    exact = theory.predict(*truth)
    assert pred["asr_lo"] <= float(exact["asr"]) <= pred["asr_hi"]
    assert float(pred["asr"]) == pytest.approx(float(exact["asr"]), abs=0.02)
    assert pred["commit_given_proposed"].shape == (Tb,)
