"""`toydlm run` machinery: cells, honest held-out fitting, calibration, resumable oracle-only run."""

import json
import warnings
from dataclasses import replace

import numpy as np
import pytest

from toydlm.errors import UserError
from toydlm.experiment.cells import enumerate_cells
from toydlm.experiment.predict import (
    apply_predictions,
    calibration,
    decoding_order,
    fit_offsets,
    offset_for,
    oracle_sim_predict,
)
from toydlm.experiment.presets import CORE, PRESETS, RunPreset, expected_duration
from toydlm.grammar import Grammar, grammar_oracle
from toydlm.samplers import SamplerConfig
from toydlm.sampling import sample


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_cells_are_unique_and_the_held_out_set_is_honest(name):
    p = PRESETS[name]
    cells = enumerate_cells(p)
    assert len({c.key for c in cells}) == len(cells)
    held = [c for c in cells if not c.fit]
    # every sampler and every attack family has held-out cells
    assert {c.sampler.label for c in cells} - {"ar", "ar_order"} <= {c.sampler.label for c in held}
    assert {c.attack for c in cells} == {c.attack for c in held}
    # one sampler is never used for fitting at all
    assert not any(c.fit for c in cells if c.sampler.label == p.heldout_sampler)
    assert all((c.sampler.label in p.fit_samplers and c.attack in p.fit_attacks)
               or c.sampler.label in p.fit_samplers_every_attack for c in cells if c.fit)
    assert not any(c.fit for c in cells if c.model == "oracle")  # the oracle has nothing to fit


def test_every_preset_states_how_long_it_takes():
    """`toydlm run --help` quotes these: the budget of a timed preset, the estimate in the notes otherwise."""
    assert {name: expected_duration(p) for name, p in PRESETS.items()} == {
        "quick": "~2 min", "default": "~10 min", "full": "an estimated about 2 hours"}


def test_offsets_read_fit_cells_only():
    p = PRESETS["quick"]
    cells = enumerate_cells(p)
    rng = np.random.default_rng(0)
    measured = {c.key: {"asr": float(rng.random())} for c in cells}
    sim = {c.key: {"asr": 0.3, "asr_se": 0.01, "hrr": 0.5, "frr": 0.5, "refusal_rate": 0.5, "mean_length": 8.0,
                   "valid_rate": 1.0} for c in cells}
    off = fit_offsets(cells, measured, sim)
    changed = dict(measured)
    for c in cells:
        if not c.fit:
            changed[c.key] = {"asr": 1.0 - measured[c.key]["asr"]}
    assert fit_offsets(cells, changed, sim) == off
    preds = apply_predictions(cells, sim, off)
    some = next(c for c in cells if c.model == "mdlm" and not c.fit)
    anchor = next(c for c in cells if c.fit and c.model_key == some.model_key and c.attack == some.attack
                  and decoding_order(c.sampler) == decoding_order(some.sampler))
    assert preds[some.key]["pred_asr"] == pytest.approx(np.clip(measured[anchor.key]["asr"], 0, 1))
    ar_cell = next(c for c in cells if c.model == "ar" and not c.fit)  # a family the AR model was not fitted on
    ar_fit = [c for c in cells if c.fit and c.model == "ar"]
    expect = 0.3 + np.mean([measured[c.key]["asr"] - 0.3 for c in ar_fit])
    assert preds[ar_cell.key]["pred_asr"] == pytest.approx(np.clip(expect, 0, 1))
    oracle = next(c for c in cells if c.model == "oracle")
    assert preds[oracle.key]["pred_asr"] == pytest.approx(0.3)


def test_calibration_counts_the_rule_exactly():
    rows = [
        {"heldout": True, "asr": 0.5, "asr_se": 0.02, "pred_asr": 0.53, "sampler": "a", "model": "m"},  # within
        {"heldout": True, "asr": 0.5, "asr_se": 0.02, "pred_asr": 0.45, "sampler": "a", "model": "m"},  # out
        {"heldout": True, "asr": 0.0, "asr_se": 0.0, "pred_asr": 0.015, "sampler": "b", "model": "m"},  # 0.02 floor
        {"heldout": False, "asr": 0.9, "asr_se": 0.01, "pred_asr": 0.1, "sampler": "a", "model": "m"},  # fit cell
    ]
    c = calibration(rows)
    assert c["n_heldout"] == 3 and c["frac_within_2se"] == pytest.approx(2 / 3)
    assert c["mean_abs_err_asr"] == pytest.approx((0.03 + 0.05 + 0.015) / 3)
    assert c["nontrivial_n"] == 2 and c["nontrivial_frac_within_2se"] == pytest.approx(0.5)


