"""SRI signal, internal recovery rate, SRI Guard and detector metrics."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from toydlm.bench.timing import best_of, best_of_each
from toydlm.sri import (
    GuardConfig,
    auroc,
    auroc_ci,
    compute_centres,
    detector_report,
    fit_guard,
    internal_recovery_rate,
    irr_table,
    roc_curve,
    sri_signal,
    tpr_at_fpr,
    trajectory_summary,
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


@given(arrays(np.int8, st.integers(1, 30), elements=st.integers(-3, 3)),
       arrays(np.int8, st.integers(1, 30), elements=st.integers(-3, 5)))
def test_roc_curve_area_is_the_auroc(neg, pos):
    fpr, tpr = roc_curve(neg, pos)
    assert fpr[0] == tpr[0] == 0 and fpr[-1] == tpr[-1] == 1
    assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0)
    assert np.trapezoid(tpr, fpr) == pytest.approx(auroc(neg, pos), abs=1e-12)


def test_auroc_ci_brackets_the_estimate_and_is_degenerate_under_perfect_separation():
    rng = np.random.default_rng(3)
    neg, pos = rng.normal(size=200), rng.normal(1.0, 1.0, size=150)
    lo, hi = auroc_ci(neg, pos)
    assert 0 <= lo < auroc(neg, pos) < hi <= 1
    assert auroc_ci(np.zeros(5), np.ones(7)) == (1.0, 1.0)


def test_detector_report_withholds_the_auroc_below_the_minimum_positive_count():
    neg = np.linspace(0, 1, 50)
    few = detector_report(neg, np.array([2.0, 3.0]), threshold=0.9, min_pos=10)
    assert few["n_pos"] == 2 and few["auroc"] is None and "2 positives < minimum 10" in few["auroc_null_reason"]
    assert few["flag_rate"] == 1.0 and few["fpr_benign"] == pytest.approx(0.1, abs=0.01)
    ok = detector_report(neg, np.full(12, 5.0), threshold=0.9, min_pos=10, roc=True)
    assert ok["auroc"] == 1.0 and ok["auroc_ci95"] == [1.0, 1.0] and ok["roc"]["tpr"][-1] == 1.0


@given(arrays(np.float64, (7, 5), elements=st.floats(0, 1)))
def test_trajectory_quantiles_are_ordered_and_bracket_the_mean(s):
    tr = trajectory_summary(s)
    q = np.array([tr[k] for k in ("q10", "q25", "q50", "q75", "q90")])
    assert tr["n"] == 7 and np.all(np.diff(q, axis=0) >= -1e-12)
    assert np.all(np.asarray(tr["mean"]) >= s.min(0) - 1e-12) and np.all(np.asarray(tr["mean"]) <= s.max(0) + 1e-12)
    assert trajectory_summary(np.zeros((0, 5)))["mean"] == []


def test_irr_table_matches_the_definition_and_reports_denominators():
    s = np.array([[0.2, 0.8, 0.05], [0.9, 0.9, 0.9], [0.1, 0.2, 0.05]])
    t = irr_table({"a": s, "empty": np.zeros((0, 3))})
    assert t["lambda_r=0.5"]["a"] == pytest.approx(internal_recovery_rate(s, 0.5, 0.5)) == pytest.approx(0.5)
    assert t["n_compliant_before_last"] == {"a": 2, "empty": 0} and t["lambda_r=0.5"]["empty"] is None


def test_best_of_does_not_time_the_warm_up_call():
    calls = []
    assert best_of(lambda: calls.append(1), k=3, warmup=1) >= 0 and len(calls) == 4
    with pytest.raises(ValueError, match="k must be"):
        best_of(lambda: None, k=0)
    order = []
    best = best_of_each({"a": lambda: order.append("a"), "b": lambda: order.append("b")}, k=2, warmup=1)
    assert set(best) == {"a", "b"} and order == ["a", "b"] * 3  # warm-up round, then interleaved rounds


@given(st.integers(0, 2**16))
def test_jitted_guard_path_equals_signal_then_score(seed):
    rng = np.random.default_rng(seed)
    T, D, B = 6, 8, 20
    bc, rc = rng.normal(size=(T, D)), rng.normal(size=(T, D))
    acts = rng.normal(size=(B, T, D)) + rng.normal() * bc[None]
    committed = acts.transpose(1, 0, 2).copy()
    committed[0, : B // 2] = np.nan  # nothing committed yet: falls back to the all-positions mean
    mean = acts.transpose(1, 0, 2)
    guard = _GUARD(T)
    ref = guard.score(sri_signal(np.where(np.isnan(committed), mean, committed).transpose(1, 0, 2), bc, rc))
    assert np.allclose(guard.score_recorded(committed, mean, bc, rc), ref, atol=2e-4)


_GUARDS: dict = {}


def _GUARD(T):
    if T not in _GUARDS:
        rng = np.random.default_rng(0)
        _GUARDS[T] = fit_guard(rng.uniform(size=(50, T)), rng.uniform(size=(20, T)), GuardConfig(steps=50))
    return _GUARDS[T]


def test_layer_indices_first_middle_last():
    from toydlm.experiment.sri_eval import layer_indices

    assert layer_indices(4) == {"first": 1, "middle": 2, "last": 3}  # 3 blocks + embeddings
    assert layer_indices(2) == {"first": 1, "middle": 1, "last": 1}
    with pytest.raises(ValueError, match="block"):
        layer_indices(1)


def test_model_returns_every_layer_with_the_final_norm_last():
    import jax.numpy as jnp

    from toydlm.grammar import Grammar
    from toydlm.model import init_model, make_denoiser, model_config, with_layers

    g = Grammar()
    model = init_model(model_config("tiny", g, "mdlm"))
    tok = jnp.asarray(g.sample(3, 1).tokens)
    logits, hidden, layers = model(tok, return_layers=True)
    assert layers.shape == (model.cfg.n_layers + 1, *hidden.shape)
    assert np.allclose(layers[-1], hidden) and np.allclose(layers[0], model.embed(tok) + model.pos_emb[...][None])
    plain = make_denoiser(model, "mdlm", g)
    deep = with_layers(plain)
    a, b = plain(tok), deep(tok)
    assert np.array_equal(a.logits, b.logits) and b.hidden.shape == (3, g.seq_len, model.cfg.n_layers + 1, 32)
    assert np.allclose(b.hidden[:, :, -1], a.hidden)
    from toydlm.grammar import grammar_oracle

    with pytest.raises(ValueError, match="per-layer"):
        with_layers(grammar_oracle(g))


def test_sampler_records_per_layer_pooled_states_next_to_the_final_layer_ones():
    from toydlm.grammar import Grammar
    from toydlm.model import init_model, make_denoiser, model_config, with_layers
    from toydlm.samplers import SamplerConfig
    from toydlm.sampling import sample

    g = Grammar()
    den = make_denoiser(init_model(model_config("tiny", g, "mdlm")), "mdlm", g)
    cfg = SamplerConfig(name="low_confidence", steps=4, temperature=1.0)
    plain = sample(den, g, cfg, attack="benign", n=6, seed=0)
    deep = sample(with_layers(den), g, cfg, attack="benign", n=6, seed=0)
    assert "hidden_layers_mean" not in plain.arrays
    assert deep["hidden_layers_mean"].shape == (4, 6, 3, 32) == deep["hidden_layers_committed"].shape
    for k in ("hidden_mean", "hidden_committed", "canvas"):
        assert np.allclose(plain[k], deep[k], equal_nan=True, atol=1e-5), k
    assert np.allclose(deep["hidden_layers_mean"][:, :, -1], deep["hidden_mean"], atol=1e-6)


@pytest.fixture(scope="module")
def oracle_eval():
    """End to end on the exact oracle (its hidden state is the skeleton posterior), kept small."""
    from toydlm.experiment.sri_eval import evaluate
    from toydlm.grammar import Grammar, grammar_oracle
    from toydlm.grammar.judges import harm_count

    g = Grammar()
    exact_guard = lambda tok: np.asarray(harm_count(g, tok[:, g.prompt_len:]), float)  # noqa: E731
    # n_benign = n_attack: one batch shape, so the sampler compiles once (the time goes to compilation)
    out = evaluate(grammar_oracle(g), g, {"name": "ar_order", "temperature": 1.0}, seed=0, n_benign=80,
                   n_attack=80, guard_model=exact_guard, timing_k=1, guard_config=GuardConfig(steps=200))
    return g, out


def test_sri_evaluation_harness_on_the_oracle(oracle_eval):
    g, out = oracle_eval
    sg = out["sri_guard"]
    assert out["unseen_families"] == ["cipher"] and "cipher" not in out["seen_families"]
    assert sg["n_pos_unseen"] == out["n_pos"]["cipher"] >= 10  # the oracle's ar_order leaks cipher ~60%
    for k in ("auroc", "auroc_unseen", "fpr_benign", "overhead_pct", "overhead_ratio_vs_guard_model"):
        assert k in sg and np.isfinite(sg[k]), k
    assert 0 <= sg["fpr_benign"] <= 1 and 0 <= sg["auroc_unseen"] <= 1
    lo, hi = sg["auroc_unseen_ci95"]
    assert lo <= sg["auroc_unseen"] <= hi
    assert set(out["baselines"]) >= {"text_level_refusal_signal", "first_step_activation", "guard_model"}
    # the exact harm count separates harmful finals from benign ones perfectly
    assert out["baselines"]["guard_model"]["unseen"]["auroc"] == 1.0
    assert out["baselines"]["guard_model"]["per_family"]["roleplay"]["n_pos"] == out["n_pos"]["roleplay"]
    irr = out["irr"]["lambda_r=0.5"]["none"]
    assert irr is None or 0 <= irr <= 1
    oh = out["overhead"]
    assert oh["generation_s_per_seq"] > 0 and set(oh["detectors"]) >= {"sri_guard", "guard_model",
                                                                       "text_level_refusal_signal"}
    assert out["ablation"]["layer_indices"] is None  # the oracle has no layers: final "layer" only
    assert [r["variant"] for r in out["ablation"]["rows"]] == ["text_level_signal", "static_activations_first_step",
                                                               "sri_last_layer"]
    assert out["trajectories"]["jailbreak_success"]["n"] == sum(out["n_pos"].values())


def test_sri_figures_from_the_evaluation_dict(oracle_eval, tmp_path):
    from toydlm.plots.sri_plots import write_sri_figures

    _, out = oracle_eval
    sri = {"primary": out["sri_guard"] | {"model_sampler": "oracle/ar_order"}, "runs": {"oracle/ar_order": out}}
    paths = write_sri_figures(sri, tmp_path)
    assert [p.name for p in paths] == ["fig_sri_trajectories.png", "fig_sri_irr.png", "fig_sri_roc.png",
                                       "fig_sri_ablation.png"]
    assert all(p.stat().st_size > 10_000 for p in paths)


def test_identical_inputs_scored_with_last_bit_noise_count_as_ties():
    """Batched kernels score identical inputs a few ulps apart; the report must not rank that noise."""
    from toydlm.sri.metrics import detector_report

    rng = np.random.default_rng(0)
    neg = 0.0123 * (1 + 1e-9 * rng.standard_normal(100))
    pos = 0.0123 * (1 - 1e-9 * np.abs(rng.standard_normal(50)))  # all "below" the negatives by noise only
    assert detector_report(neg, pos)["auroc"] == 0.5
    assert detector_report(neg, pos + 0.001)["auroc"] == 1.0  # a real difference still counts


def test_goal_verdicts_keep_the_summary_keys_and_withhold_a_null_auroc():
    from toydlm.goals import sri_guard_verdicts

    assert sri_guard_verdicts(0.95, 0.03, 50.0) == {"auroc_unseen_ge_0.90": True, "fpr_benign_le_0.05": True,
                                                    "overhead_ratio_vs_guard_model_ge_100": False}
    assert sri_guard_verdicts(None, 0.06, 100.0) == {"auroc_unseen_ge_0.90": None, "fpr_benign_le_0.05": False,
                                                     "overhead_ratio_vs_guard_model_ge_100": True}


def test_cost_ratio_is_null_when_a_count_is_missing():
    from toydlm.bench.detector_cost import ratio, xla_flops

    assert ratio(6.0, 3.0) == 2.0 and ratio(None, 3.0) is None and ratio(6.0, None) is None and ratio(6.0, 0) is None
    assert xla_flops(lambda x: x @ x, np.ones((4, 4), np.float32)) > 0
    assert xla_flops(lambda x: x @ x, np.ones((4, 3), np.float32)) is None  # does not lower: no count
