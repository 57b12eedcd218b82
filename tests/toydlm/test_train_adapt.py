"""Adapting an MDLM from an AR run (shifted logits, opened attention) and early stopping on held-out loss."""

import jax
import numpy as np
import pytest

from toydlm.errors import UserError
from toydlm.grammar import load_grammar
from toydlm.model import ModelConfig, aligned_logits, make_denoiser
from toydlm.train import TrainConfig, read_log, train
from toydlm.train.checkpoint import load_checkpoint, read_checkpoint
from toydlm.train.early_stop import BEST, Patience

FAST = TrainConfig(batch=16, steps=8, lr=3e-3, warmup=2, eval_every=2, eval_batch=32, ckpt_every=4, log_every=2)


@pytest.fixture(scope="module")
def ar_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("ar") / "ar"
    train("ar", "tiny", d, train_config=FAST, progress=False)
    return d


def test_a_shifted_mdlm_starts_from_the_ar_weights_and_predicts_like_it_on_a_causal_view(ar_run, tmp_path):
    r = train("mdlm", "tiny", tmp_path / "m", train_config=FAST, progress=False, shift=True, init_from=ar_run,
              stop_after=2)
    meta, arrays, _ = read_checkpoint(tmp_path / "m")
    assert meta["model_config"]["shift"] is True and meta["model_config"]["causal"] is False
    assert meta["init_from"]["arch"] == "ar" and meta["init_from"]["step"] == 8 and r["final_step"] == 2
    m0 = ModelConfig(**{**meta["model_config"], "causal": True, "shift": False})
    assert "shift" not in m0.to_dict()  # configs made before the field existed hash the same
    with pytest.raises(UserError, match="bidirectional"):
        ModelConfig(**{**meta["model_config"], "causal": True})


def test_the_starting_weights_are_the_ar_weights(ar_run):
    from flax import nnx

    from toydlm.model import init_model, model_config
    from toydlm.train.early_stop import init_params_from

    g = load_grammar(None)
    cfg = model_config("tiny", g, "mdlm", shift=True)
    _, template = nnx.split(init_model(cfg, seed=3))
    params, rec = init_params_from(ar_run, template, cfg.to_dict())
    ar = {k: v for k, v in read_checkpoint(ar_run)[1].items() if k.startswith("params")}
    flat = jax.tree.leaves(params)
    assert len(flat) == len(ar) and rec["arch"] == "ar"
    want = sorted(float(v.sum()) for v in ar.values())
    assert sorted(float(np.asarray(x).sum()) for x in flat) == pytest.approx(want)


def test_shifted_alignment_moves_outputs_to_the_token_they_predict():
    x = jax.numpy.arange(2 * 3 * 4, dtype=jax.numpy.float32).reshape(2, 3, 4)
    out = np.asarray(aligned_logits(x, True, mask_id=1))
    np.testing.assert_array_equal(out[:, 1:, 0], np.asarray(x)[:, :-1, 0])
    assert (out[:, :, 1] < -1e8).all() and (out[:, 0, [0, 2, 3]] == 0).all()
    np.testing.assert_array_equal(np.asarray(aligned_logits(x, False, 1))[..., 0], np.asarray(x)[..., 0])


def test_the_shifted_denoiser_agrees_with_the_shifted_loss(ar_run, tmp_path):
    """The NELBO and the sampler read the same output for the same token: the training loss equals the NELBO
    computed from the denoiser's position-aligned logits on the same corrupted canvas."""
    from flax import nnx

    from toydlm.train.losses import mdlm_corrupt, token_logprobs
    from toydlm.train.step import make_loss

    g = load_grammar(None)
    train("mdlm", "tiny", tmp_path / "m", train_config=FAST, progress=False, shift=True, init_from=ar_run,
          stop_after=2)
    model, _ = load_checkpoint(tmp_path / "m")
    den = make_denoiser(model, "mdlm", g)
    tokens = jax.numpy.asarray(g.sample(4, 0).tokens, jax.numpy.int32)
    key = jax.random.PRNGKey(7)
    graphdef, params = nnx.split(model)
    loss, _ = make_loss(graphdef, "mdlm", g.prompt_len, g.mask_id)(params, tokens, key)
    z, masked, t = mdlm_corrupt(tokens, key, prompt_len=g.prompt_len, mask_id=g.mask_id)
    lp = token_logprobs(den.fn(den.params, z).logits[:, g.prompt_len:], tokens[:, g.prompt_len:], g.mask_id)
    want = (jax.numpy.where(masked, -lp, 0.0) / t[:, None]).sum() / masked.size
    assert float(loss) == pytest.approx(float(want), rel=1e-5)
    raw = np.asarray(model(z)[0])  # and the denoiser's logits at i are the raw output at i - 1
    keep = np.arange(raw.shape[-1]) != g.mask_id
    np.testing.assert_allclose(np.asarray(den.fn(den.params, z).logits)[:, 1:, keep], raw[:, :-1, keep], atol=1e-5)


def test_bad_adaptation_requests_are_one_line_errors(ar_run, tmp_path):
    with pytest.raises(UserError, match="shift applies to an mdlm"):
        train("ar", "tiny", tmp_path / "a", train_config=FAST, progress=False, shift=True)
    with pytest.raises(UserError, match="no checkpoint"):
        train("mdlm", "tiny", tmp_path / "b", train_config=FAST, progress=False, init_from=tmp_path / "nowhere")
    with pytest.raises(UserError, match="its model differs in d_ff, d_model"):
        train("mdlm", "default", tmp_path / "c", train_config=FAST, progress=False, init_from=ar_run)
    with pytest.raises(UserError, match="patience"):
        train("mdlm", "tiny", tmp_path / "d", train_config=FAST, progress=False, patience=0)


