"""Checkpoints: round trip, atomic layout, and one clear error for every bad input."""

import json
import shutil

import jax.numpy as jnp
import numpy as np
import pytest

from toydlm.grammar import Grammar, GrammarConfig, get_config
from toydlm.train import TrainConfig, load_checkpoint, load_denoiser, train
from toydlm.train.checkpoint import find_checkpoint, read_checkpoint, save_checkpoint

G = Grammar()
CFG = TrainConfig(
    batch=16, steps=4, lr=3e-3, warmup=1, eval_every=4, eval_batch=32, ckpt_every=2, log_every=2
)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    d = tmp_path_factory.mktemp("ckpt") / "run"
    train("mdlm", "tiny", d, train_config=CFG, seed=3, progress=False)
    return d


@pytest.fixture
def copy(run, tmp_path):
    dst = tmp_path / "run"
    shutil.copytree(run, dst)
    return dst


def test_layout_is_versioned_with_a_latest_pointer(run):
    assert (run / "LATEST").read_text().strip() == "ckpt-0000004"
    assert sorted(p.name for p in run.glob("ckpt-*")) == ["ckpt-0000002", "ckpt-0000004"]
    assert not list(run.glob(".*"))  # no temp dirs left behind
    assert find_checkpoint(run) == run / "ckpt-0000004"


def test_meta_holds_everything_needed_to_rebuild(run):
    meta, arrays, _ = read_checkpoint(run)
    assert meta["step"] == 4 and meta["arch"] == "mdlm" and meta["preset"] == "tiny" and meta["seed"] == 3
    assert (
        GrammarConfig.from_dict(meta["grammar"]) == G.config
        and meta["grammar_hash"] == G.config.config_hash()
    )
    assert meta["model_config"]["vocab_size"] == G.vocab_size and meta["model_config"]["causal"] is False
    assert TrainConfig.from_dict(meta["train_config"]) == CFG
    assert (
        "rng" in arrays
        and any(k.startswith("opt") for k in arrays)
        and any(k.startswith("params") for k in arrays)
    )


def test_load_denoiser_round_trip(run):
    model, meta = load_checkpoint(run)
    den = load_denoiser(run, G)
    assert not den.causal and den.vocab_size == G.vocab_size
    x = jnp.asarray(G.sample(4, 0).tokens)
    raw = model(x)[0]
    out = den(x).logits
    keep = np.arange(G.vocab_size) != G.mask_id
    np.testing.assert_allclose(np.asarray(out[..., keep]), np.asarray(raw[..., keep]), rtol=1e-5, atol=1e-6)
    # weights equal the stored arrays
    _, arrays, _ = read_checkpoint(run)
    np.testing.assert_array_equal(
        np.asarray(model.head.kernel[...]), arrays["params['head']['kernel'].value"]
    )
    # without a grammar, the stored grammar config is rebuilt (and its hash checked)
    assert load_denoiser(run).vocab_size == G.vocab_size


def test_grammar_mismatch_is_one_clear_line(run):
    other = Grammar(get_config("length_matched"))
    with pytest.raises(ValueError) as e:
        load_denoiser(run, other)
    msg = str(e.value)
    assert "\n" not in msg and "grammar" in msg
    assert G.config.config_hash() in msg and other.config.config_hash() in msg
    bigger = Grammar(G.config.replace(n_benign_topics=10, name="bigger"))
    with pytest.raises(ValueError, match=r"vocab 78\).*vocab 80"):
        load_denoiser(run, bigger)
    with pytest.raises(ValueError, match="trained on grammar"):
        train("mdlm", "tiny", run, resume=True, grammar="length_matched", progress=False)


def test_corrupt_arrays_are_detected(copy):
    f = copy / "ckpt-0000004" / "arrays.npz"
    b = bytearray(f.read_bytes())
    b[len(b) // 2] ^= 0xFF
    f.write_bytes(bytes(b))
    with pytest.raises(ValueError, match="corrupt: arrays.npz does not match the checksum"):
        load_checkpoint(copy)


def test_truncated_meta_is_detected(copy):
    f = copy / "ckpt-0000004" / "meta.json"
    f.write_text(f.read_text()[:50])
    with pytest.raises(ValueError, match="corrupt: meta.json is not valid JSON"):
        load_checkpoint(copy)


def test_partial_checkpoint_is_detected(copy):
    (copy / "ckpt-0000004" / "arrays.npz").unlink()
    with pytest.raises(ValueError, match="incomplete: arrays.npz is missing"):
        load_denoiser(copy)


def test_missing_checkpoint(tmp_path):
    with pytest.raises(ValueError, match="no checkpoint found"):
        load_checkpoint(tmp_path)


def test_model_config_that_does_not_fit_the_arrays(copy):
    f = copy / "ckpt-0000004" / "meta.json"
    meta = json.loads(f.read_text())
    meta["model_config"]["d_model"] = 64
    f.write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="does not match its model config"):
        load_checkpoint(copy)


def test_unknown_format(copy):
    f = copy / "ckpt-0000004" / "meta.json"
    meta = json.loads(f.read_text())
    meta["format"] = "something-else/9"
    f.write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="unknown format"):
        load_checkpoint(copy)


def test_save_is_atomic_and_prunes(tmp_path, monkeypatch):
    arr = {"params['w']": np.ones((2, 3), np.float32)}
    meta = {"arch": "ar", "model_config": {}, "grammar": {}, "grammar_hash": "x", "versions": {}}
    for s in (1, 2, 3):
        save_checkpoint(tmp_path, s, arr, meta, keep=2)
    assert sorted(p.name for p in tmp_path.glob("ckpt-*")) == ["ckpt-0000002", "ckpt-0000003"]
    # a crash while writing leaves the previous checkpoint and no visible partial one
    import toydlm.train.checkpoint as ck

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(ck, "atomic_write_text", boom)
    with pytest.raises(OSError):
        save_checkpoint(tmp_path, 4, arr, meta)
    assert sorted(p.name for p in tmp_path.glob("ckpt-*")) == ["ckpt-0000002", "ckpt-0000003"]
    assert not list(tmp_path.glob(".ckpt-*"))
    assert read_checkpoint(tmp_path)[0]["step"] == 3
