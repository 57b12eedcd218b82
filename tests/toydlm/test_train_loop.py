"""The training loop: it learns, logs, resumes exactly, stops on NaN, rejects bad requests early."""

import json

import numpy as np
import pytest

import toydlm.train.loop as loop
from toydlm.cli import main
from toydlm.train import NonFiniteLoss, TrainConfig, read_log, train
from toydlm.train.checkpoint import read_checkpoint

FAST = TrainConfig(
    batch=16, steps=8, lr=3e-3, warmup=2, eval_every=4, eval_batch=32, ckpt_every=4, log_every=2
)
FAST2 = FAST.replace(steps=2, warmup=1, eval_every=2, ckpt_every=2)


def _params(run_dir):
    meta, arrays, _ = read_checkpoint(run_dir)
    return meta, {k: v for k, v in arrays.items() if not k.startswith("rng")}


def test_tiny_run_learns_and_logs(tmp_path):
    r = train(
        "ar",
        "tiny",
        tmp_path / "r",
        train_config=FAST.replace(steps=30, eval_every=30, ckpt_every=30),
        progress=False,
    )
    assert r["final_step"] == 30 and r["n_devices"] >= 1
    recs = read_log(tmp_path / "r")
    losses = [x["loss"] for x in recs if "loss" in x]
    assert len(losses) == 15 and all(np.isfinite(losses))
    assert losses[-1] < losses[0] - 1.0  # from ~log(V) towards the data entropy
    evals = [x for x in recs if "eval_loss" in x]
    assert evals and evals[-1]["eval_loss"] == pytest.approx(r["eval_loss"])
    assert 0 < r["entropy_floor"] < r["eval_loss"]
    assert json.loads((tmp_path / "r" / "summary.json").read_text())["final_step"] == 30
    assert (tmp_path / "r" / "LATEST").read_text().strip() == "ckpt-0000030"


@pytest.mark.parametrize("arch", ["mdlm", "ar"])
def test_resume_is_exact(tmp_path, arch):
    """2N steps straight == N steps, stop, resume, N more: identical params and optimiser state."""
    straight = train(arch, "tiny", tmp_path / "a", train_config=FAST, seed=5, progress=False)
    first = train(arch, "tiny", tmp_path / "b", train_config=FAST, seed=5, stop_after=4, progress=False)
    assert first["final_step"] == 4
    second = train(arch, "tiny", tmp_path / "b", resume=True, progress=False)
    assert second["start_step"] == 4 and second["final_step"] == 8 == straight["final_step"]
    ma, pa = _params(tmp_path / "a")
    mb, pb = _params(tmp_path / "b")
    assert ma["step"] == mb["step"] == 8
    assert pa.keys() == pb.keys() and any(k.startswith("opt") for k in pa)
    for k in pa:
        np.testing.assert_array_equal(pa[k], pb[k], err_msg=k)
    assert second["eval_loss"] == pytest.approx(straight["eval_loss"], abs=1e-6)


def test_a_different_seed_gives_different_params(tmp_path):
    train("mdlm", "tiny", tmp_path / "a", train_config=FAST2, seed=1, progress=False)
    train("mdlm", "tiny", tmp_path / "b", train_config=FAST2, seed=2, progress=False)
    pa, pb = _params(tmp_path / "a")[1], _params(tmp_path / "b")[1]
    assert any(not np.array_equal(pa[k], pb[k]) for k in pa)


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    run = tmp_path / "r"
    train("mdlm", "tiny", run, train_config=FAST, stop_after=4, progress=False)
    meta_before, good = _params(run)
    real = loop.make_loss

    def poisoned(*a, **k):
        f = real(*a, **k)
        return lambda params, x, key: (lambda loss, aux: (loss * np.nan, aux))(*f(params, x, key))

    monkeypatch.setattr(loop, "make_loss", poisoned)
    with pytest.raises(
        NonFiniteLoss, match=r"non-finite loss .* at step 5.*last good checkpoint .*ckpt-0000004"
    ) as e:
        train("mdlm", "tiny", run, resume=True, progress=False)
    assert "\n" not in str(e.value)
    meta_after, kept = _params(run)
    assert meta_after["step"] == meta_before["step"] == 4
    for k in good:
        np.testing.assert_array_equal(good[k], kept[k])


def test_existing_run_needs_resume(tmp_path):
    train("ar", "tiny", tmp_path / "r", train_config=FAST2, progress=False)
    with pytest.raises(ValueError, match="--resume"):
        train("ar", "tiny", tmp_path / "r", progress=False)
    with pytest.raises(ValueError, match="ar/tiny run, not mdlm/tiny"):
        train("mdlm", "tiny", tmp_path / "r", resume=True, progress=False)
    with pytest.raises(ValueError, match="no checkpoint"):
        train("ar", "tiny", tmp_path / "empty", resume=True, progress=False)


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(preset="huge"), "unknown model preset 'huge'"),
        (dict(arch="gpt"), "unknown arch 'gpt'"),
        (dict(steps=0), "steps must be a positive integer"),
        (dict(steps=-3), "steps must be a positive integer"),
        (dict(steps=2.5), "steps must be a positive integer"),
        (dict(steps=True), "steps must be a positive integer"),
        (dict(seed=-1), "seed"),
        (dict(grammar="nope"), "unknown grammar preset"),
        (dict(train_config=FAST.replace(batch=0)), "batch"),
        (dict(train_config=FAST.replace(lr=float("nan"))), "lr"),
        (dict(train_config=FAST.replace(warmup=8)), "warmup"),
        (dict(train_config=FAST.replace(suffix_mask_frac=1.5)), "suffix_mask_frac"),
        (dict(train_config=FAST.replace(suffix_mask_frac=True)), "suffix_mask_frac"),
        (dict(arch="ar", train_config=FAST.replace(suffix_mask_frac=0.5)), "suffix_mask_frac applies to an mdlm"),
    ],
)
def test_bad_requests_are_rejected_before_compiling(tmp_path, monkeypatch, kw, match):
    def no_compile(*a, **k):
        raise AssertionError("compiled before validating")

    monkeypatch.setattr(loop, "make_steps", no_compile)
    monkeypatch.setattr(loop, "init_model", no_compile)
    args = dict(arch="mdlm", preset="tiny", out_dir=tmp_path / "r", progress=False) | kw
    with pytest.raises(ValueError, match=match):
        train(**args)
    assert not (tmp_path / "r").exists()


def test_cli_rejects_bad_preset_and_steps_in_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(loop, "make_steps", lambda *a, **k: (_ for _ in ()).throw(AssertionError("compiled")))
    for argv in (
        ["--arch", "ar", "--preset", "huge"],
        ["--arch", "mdlm", "--steps", "0"],
        ["--arch", "diffusion"],
    ):
        rc = main(["train", "--out", str(tmp_path / "r"), *argv])
        err = capsys.readouterr().err
        assert rc == 2 and err.startswith("toydlm train: error:") and err.count("\n") == 1, err


def test_cli_trains_and_resumes(tmp_path, capsys):
    out = str(tmp_path / "r")
    assert (
        main(["train", "--arch", "ar", "--preset", "tiny", "--out", out, "--steps", "3", "--no-progress"])
        == 0
    )
    assert "to step 3/3" in capsys.readouterr().out
    assert (
        main(
            [
                "train",
                "--arch",
                "ar",
                "--preset",
                "tiny",
                "--out",
                out,
                "--steps",
                "5",
                "--resume",
                "--no-progress",
            ]
        )
        == 0
    )
    assert "to step 5/5" in capsys.readouterr().out
