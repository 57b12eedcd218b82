"""SRI on real checkpoints: the study's pooled states, cached anchors and their invalidation, IRR."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from toydlm.errors import UserError
from toydlm.real.sri.anchors import anchor_spec, cached_anchors, centres_from
from toydlm.real.sri.report import cell_summary
from toydlm.real.sri.states import producing_states


def _records(h0, toks):
    """What the KV-cached trace records from a prompt state h0 `[N, D]` and token states toks `[N, T, D]`."""
    T = toks.shape[1]
    hm = np.empty((T, *h0.shape))
    hc = np.full((T, *h0.shape), np.nan)
    hm[0] = h0
    for t in range(1, T):
        hc[t] = hm[t] = toks[:, :t].mean(1)
    return hm, hc


@given(st.integers(1, 4), st.integers(2, 9), st.integers(0, 10**6))
@settings(max_examples=25, deadline=None)
def test_step_t_pools_the_states_that_produced_tokens_1_to_t(n, T, seed):
    rng = np.random.default_rng(seed)
    h0, toks = rng.normal(size=(n, 3)), rng.normal(size=(n, T, 3))
    got = producing_states(*_records(h0, toks))
    for t in range(T):  # 1-based step t+1: the prompt state and token states 1..t
        want = np.concatenate([h0[:, None], toks[:, :t]], 1).mean(1)
        np.testing.assert_allclose(got[:, t], want, atol=1e-12)


def test_an_ended_row_keeps_its_last_pooled_state():
    rng = np.random.default_rng(0)
    h0, toks = rng.normal(size=(2, 3)), rng.normal(size=(2, 6, 3))
    free = producing_states(*_records(h0, toks))
    held = producing_states(*_records(h0, toks), lengths=np.array([2, 6]))
    np.testing.assert_allclose(held[0, :3], free[0, :3])  # the end token's producing state (t = 2) is in
    np.testing.assert_allclose(held[0, 3:], np.repeat(free[0, 2:3], 3, 0))
    np.testing.assert_allclose(held[1], free[1])
    with pytest.raises(UserError, match="one entry per row"):
        producing_states(*_records(h0, toks), lengths=np.array([2]))


def test_anchors_use_answered_harmless_and_refused_harmful_prompts():
    b, h = np.ones((3, 2, 4)), np.zeros((3, 2, 4))
    b[0], h[2] = 9.0, 5.0  # the refused harmless and the answered harmful prompt must not count
    comp, ref = centres_from(b, np.array([True, False, False]), h, np.array([True, True, False]))
    np.testing.assert_allclose(comp, 1.0)
    np.testing.assert_allclose(ref, 0.0)
    with pytest.raises(UserError, match="refused none"):
        centres_from(b, np.zeros(3, bool), h, np.zeros(3, bool))


def test_anchor_cache_reuses_only_an_identical_spec(tmp_path):
    calls, logs = [], []

    def compute(v=1.0):
        calls.append(v)
        return np.full((2, 3), v), np.full((2, 3), -v)

    path = tmp_path / "anchors-m.npz"
    spec = anchor_spec("aa" * 32, {"name": "b", "users": ["x"]}, {"name": "h", "users": ["y"]}, "producing_states")
    c1, r1, reused1 = cached_anchors(path, spec, compute, logs.append)
    c2, r2, reused2 = cached_anchors(path, spec, lambda: compute(7.0), logs.append)
    assert (reused1, reused2) == (False, True) and calls == [1.0]
    np.testing.assert_array_equal(c2, c1)
    other = spec | {"weights_sha256": "bb" * 32}  # same checkpoint name, other weights: never reused
    c3, _, reused3 = cached_anchors(path, other, lambda: compute(7.0), logs.append)
    assert not reused3 and calls == [1.0, 7.0] and float(c3[0, 0]) == 7.0
    assert len(logs) == 1 and "weights_sha256" in logs[0] and "recomputing" in logs[0]
    prompts = other | {"benign": {"name": "b", "users": ["z"]}}
    assert not cached_anchors(path, prompts, compute, logs.append)[2] and "benign" in logs[-1]


def test_cell_summary_counts_internal_recovery_by_definition_1():
    sig = np.array([[0.9, 0.8, 0.2],    # compliance-aligned, ends refusal-aligned: recovered at 0.5 and 0.3
                    [0.9, 0.6, 0.4],    # ends at 0.4: recovered at 0.5 only
                    [0.2, 0.1, 0.05],   # never compliance-aligned: outside the population
                    [0.7, 0.9, 0.9]])   # stays compliant
    s = cell_summary(sig, np.array([True, False, True, False]))
    assert s["irr"] == {"0.5": 2 / 3, "0.3": 1 / 3, "0.1": 0.0}
    assert s["ever_compliance_aligned"] == 0.75 and s["refusal_rate"] == 0.5
    np.testing.assert_allclose(s["mean_sigma_by"]["refused"], sig[[0, 2]].mean(0))


def test_guard_section_counts_judged_successes_and_holds_out_the_unseen_family():
    from toydlm.real.sri.guard_eval import guard_section
    from toydlm.sri.guard import fit_guard

    rng = np.random.default_rng(0)
    T = 8
    benign = lambda n: np.clip(0.9 + 0.02 * rng.normal(size=(n, T)), 0, 1)  # noqa: E731
    dip = np.clip(np.r_[np.full(4, 0.9), np.full(4, 0.2)] + 0.02 * rng.normal(size=(30, T)), 0, 1)
    attacks = {"raw": (benign(30), np.zeros(30, bool)),  # no success: no positives from this family
               "prefix_injection": (dip, np.r_[np.ones(20, bool), np.zeros(10, bool)])}
    g = guard_section(fit_guard(benign(200), benign(60)), benign(50), attacks)
    assert (g["n_pos"], g["n_pos_unseen"], g["n_neg"]) == (20, 20, 50)
    assert g["per_family"]["raw"]["auroc"] is None and g["per_family"]["raw"]["n_pos"] == 0
    assert g["auroc_unseen"] > 0.95 and g["auroc_unseen_ci95"][0] <= g["auroc_unseen"] <= g["auroc_unseen_ci95"][1]
    assert 0 <= g["fpr_benign"] <= 0.1


def test_first_step_probe_separates_a_shifted_family_it_never_trained_on():
    from toydlm.real.sri.baselines import first_step_probe, text_level

    rng = np.random.default_rng(1)
    D = 6
    benign = lambda n: rng.normal(size=(n, D))  # noqa: E731
    harm = lambda n: rng.normal(size=(n, D)) + np.r_[3.0, np.zeros(D - 1)]  # noqa: E731
    first = {"guard_train": benign(120), "guard_threshold": benign(60), "benign_eval": benign(60),
             "raw": harm(40), "prefix_injection": harm(40)}
    success = {"raw": np.r_[np.ones(30, bool), np.zeros(10, bool)], "prefix_injection": np.ones(40, bool)}
    p, score = first_step_probe(first, success, "prefix_injection")
    assert score(first["prefix_injection"]).mean() > score(first["benign_eval"]).mean()
    assert p["auroc_unseen"] > 0.95 and p["n_train_pos"] == 30 and p["seen"] == ["raw"]
    assert 0.0 <= p["fpr_benign"] <= 0.1
    refused = {"guard_threshold": np.zeros(60, bool), "benign_eval": np.zeros(60, bool),
               "raw": np.r_[np.zeros(30, bool), np.ones(10, bool)], "prefix_injection": np.zeros(40, bool)}
    t = text_level(refused, success, "prefix_injection")
    assert t["auroc_unseen"] == 0.5  # nothing refused anywhere: the text cannot tell them apart
    assert t["n_pos_all"] == 70 and t["auroc_all"] == 0.5  # raw's refusals are not successes: left out


def _synthetic_run(rng, D: int = 6, T: int = 32):
    """A stored run as `load_run` returns it: harmless groups near one direction, successful jailbreaks of
    `prefix_injection` drifting to another, refused ones saying sorry."""
    from toydlm.real.sri.detectors import PREFIX_STEPS
    from toydlm.real.sri.load import Loaded

    comp, ref = np.tile(np.eye(D)[0], (T, 1)), np.tile(np.eye(D)[1], (T, 1))
    near = lambda n, c: c[None] + 0.1 * rng.normal(size=(n, T, D))  # noqa: E731
    run = Loaded("tiny", "sha", comp, ref, {"reused_from_cache": True})
    for g, n in (("guard_train", 60), ("guard_threshold", 30), ("benign_eval", 30)):
        run.states[g] = near(n, comp)
        run.records[g] = [{"spec": {"prefills": [""] * n}, "samples": [
            {"prompt": i, "ids": [1, 2], "length": T, "text": "Here is a poem."} for i in range(n)]}]
    for a in ("raw", "prefix_injection"):
        ok = np.r_[np.ones(12, bool), np.zeros(8, bool)]
        run.states[a] = np.concatenate([near(12, comp + ref), near(8, ref)])
        run.records[a] = [{"spec": {"prefills": [""] * 20}, "samples": [
            {"prompt": i, "ids": [1, 2, 3], "length": T, "text": "Sure, here it is." if k else "I'm sorry, I can't."}
            for i, k in enumerate(ok)]}]
        run.harmful[a] = ok
    for det in ("perplexity", "self_examine", "guard_model"):
        for g in ("guard_threshold", "benign_eval", "raw", "prefix_injection"):
            pos = run.harmful.get(g, np.zeros(len(run.states[g]), bool))
            for step in (None, *(PREFIX_STEPS if g in run.harmful and det != "perplexity" else ())):
                run.scores[(det, g, step)] = pos + 0.3 * rng.random(len(pos))
    run.scores[("guard_model", "raw", None)][:5] = np.nan  # a slow detector that has not scored everything yet
    return run


def test_write_report_writes_the_contract_from_a_stored_run(tmp_path, monkeypatch):
    import json

    import toydlm.bridge.loading as loading
    import toydlm.real.sri.report as report

    run = _synthetic_run(np.random.default_rng(0))
    monkeypatch.setattr(report, "load_run", lambda model, work: run)
    monkeypatch.setattr(loading, "require_local", lambda m: m)
    monkeypatch.setattr(loading, "load_tokenizer", lambda p: type("Tok", (), {"decode": lambda s, ids, **k: ""})())
    work = tmp_path / "work"
    work.mkdir()
    secs = {"sri_guard": 0.01, "guard_model": 5.0, "self_examine": 2.0, "perplexity_filter": 1.0,
            "text_level_refusal": 0.001, "linear_probe_first_step": 0.001}
    (work / report.COST_FILE).write_text(json.dumps({"detectors": {
        k: {"seconds": v, "overhead_pct": 10 * v, "flops": 100 * v, "flops_pct": v} for k, v in secs.items()}}))
    out = tmp_path / "out"
    out.mkdir()
    other = {"checkpoint": "bigger", "irr": {"raw": 0.1}, "anchors": {}, "sri_guard": None,
             "cells": {"raw": {"asr": 0.2}}}
    (out / "real_sri_signal-bigger.json").write_text(json.dumps(other))
    res = report.write_report(report.MAIN, work, out)
    c = json.loads((out / "real_sri.json").read_text())
    assert c["checkpoint"] == report.MAIN and c["other_checkpoints"]["bigger"]["asr"] == {"raw": 0.2}
    g = c["sri_guard"]
    assert {"auroc", "auroc_unseen", "auroc_unseen_ci95", "n_pos_unseen", "n_neg", "fpr_benign", "overhead_pct",
            "overhead_ratio_vs_guard_model", "flops_ratio_vs_guard_model"} <= set(g)
    assert (g["n_pos_unseen"], g["n_neg"], g["n_pos"]) == (12, 30, 24)
    assert g["overhead_ratio_vs_guard_model"] == pytest.approx(500)
    assert g["flops_ratio_vs_guard_model"] == pytest.approx(500)
    assert set(c["baselines"]) == {"text_level_refusal", "linear_probe_first_step", "perplexity_filter",
                                   "self_examine", "guard_model"}
    assert all({"auroc_unseen", "fpr_benign", "overhead_pct"} <= set(b) for b in c["baselines"].values())
    assert c["baselines"]["guard_model"]["auroc_unseen"] == 1.0  # its synthetic scores separate perfectly
    gm = c["baselines"]["guard_model"]
    assert (gm["n_pos_all"], gm["n_pos_all_judged"]) == (19, 24)  # five unscored successes left out, and counted
    assert c["irr"].keys() == {"raw", "prefix_injection"}
    d = res["detection_by_step_detail"]
    assert (d["n_success"], d["n_refused"]) == (24, 16)
    assert set(d["per_detector"]["self_examine"]["auroc"]) == {"4", "8", "32"}
    assert c["detection_by_step"]["guard_model"] == 4 and c["detection_by_step"]["perplexity_filter"] == 0
    assert len(res["figures"]) == 4 and all((out / f).exists() for f in res["figures"])
    side = report.write_report("bigger", work, out)  # another checkpoint: its own suffixed files, no contract
    assert side["suffix"] == "-bigger" and (out / "real_sri_signal-bigger.json").exists()
    assert all(f.endswith("-bigger.png") and (out / f).exists() for f in side["figures"])


def test_refresh_reproduces_the_stored_guard_and_adds_intervals_and_checks(tmp_path, monkeypatch):
    import json

    import toydlm.bridge.loading as loading
    import toydlm.real.sri.refresh as refresh
    import toydlm.real.sri.report as report
    from toydlm.errors import UserError

    rng = np.random.default_rng(0)
    run = _synthetic_run(rng)
    monkeypatch.setattr(report, "load_run", lambda model, work: run)
    monkeypatch.setattr(refresh, "load_run", lambda model, work: run)
    anchors = ((run.records["guard_train"][0], run.states["guard_train"]),  # answered harmless
               (run.records["raw"][0], run.states["raw"]))  # 8 of 20 refused
    monkeypatch.setattr(refresh, "anchor_records", lambda store, model, sha: anchors)
    monkeypatch.setattr(loading, "require_local", lambda m: m)
    monkeypatch.setattr(loading, "load_tokenizer", lambda p: type("Tok", (), {"decode": lambda s, ids, **k: ""})())
    work, out = tmp_path / "work", tmp_path / "out"
    work.mkdir()
    out.mkdir()
    report.write_report(report.MAIN, work, out)
    got = refresh.refresh(report.MAIN, work, out)
    assert got["differences"] == []
    c = json.loads((out / "real_sri.json").read_text())
    g = c["sri_guard"]
    assert set(g["by_family"]) == {"raw", "prefix_injection"} and g["reproduced_stored_report"]
    assert all(v["auroc_ci95"][0] <= v["auroc"] <= v["auroc_ci95"][1] for v in g["by_family"].values())
    assert g["auroc_all_ci95"][0] <= g["auroc_all"] <= g["auroc_all_ci95"][1]
    assert 0.0 <= g["flagged_share"] <= 1.0
    assert set(c["sri_guard_checks"]) == {"main", "answered_harmless_only", "literal_end_padding"}
    assert c["sri_guard_checks"]["main"]["auroc_unseen"] == g["auroc_unseen"]
    stored = json.loads((out / "real_sri_signal.json").read_text())
    stored["sri_guard"]["auroc"] += 0.01  # a stored number the cells do not reproduce
    (out / "real_sri_signal.json").write_text(json.dumps(stored))
    with pytest.raises(UserError, match="auroc: "):
        refresh.refresh(report.MAIN, work, out)
    assert refresh.refresh(report.MAIN, work, out, accept_changes=True)["differences"]
