"""SRI and the Model v1 fit inside `toydlm bridge run` (toydlm.bridge.analysis)."""

import json

import numpy as np
import pytest

from theory import predict, simulate
from toydlm.bridge.analysis import LAMBDA_R, sri_report, theory_fit

T, D = 6, 4


def _trace(acts_NTD):
    """A trace-like dict with pooled hidden states `[T, N, D]` (as the loop driver records them)."""
    h = np.asarray(acts_NTD, np.float32).transpose(1, 0, 2)
    return {"hidden_mean": h, "hidden_committed": h}


def _dirs(n, d):
    a = np.zeros((n, T, D))
    a[..., d] = 1.0
    return a


def test_sri_centres_signals_and_internal_recovery():
    comply, refuse = np.eye(D)[0], np.eye(D)[1]
    benign = _dirs(3, 0)  # compliance direction throughout
    harmful = _dirs(3, 1)  # refusal direction throughout ...
    harmful[2, : T // 2] = comply  # ... except one that starts compliant and then refuses
    harmful[2, T // 2:] = refuse
    traces = {"none": _trace(harmful), "benign": _trace(benign)}
    refusals = {"none": np.array([True, True, False]), "benign": np.array([False, False, False])}
    rep, sig = sri_report(traces, refusals)
    assert rep["available"] and rep["n_benign_complied"] == 3 and rep["n_harmful_refused"] == 2
    assert sig["benign"].shape == (3, T) and (sig["benign"] > 0.99).all() and (sig["none"][:2] < 0.01).all()
    assert sig["none"][2, 0] > 0.5 > sig["none"][2, -1]
    assert set(rep["irr"]) == {f"lambda_r={lr}" for lr in LAMBDA_R}
    # only the third harmful prompt was compliance-aligned before the last step, and it ends at refusal
    assert rep["irr"]["lambda_r=0.1"]["none"] == 1.0 and rep["irr"]["lambda_r=0.5"]["benign"] == 0.0
    json.dumps(rep, default=lambda x: x.tolist())  # summary-serialisable


def test_sri_records_a_reason_instead_of_crashing():
    traces = {"none": _trace(_dirs(2, 1)), "benign": _trace(_dirs(2, 0))}
    rep, sig = sri_report(traces, {"none": np.array([False, False]), "benign": np.array([False, False])})
    assert not rep["available"] and "refused none" in rep["reason"] and sig == {}
    rep, _ = sri_report(traces, {"none": np.array([True, False]), "benign": np.array([True, True])})
    assert not rep["available"] and "complied with none" in rep["reason"]
    rep, _ = sri_report({"none": traces["none"]}, {"none": np.array([True, False])})
    assert not rep["available"] and "--harmless" in rep["reason"]


def test_theory_fit_recovers_v1_hazards_and_predicts_the_measured_rates():
    rng_h, s, r = np.full(T, 0.3), np.full(T, 0.4), np.full(T, 0.2)
    z = np.zeros(T)
    sim = simulate(rng_h, s, r, z, z, n=4000, seed=1, return_states=True)
    th = theory_fit(sim["states"].astype(np.int64), {"asr": sim["asr"], "hrr": sim["hrr"], "frr": sim["frr"]})
    assert np.abs(th["hazards"]["h"] - 0.3).max() < 0.05 and np.abs(th["hazards"]["s"] - 0.4).max() < 0.05
    assert th["start"] == "C" and th["measured"]["asr_v1_end_rule"] == pytest.approx(sim["asr"])
    truth = predict(rng_h, s, r, z, z)
    for k in ("asr", "hrr", "frr"):
        assert th["predicted"][k] == pytest.approx(sim[k], abs=0.03)
        assert th["predicted"][k] == pytest.approx(float(truth[k]), abs=0.03)
    assert th["unestimated_steps"]["rho"] == [1]  # nobody is in H before the first step


def test_theory_fit_rejects_mixed_start_states():
    st = np.array([[0, 0, 2], [1, 0, 0]])
    with pytest.raises(ValueError, match="start in different states"):
        theory_fit(st, {"asr": 0.5, "hrr": 0.0, "frr": 0.0})