def test_patience_counts_evaluations_since_the_best():
    p = Patience(2)
    assert [p.update(s, v) for s, v in ((2, 3.0), (4, 2.0), (6, 2.5))] == [True, True, False]
    assert not p.stop and (p.best, p.best_step) == (2.0, 4)
    p.update(8, 2.0)  # a tie is no improvement
    assert p.stop and Patience(None).stop is False


def _scripted_losses(monkeypatch, losses: dict[int, float]) -> None:
    """The held-out loss at each step comes from `losses` (the loop's own evaluation is replaced)."""
    import toydlm.train.loop as loop

    at = [0]
    real = loop._at_cadence

    def cadence(run, state, *a):
        at[0] = state.step
        return real(run, state, *a)

    monkeypatch.setattr(loop, "_at_cadence", cadence)
    monkeypatch.setattr(loop, "_evaluate", lambda run, params: losses[at[0]])


def test_early_stopping_keeps_the_best_checkpoint_and_resumes_to_the_same_stop(tmp_path, monkeypatch):
    """A held-out loss that rises after step 4 stops the run two evaluations later, keeping step 4's weights
    in `best/`; an interrupted run resumed from step 6 stops at the same step with the same best."""
    _scripted_losses(monkeypatch, {2: 5.0, 4: 4.0, 6: 4.5, 8: 4.6, 10: 4.7, 12: 4.8})
    cfg = FAST.replace(steps=12)
    straight = train("mdlm", "tiny", tmp_path / "a", train_config=cfg, progress=False, patience=2)
    assert straight["stopped_early"] and straight["final_step"] == 8
    assert (straight["best_step"], straight["best_eval_loss"]) == (4, 4.0)
    assert read_checkpoint(tmp_path / "a" / BEST)[0]["step"] == 4
    assert [r["best"] for r in read_log(tmp_path / "a") if "eval_loss" in r] == [True, True, False, False]
    train("mdlm", "tiny", tmp_path / "b", train_config=cfg, progress=False, patience=2, stop_after=6)
    resumed = train("mdlm", "tiny", tmp_path / "b", progress=False, patience=2, resume=True)
    assert resumed["stopped_early"] and resumed["final_step"] == 8 and resumed["best_step"] == 4
    a, b = read_checkpoint(tmp_path / "a" / BEST)[1], read_checkpoint(tmp_path / "b" / BEST)[1]
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_a_run_stopped_off_the_cadence_resumes_to_the_same_stop(tmp_path, monkeypatch):
    """stop_after=5 forces an evaluation a straight run never makes (off the cadence of 2): it is logged but
    not counted, so the resumed run stops where the straight one does, with the same best."""
    _scripted_losses(monkeypatch, {2: 5.0, 4: 4.0, 5: 1.0, 6: 4.5, 8: 4.6, 10: 4.7, 12: 4.8})
    cfg = FAST.replace(steps=12)
    straight = train("mdlm", "tiny", tmp_path / "a", train_config=cfg, progress=False, patience=2)
    train("mdlm", "tiny", tmp_path / "b", train_config=cfg, progress=False, patience=2, stop_after=5)
    resumed = train("mdlm", "tiny", tmp_path / "b", progress=False, patience=2, resume=True)
    assert (resumed["final_step"], resumed["best_step"]) == (straight["final_step"], straight["best_step"]) == (8, 4)
    off = [r for r in read_log(tmp_path / "b") if r.get("step") == 5 and "eval_loss" in r]
    assert off and off[0]["on_cadence"] is False and off[0]["best"] is False


def test_an_evaluation_cut_short_is_made_up_on_resume(tmp_path, monkeypatch):
    """An interruption during step 4's evaluation checkpoints step 4 with no evaluation logged; the resumed
    run evaluates step 4 first, so its best is the straight run's."""
    import toydlm.train.loop as loop

    losses = {2: 5.0, 4: 4.0, 6: 4.5, 8: 4.6, 10: 4.7, 12: 4.8}
    _scripted_losses(monkeypatch, losses)
    cfg = FAST.replace(steps=12)
    scripted, calls = loop._evaluate, []

    def interrupted(run, params):
        calls.append(1)
        if len(calls) == 2:  # the second evaluation (step 4) is cut short
            raise KeyboardInterrupt
        return scripted(run, params)

    monkeypatch.setattr(loop, "_evaluate", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train("mdlm", "tiny", tmp_path / "b", train_config=cfg, progress=False, patience=2)
    assert read_checkpoint(tmp_path / "b")[0]["step"] == 4
    assert 4 not in {r["step"] for r in read_log(tmp_path / "b") if "eval_loss" in r}
    monkeypatch.setattr(loop, "_evaluate", scripted)
    resumed = train("mdlm", "tiny", tmp_path / "b", progress=False, patience=2, resume=True)
    assert (resumed["final_step"], resumed["best_step"]) == (8, 4)


def test_a_resumed_adapted_run_keeps_the_record_of_its_start(ar_run, tmp_path):
    train("mdlm", "tiny", tmp_path / "m", train_config=FAST, progress=False, shift=True, init_from=ar_run,
          stop_after=4)
    train("mdlm", "tiny", tmp_path / "m", progress=False, resume=True)
    meta = read_checkpoint(tmp_path / "m")[0]
    assert meta["step"] == 8 and meta["init_from"]["arch"] == "ar" and meta["model_config"]["shift"] is True
