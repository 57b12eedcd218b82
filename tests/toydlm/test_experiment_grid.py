"""The grid measurement used by the sweep and recovery-curve experiments, and the seed spread."""

import numpy as np
import pytest

from toydlm.errors import UserError
from toydlm.experiment.cells import Cell
from toydlm.experiment.grid import measure_grid
from toydlm.experiment.metrics import seed_spread
from toydlm.experiment.presets import CORE, RunPreset

PRESET = RunPreset(name="grid-test", model_preset="tiny", train_steps={}, model_seeds=(0,), n=32,
                   samplers=(), attacks=(), grammars=("default",), learned_grammars=())


def _cells():
    return [Cell("default", "oracle", None, CORE[0], 1.0, "prefill:2", False),
            Cell("default", "oracle", None, CORE[3], 1.0, "inject:refusal@3", False)]


def test_grid_rows_carry_measurement_and_prediction_and_resume(tmp_path, monkeypatch):
    rows = measure_grid(_cells(), tmp_path, PRESET, n=48, seed=3, cache=tmp_path / "cache", oracle_sim_n=100,
                        progress=False)
    assert [r["attack"] for r in rows] == ["prefill:2", "inject:refusal@3"]
    for r in rows:
        assert r["n"] == 48 and 0 <= r["asr"] <= 1 and 0 <= r["pred_asr"] <= 1
        assert r["model_offset"] == 0.0 and r["pred_asr"] == r["pred_asr_oracle_sim"]  # the oracle has no offset
    # resume: nothing is sampled again
    import toydlm.experiment.grid as grid

    monkeypatch.setattr(grid, "measure_cell", lambda *a, **k: pytest.fail("a finished cell was recomputed"))
    again = measure_grid(_cells(), tmp_path, PRESET, n=48, seed=3, cache=tmp_path / "cache", oracle_sim_n=100,
                         progress=False)
    assert [r["asr"] for r in again] == [r["asr"] for r in rows]


def test_a_grid_record_from_before_the_oracle_sim_name_is_recomputed(tmp_path):
    import json

    cells = _cells()[:1]
    rows = measure_grid(cells, tmp_path, PRESET, n=32, seed=1, cache=tmp_path / "cache", oracle_sim_n=50,
                        progress=False)
    path = tmp_path / "cells" / f"{cells[0].key}.json"
    rec = json.loads(path.read_text())
    rec["v2"] = rec.pop("oracle_sim")  # the key such records had
    path.write_text(json.dumps(rec))
    again = measure_grid(cells, tmp_path, PRESET, n=32, seed=1, cache=tmp_path / "cache", oracle_sim_n=50,
                         progress=False)
    assert json.dumps(again) == json.dumps(rows)  # same seeds: the recomputed record is identical
    assert "oracle_sim" in json.loads(path.read_text())


def test_grid_rejects_a_learned_model_the_preset_does_not_train(tmp_path):
    with pytest.raises(UserError, match="trains no model on grammar 'default'"):
        measure_grid([Cell("default", "mdlm", 0, CORE[0], 1.0, "none", False)], tmp_path, PRESET, n=8, seed=0,
                     cache=tmp_path)


def _row(seed, asr, sampler="ar_order", model="mdlm"):
    return {"grammar": "default", "model": model, "sampler": sampler, "attack": "none", "temperature": 1.0,
            "model_seed": seed, "asr": asr, "refusal_rate": 1 - asr, "asr_se": 0.01}


def test_seed_spread_groups_seeds_and_skips_single_seed_and_oracle_cells():
    rows = [_row(0, 0.1), _row(1, 0.3), _row(2, 0.2), _row(0, 0.5, sampler="random_T16"),
            _row(None, 0.4, model="oracle")]
    out = seed_spread(rows)
    assert len(out) == 1
    e = out[0]
    assert e["n_seeds"] == 3 and e["seeds"] == [0, 1, 2]
    assert e["asr_mean"] == pytest.approx(0.2) and e["asr_sd"] == pytest.approx(np.std([0.1, 0.3, 0.2], ddof=1))
    assert (e["asr_min"], e["asr_max"]) == (0.1, 0.3)
    assert e["refusal_rate_mean"] == pytest.approx(0.8)


def test_models_trained_in_parallel_workers_equal_serially_trained_ones(tmp_path):
    import jax

    from toydlm.experiment.models import ensure_models
    from toydlm.grammar import load_grammar

    g = load_grammar("default")
    jobs = [("ar", "tiny", 12, 0, g), ("mdlm", "tiny", 12, 0, g)]
    par = ensure_models(jobs, tmp_path / "par", progress=False, workers=2)
    ser = ensure_models(jobs, tmp_path / "ser", progress=False, workers=1)
    for (dp, sp), (ds, ss) in zip(par, ser):
        assert sp["steps"] == ss["steps"] == 12
        leaves_p, leaves_s = jax.tree.leaves(dp.params), jax.tree.leaves(ds.params)
        assert len(leaves_p) == len(leaves_s) > 0
        assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(leaves_p, leaves_s))


