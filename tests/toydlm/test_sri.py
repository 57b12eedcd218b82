"""SRI signal, internal recovery rate, SRI Guard and detector metrics."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from toydlm.sri import (
    GuardConfig,
    auroc,
    compute_centres,
    fit_guard,
    internal_recovery_rate,
    sri_signal,
    tpr_at_fpr,
)


def test_signal_is_one_at_the_compliance_anchor_and_zero_at_the_refusal_anchor():
    rng = np.random.default_rng(0)
    T, D = 6, 16
    benign, refusal = rng.normal(size=(T, D)), rng.normal(size=(T, D))
    acts = np.stack([benign, refusal, 3.0 * benign])  # cosine ignores the norm
    s = sri_signal(acts, benign, refusal)
    assert s.shape == (3, T)
    assert np.all(s[0] > 0.999) and np.all(s[1] < 0.001) and np.all(s[2] > 0.999)


def test_signal_uses_the_log_ratio_with_temperature():
    b = np.array([[1.0, 0.0]])
    r = np.array([[0.0, 1.0]])
    x = np.array([[[np.cos(0.3), np.sin(0.3)]]])  # angle 0.3 from b
    d_b, d_r = 1 - np.cos(0.3), 1 - np.cos(np.pi / 2 - 0.3)
    expect = 1 / (1 + np.exp(-(np.log(d_r) - np.log(d_b)) / 0.5))
    assert sri_signal(x, b, r, tau=0.5)[0, 0] == pytest.approx(expect, rel=1e-6)


@given(arrays(np.float64, (5, 4, 3), elements=st.floats(-10, 10)))
def test_signal_lies_in_unit_interval(acts):
    rng = np.random.default_rng(1)
    s = sri_signal(acts, rng.normal(size=(4, 3)), rng.normal(size=(4, 3)))
    assert np.all((s >= 0) & (s <= 1)) and np.isfinite(s).all()


def test_mismatched_steps_are_rejected():
    with pytest.raises(ValueError, match="steps"):
        sri_signal(np.zeros((2, 5, 3)), np.ones((4, 3)), np.ones((4, 3)))


def test_empty_centre_sets_name_which_set_is_empty():
    a = np.ones((3, 4, 2))
    with pytest.raises(ValueError, match="complied with none"):
        compute_centres(a, np.zeros(3, bool), a, np.ones(3, bool))
    with pytest.raises(ValueError, match="refused none"):
        compute_centres(a, np.ones(3, bool), a, np.zeros(3, bool))


def test_centres_average_only_the_selected_prompts():
    b = np.stack([np.full((2, 3), 1.0), np.full((2, 3), 5.0)])
    h = np.stack([np.full((2, 3), 2.0), np.full((2, 3), 7.0)])
    cb, ch = compute_centres(b, np.array([True, False]), h, np.array([False, True]))
    assert np.all(cb == 1.0) and np.all(ch == 7.0)


def test_internal_recovery_rate_definition():
    s = np.array([
        [0.2, 0.8, 0.05],  # compliant at t=1, ends refusal -> recovered
        [0.9, 0.9, 0.9],   # compliant, stays compliant
        [0.1, 0.2, 0.05],  # never compliant -> not in the denominator
        [0.6, 0.3, 0.4],   # compliant at t=0, ends at 0.4: recovered for lambda_r=0.5, not for 0.3
    ])
    assert internal_recovery_rate(s, 0.5, 0.5) == pytest.approx(2 / 3)
    assert internal_recovery_rate(s, 0.5, 0.3) == pytest.approx(1 / 3)
    assert internal_recovery_rate(s, 0.5, 0.1) == pytest.approx(1 / 3)
    assert math.isnan(internal_recovery_rate(np.zeros((3, 5))))
    # the last step alone does not make a response compliant-at-some-step
    assert math.isnan(internal_recovery_rate(np.array([[0.1, 0.1, 0.9]])))


def test_auroc_and_tpr_match_hand_computed_values():
    neg, pos = np.array([0.1, 0.2, 0.3, 0.4]), np.array([0.35, 0.5, 0.6])
    # pairs pos>neg: 0.35 beats 3 of 4, 0.5 and 0.6 beat all 4 -> 11/12
    assert auroc(neg, pos) == pytest.approx(11 / 12)
    assert auroc(np.array([1.0, 1.0]), np.array([1.0])) == pytest.approx(0.5)
    assert tpr_at_fpr(np.arange(100.0), np.array([98.5, 99.5, 50.0]), 0.01) == pytest.approx(1 / 3)


def test_guard_trained_on_benign_flags_a_different_shape_of_trajectory():
    rng = np.random.default_rng(0)
    T = 16
    t = np.linspace(0, 1, T)

    def benign(n):  # smooth, compliance-aligned trajectories
        return np.clip(0.85 + 0.05 * rng.normal(size=(n, 1)) + 0.02 * rng.normal(size=(n, T)), 0, 1)

    def jailbreak(n):  # dips toward refusal then returns: incomplete internal recovery
        dip = 0.6 * np.exp(-((t - 0.5) ** 2) / 0.02)
        return np.clip(benign(n) - dip, 0, 1)

    guard = fit_guard(benign(600), benign(200), GuardConfig(steps=600))
    assert guard.n_params == 65 * T + 584  # T-32-8-32-T: 2,664 parameters at T = 32
    fp = guard.flag(benign(500)).mean()
    tp = guard.flag(jailbreak(200)).mean()
    assert fp <= 0.05
    assert tp >= 0.9
    assert auroc(guard.score(benign(300)), guard.score(jailbreak(300))) > 0.95


def test_sri_evaluation_harness_on_the_oracle():
    """End to end on the exact oracle (its hidden state is the skeleton posterior)."""
    from toydlm.experiment.sri_eval import evaluate
    from toydlm.grammar import Grammar, grammar_oracle

    g = Grammar()
    out = evaluate(grammar_oracle(g), g, {"name": "low_confidence", "steps": 8, "temperature": 1.0}, seed=0,
                   n_benign=200, n_attack=120)
    sg = out["sri_guard"]
    for k in ("auroc", "auroc_unseen", "fpr_benign", "overhead_pct", "overhead_ratio_vs_guard_model"):
        assert k in sg and np.isfinite(sg[k]), k
    assert 0 <= sg["fpr_benign"] <= 1 and 0 <= sg["auroc_unseen"] <= 1
    assert out["unseen_families"] == ["cipher"] and "cipher" not in out["seen_families"]
    assert set(out["baselines"]) >= {"text_level_refusal_signal", "first_step_activation", "guard_model"}
    irr = out["pooling"]["generated"]["irr"]["lambda_r=0.5"]["none"]
    assert irr != irr or 0 <= irr <= 1
