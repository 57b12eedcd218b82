"""Seed ensembles: each member trains as its seed alone would, resumes exactly, loads as a single run."""

import numpy as np
import pytest

from toydlm.errors import UserError
from toydlm.train import TrainConfig, read_log, train
from toydlm.train.checkpoint import load_denoiser, read_checkpoint
from toydlm.train.ensemble import parse_seeds, train_ensemble

FAST = TrainConfig(batch=16, steps=8, lr=3e-3, warmup=2, eval_every=4, eval_batch=32, ckpt_every=4, log_every=2)
SEEDS = (3, 5)
# One stacked (vmapped) step and one single step differ only in the float rounding of their batched
# kernels: 3e-8 after one update at these sizes. Adam turns such rounding of near-zero gradients into
# differences of a fraction of lr over several updates: after 8 updates the largest was 1.6e-4 (lr / 20)
# when this test was written, and the bound is a third of one update's largest step, lr / 3. The losses,
# which average over the whole model, agree far more tightly.
ATOL_1, ATOL_8, LOSS_RTOL = 1e-6, FAST.lr / 3, 1e-5


def _arrays(run_dir, prefix="params"):
    _, arrays, _ = read_checkpoint(run_dir)
    return {k: v for k, v in arrays.items() if k.startswith(prefix)}


def _max_diff(a, b):
    assert a.keys() == b.keys()
    return max(float(np.max(np.abs(a[k] - b[k]))) for k in a)


@pytest.mark.parametrize("arch", ["mdlm", "ar"])
def test_each_member_matches_training_its_seed_alone(tmp_path, arch):
    one = FAST.replace(steps=1, warmup=0, eval_every=1, ckpt_every=1, log_every=1)
    for cfg, atol, tag in ((one, ATOL_1, "one"), (FAST, ATOL_8, "eight")):
        ens = train_ensemble(arch, "tiny", [tmp_path / f"{tag}-e{s}" for s in SEEDS], SEEDS, train_config=cfg,
                             progress=False)
        for s, e in zip(SEEDS, ens):
            alone = train(arch, "tiny", tmp_path / f"{tag}-s{s}", train_config=cfg, seed=s, progress=False)
            assert e["seed"] == s and e["final_step"] == alone["final_step"] == cfg.steps
            assert _max_diff(_arrays(tmp_path / f"{tag}-e{s}"), _arrays(tmp_path / f"{tag}-s{s}")) <= atol
            assert e["eval_loss"] == pytest.approx(alone["eval_loss"], rel=LOSS_RTOL)
            assert e["train_loss"] == pytest.approx(alone["train_loss"], rel=LOSS_RTOL)
            steps_e = [r["step"] for r in read_log(tmp_path / f"{tag}-e{s}") if "loss" in r]
            steps_a = [r["step"] for r in read_log(tmp_path / f"{tag}-s{s}") if "loss" in r]
            assert steps_e == steps_a
    # the members differ from each other: each has its own init, data and masks
    assert _max_diff(_arrays(tmp_path / "eight-e3"), _arrays(tmp_path / "eight-e5")) > 0.01


def test_resume_mid_ensemble_is_exact(tmp_path):
    straight = train_ensemble("mdlm", "tiny", [tmp_path / f"a{s}" for s in SEEDS], SEEDS, train_config=FAST,
                              progress=False)
    dirs = [tmp_path / f"b{s}" for s in SEEDS]
    first = train_ensemble("mdlm", "tiny", dirs, SEEDS, train_config=FAST, stop_after=4, progress=False)
    assert [r["final_step"] for r in first] == [4, 4]
    second = train_ensemble("mdlm", "tiny", dirs, SEEDS, resume=True, progress=False)
    for s, a, b in zip(SEEDS, straight, second):
        assert b["start_step"] == 4 and b["final_step"] == 8
        pa, pb = _arrays(tmp_path / f"a{s}", ""), _arrays(tmp_path / f"b{s}", "")
        assert any(k.startswith("opt") for k in pa) and "rng" in pa
        for k in pa:
            np.testing.assert_array_equal(pa[k], pb[k], err_msg=k)
        assert b["eval_loss"] == a["eval_loss"]


def test_members_at_different_steps_resume_in_groups(tmp_path):
    dirs = [tmp_path / f"m{s}" for s in SEEDS]
    train("mdlm", "tiny", dirs[0], train_config=FAST, seed=SEEDS[0], stop_after=4, progress=False)
    train("mdlm", "tiny", dirs[1], train_config=FAST, seed=SEEDS[1], stop_after=6, progress=False)
    out = train_ensemble("mdlm", "tiny", dirs, SEEDS, resume=True, progress=False)
    assert [r["start_step"] for r in out] == [4, 6] and [r["final_step"] for r in out] == [8, 8]
    assert [r["seed"] for r in out] == list(SEEDS)


def test_a_member_loads_as_a_single_run(tmp_path):
    train_ensemble("ar", "tiny", [tmp_path / "x", tmp_path / "y"], [0, 1], train_config=FAST, progress=False)
    meta, _, _ = read_checkpoint(tmp_path / "y")
    assert meta["seed"] == 1 and meta["arch"] == "ar" and meta["step"] == 8
    den = load_denoiser(tmp_path / "y")
    assert den is not None


@pytest.mark.parametrize("seeds, dirs, match", [
    ([1, 1], 2, "distinct"),
    ([], 0, "at least one seed"),
    ([0, 1], 1, "output folders"),
    ([0, -1], 2, "seed must be an integer"),
])
def test_bad_ensembles_are_rejected_before_compiling(tmp_path, seeds, dirs, match):
    with pytest.raises(UserError, match=match):
        train_ensemble("mdlm", "tiny", [tmp_path / f"d{i}" for i in range(dirs)], seeds, train_config=FAST,
                       progress=False)


def test_parse_seeds():
    assert parse_seeds("0,1,2") == [0, 1, 2] and parse_seeds(" 4 ") == [4]
    for bad in ("a,b", "1,1", ""):
        with pytest.raises(UserError):
            parse_seeds(bad)


def test_cli_trains_an_ensemble_one_folder_per_seed(tmp_path, capsys):
    from toydlm.cli import main

    out = tmp_path / "ens"
    args = ["train", "--arch", "mdlm", "--preset", "tiny", "--out", str(out), "--steps", "3", "--seeds", "2,7",
            "--no-progress"]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "seed 2 to step 3/3" in text and "seed 7 to step 3/3" in text
    assert read_checkpoint(out / "seed-7")[0]["seed"] == 7
    assert main([*args[:-2], "2,x", "--no-progress"]) != 0
    assert "comma-separated integers" in capsys.readouterr().err


def test_an_ensemble_refuses_suffix_masks(tmp_path):
    """Ensembles share one objective for training and held-out loss, so they train the plain NELBO only."""
    with pytest.raises(UserError, match="suffix_mask_frac must be 0"):
        train_ensemble("mdlm", "tiny", [tmp_path / "a", tmp_path / "b"], [0, 1],
                       train_config=FAST.replace(suffix_mask_frac=0.5), progress=False)
    assert not any(tmp_path.iterdir())