def test_train_workers_env_is_validated(monkeypatch):
    from toydlm.experiment.models import train_workers

    monkeypatch.setenv("TOYDLM_TRAIN_WORKERS", "0")
    with pytest.raises(UserError, match="TOYDLM_TRAIN_WORKERS"):
        train_workers()
    monkeypatch.setenv("TOYDLM_TRAIN_WORKERS", "3")
    assert train_workers() == 3


def test_a_multi_seed_run_reports_the_spread_across_training_seeds(tmp_path, monkeypatch):
    from toydlm.experiment.runner import run

    monkeypatch.setenv("TOYDLM_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TOYDLM_TRAIN_WORKERS", "1")
    p = RunPreset(name="seeds-test", model_preset="tiny", train_steps={"ar": 8, "mdlm": 8}, model_seeds=(0, 1),
                  n=32, samplers=(CORE[0],), attacks=("none",), grammars=("default",), fit_attacks=("none",),
                  heldout_sampler="x", oracle_sim_n=64, sri_samplers=())
    s = run(p, seed=0, out=tmp_path / "run", progress=False)
    spread = {(e["model"], e["sampler"]): e for e in s["seed_spread"]}
    assert set(spread) == {("ar", "ar"), ("mdlm", "ar_order")}  # the oracle has no training seed
    for (model, sampler), e in spread.items():
        [cell] = [c for c in s["cells"] if c["model"] == model and c["sampler"] == sampler]
        per = [x["asr"] for x in cell["per_seed"]]
        assert e["n_seeds"] == 2 and sorted(e["asr_per_seed"]) == sorted(per)
        assert [x["model_seed"] for x in cell["per_seed"]] == [0, 1] == cell["model_seeds"]
        assert cell["asr"] == pytest.approx(np.mean(per)) and cell["n"] == 2 * p.n * p.fit_n_factor  # fit cells
        assert cell["pred_asr"] == pytest.approx(np.mean([x["pred_asr"] for x in cell["per_seed"]]))
    assert set(s["calibration"]["per_seed"]) == {"0", "1"}
    assert s["config"]["run_preset"]["model_seeds"] == [0, 1]
    assert s["timings"]["n_compiles"] > 0 and "total_s" in s["timings"]
    assert "Spread across training seeds" in (tmp_path / "run" / "report.md").read_text()
    # model folders are stored relative to $TOYDLM_CACHE: no path of the machine that ran it
    for key, t in s["training"].items():
        assert t["out_dir"].startswith("models/" + key.split("/")[1] + "-"), t["out_dir"]
        assert (tmp_path / "cache" / t["out_dir"]).is_dir()


def test_stacking_the_seeds_in_sampling_gives_the_same_cells(tmp_path, monkeypatch):
    from toydlm.experiment.runner import run

    monkeypatch.setenv("TOYDLM_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TOYDLM_TRAIN_WORKERS", "1")
    p = RunPreset(name="stack-test", model_preset="tiny", train_steps={"ar": 8, "mdlm": 8}, model_seeds=(0, 1),
                  n=16, samplers=(CORE[0], CORE[3]), attacks=("none", "wrapper:prefix"), grammars=("default",),
                  fit_attacks=("none",), heldout_sampler="x", oracle_sim_n=32, sri_samplers=())
    cells = {}
    for flag in ("0", "1"):
        monkeypatch.setenv("TOYDLM_STACK_SEEDS", flag)
        s = run(p, seed=0, out=tmp_path / f"run{flag}", progress=False)
        cells[flag] = {c["key"]: c for c in s["cells"]}
    assert cells["0"].keys() == cells["1"].keys()
    learned = [k for k, c in cells["0"].items() if c.get("per_seed")]
    assert len(learned) == 6  # ar/ar x 2 attacks, mdlm x 2 samplers x 2 attacks
    for k in learned:
        assert cells["0"][k]["per_seed"] == cells["1"][k]["per_seed"], k
    monkeypatch.setenv("TOYDLM_STACK_SEEDS", "yes")
    with pytest.raises(UserError, match="TOYDLM_STACK_SEEDS"):
        run(p, seed=0, out=tmp_path / "bad", progress=False)


def test_seeds_trained_one_after_another_equal_single_runs_and_the_switch_is_validated(tmp_path, monkeypatch):
    import jax

    from toydlm.experiment.models import ensure_models, train_ensembles
    from toydlm.grammar import load_grammar
    from toydlm.train.checkpoint import load_denoiser
    from toydlm.train.loop import train

    g = load_grammar("default")
    monkeypatch.setenv("TOYDLM_TRAIN_ENSEMBLE", "0")
    got = ensure_models([("mdlm", "tiny", 6, s, g) for s in (0, 1)], tmp_path / "c", progress=False, workers=1)
    train("mdlm", "tiny", tmp_path / "alone", steps=6, seed=1, grammar=g, progress=False)
    alone = load_denoiser(tmp_path / "alone", g)
    for a, b in zip(jax.tree.leaves(got[1][0].params), jax.tree.leaves(alone.params)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    monkeypatch.setenv("TOYDLM_TRAIN_ENSEMBLE", "2")
    with pytest.raises(UserError, match="TOYDLM_TRAIN_ENSEMBLE"):
        train_ensembles()