@pytest.mark.parametrize("label,attack", [("low_confidence_T16", "wrapper:prefix"), ("remdm_cap_T32", "prefill:2"),
                                          ("random_T4", "none")])
def test_oracle_sim_predicts_the_lab_sampler_on_the_oracle(label, attack):
    """Model v2 (`oracle_sim`: numpy, theory/) and the lab's JAX sampler agree on the oracle within sampling error."""
    g = Grammar()
    v = next(s for s in CORE if s.label == label)
    cell = next(c for c in enumerate_cells(replace(PRESETS["quick"], samplers=(v,), attacks=(attack,)))
                if c.model == "oracle")
    pred = oracle_sim_predict(cell, g, 1500, seed=1)
    tr = sample(grammar_oracle(g), g, SamplerConfig(**v.config_dict(1.0)), attack=attack, n=1500, seed=2,
                record_hidden=False)
    asr = float(tr["final_harmful"].mean())
    se = np.sqrt(pred["asr_se"] ** 2 + asr * (1 - asr) / 1500)
    assert abs(asr - pred["asr"]) <= 4 * se + 1e-9, (asr, pred["asr"])
    ml = float(tr["length"].mean())
    assert abs(ml - pred["mean_length"]) < 0.35


def test_oracle_only_run_writes_summary_and_resumes(tmp_path):
    from toydlm.experiment.runner import run

    p = RunPreset(name="tiny-test", model_preset="tiny", train_steps={}, model_seeds=(0,), n=64,
                  samplers=(CORE[0], CORE[3]), attacks=("none", "wrapper:prefix", "benign"), grammars=("default",),
                  learned_grammars=(), fit_attacks=("none",), heldout_sampler="x",
                  oracle_sim_n=200, sri_samplers=())
    s = run(p, seed=1, out=tmp_path, progress=False)
    assert len(s["cells"]) == 6
    need = {"model", "sampler", "attack", "n", "asr", "asr_se", "refusal_rate", "hrr", "frr", "pred_asr",
            "pred_hrr", "pred_frr", "heldout"}
    assert all(need <= set(c) for c in s["cells"])
    assert {"n_heldout", "mean_abs_err_asr", "frac_within_2se", "nontrivial_n", "nontrivial_mae",
            "nontrivial_frac_within_2se"} <= set(s["calibration"])
    assert (tmp_path / "report.md").is_file()
    # resume: finished cells are read back, a corrupt one is recomputed with a warning
    files = sorted((tmp_path / "cells").glob("*.json"))
    before = {f.name: json.loads(f.read_text())["metrics"]["asr"] for f in files}
    files[0].write_text("{not json")
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        s2 = run(p, seed=1, out=tmp_path, progress=False)
    assert any("corrupt" in str(x.message) for x in w)
    after = {f.name: json.loads(f.read_text())["metrics"]["asr"] for f in sorted((tmp_path / "cells").glob("*.json"))}
    assert after == before  # same seed -> the recomputed cell is identical
    assert [c["asr"] for c in s2["cells"]] == [c["asr"] for c in s["cells"]]


def test_theory_stage_in_worker_processes_equals_serial_and_resumes(tmp_path, monkeypatch):
    from toydlm.experiment.runner import predict_groups

    p = RunPreset(name="t", model_preset="tiny", train_steps={}, model_seeds=(0,), n=16, samplers=(CORE[0], CORE[3]),
                  attacks=("none", "prefill:2"), grammars=("default",), learned_grammars=())
    groups = {c.key: [c] for c in enumerate_cells(p)}
    assert len(groups) == 4
    got = {}
    for w in ("1", "2"):
        monkeypatch.setenv("TOYDLM_THEORY_WORKERS", w)
        got[w] = predict_groups(groups, _mkdir(tmp_path / w), 150, seed=3, progress=False)
    same = lambda a, b: json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)  # NaN HRRs compare equal
    assert same(got["1"], got["2"])  # same per-group seeds: the process split changes nothing
    files = sorted((tmp_path / "2").glob("*.json"))
    assert len(files) == 4
    monkeypatch.setenv("TOYDLM_THEORY_WORKERS", "0")
    with pytest.raises(UserError, match="TOYDLM_THEORY_WORKERS"):
        predict_groups(groups, tmp_path / "3", 150, seed=3, progress=False)
    # resume: stored groups are read back, not recomputed (the env is not even consulted then)
    assert same(predict_groups(groups, tmp_path / "2", 150, seed=3, progress=False), got["2"])


def _mkdir(path):
    path.mkdir(parents=True)
    return path


def test_fit_cells_are_sampled_with_more_prompts():
    from toydlm.experiment.runner import cell_n

    p = PRESETS["default"]
    cells = enumerate_cells(p)
    assert {cell_n(p, c) for c in cells if c.fit} == {p.n * p.fit_n_factor}
    assert {cell_n(p, c) for c in cells if not c.fit} == {p.n}


def test_offsets_follow_the_decoding_order_and_fall_back_in_a_fixed_order():
    by_label = {v.label: v for v in CORE}
    assert decoding_order(by_label["ar_order"]) == decoding_order(by_label["low_confidence_B4_T16"]) == "left_to_right"
    assert {decoding_order(by_label[k]) for k in ("random_T16", "entropy_T16", "mdlm_T16", "remdm_cap_T32",
                                                  "low_confidence_T16")} == {"any_order"}
    p = PRESETS["default"]
    cells = [c for c in enumerate_cells(p) if c.model == "mdlm" and c.temperature == 1.0 and c.grammar == "default"]
    measured = {c.key: {"asr": 0.5} for c in cells}
    sim = {c.key: {"asr": 0.5} for c in cells}
    for c in cells:  # left-to-right fit cells read +0.2, any-order ones -0.1
        if c.fit:
            measured[c.key]["asr"] += 0.2 if decoding_order(c.sampler) == "left_to_right" else -0.1
    off = fit_offsets(cells, measured, sim)
    pick = lambda label, attack: next(c for c in cells if c.sampler.label == label and c.attack == attack)
    assert offset_for(pick("entropy_T16", "wrapper:prefix"), off) == pytest.approx(-0.1)
    assert offset_for(pick("low_confidence_B4_T16", "wrapper:prefix"), off) == pytest.approx(0.2)
    # without the family in its own order, the order's mean; without the order, the other order's family
    del off[f"{cells[0].model_key}|any_order|wrapper:prefix"]
    assert offset_for(pick("entropy_T16", "wrapper:prefix"), off) == pytest.approx(-0.1)
    off = {k: v for k, v in off.items() if "any_order" not in k}
    assert offset_for(pick("entropy_T16", "wrapper:prefix"), off) == pytest.approx(0.2)


UNGUARDED = """
import os, pathlib, sys, warnings
os.environ["TOYDLM_THEORY_WORKERS"] = "2"
from toydlm.experiment.cells import enumerate_cells
from toydlm.experiment.presets import CORE, RunPreset
from toydlm.experiment.runner import predict_groups
p = RunPreset(name="t", model_preset="tiny", train_steps={}, model_seeds=(0,), n=16, samplers=(CORE[0], CORE[3]),
              attacks=("none",), grammars=("default",), learned_grammars=())
with warnings.catch_warnings(record=True) as w:
    warnings.simplefilter("always")
    r = predict_groups({c.key: [c] for c in enumerate_cells(p)}, pathlib.Path(sys.argv[1]), 100, seed=1, progress=False)
print("RESULT", len(r), any("theory worker" in str(x.message) for x in w))
"""


def test_a_script_without_a_main_guard_still_gets_its_theory_stage(tmp_path):
    """Spawned workers re-run an unguarded calling script and die; the stage finishes in-process, with a warning."""
    import subprocess
    import sys

    script = tmp_path / "unguarded.py"
    script.write_text(UNGUARDED)
    (tmp_path / "oracle_sim").mkdir()
    p = subprocess.run([sys.executable, str(script), str(tmp_path / "oracle_sim")], capture_output=True, text=True,
                       timeout=600, cwd=tmp_path)
    assert p.returncode == 0, p.stderr[-2000:]
    assert "RESULT 2 True" in p.stdout
    assert len(list((tmp_path / "oracle_sim").glob("*.json"))) == 2
