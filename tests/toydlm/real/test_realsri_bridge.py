"""The KV-cached bridge's states pool exactly as the study's AR wrapper: checked against one full forward."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from toydlm.bridge.adapters import find_final_norm  # noqa: E402
from toydlm.bridge.encode import encode_prompts  # noqa: E402
from toydlm.bridge.ends import end_ids, mask_token_for, output_vocab  # noqa: E402
from toydlm.bridge.kvar import kv_ar_sample  # noqa: E402
from toydlm.bridge.loading import load_model  # noqa: E402
from toydlm.bridge.tiny import write_tiny  # noqa: E402
from toydlm.real.sri.states import trace_states  # noqa: E402
from toydlm.samplers import SamplerConfig  # noqa: E402

L = 7


def _final_norm_states(model, ids: np.ndarray) -> np.ndarray:
    """Final-norm output at every position of one unpadded sequence `[S, D]`."""
    got = []
    hook = find_final_norm(model).register_forward_hook(lambda m, i, o: got.append(o))
    try:
        with torch.no_grad():
            model(input_ids=torch.as_tensor(ids[None], dtype=torch.long))
    finally:
        hook.remove()
    return got[-1][0].float().numpy()


@pytest.mark.parametrize("prompt", ["how to make a bomb", "write a poem about music please"])
def test_pooled_states_are_running_means_of_the_states_that_produced_each_token(tmp_path, prompt):
    model, tok = load_model(write_tiny("ar", tmp_path / "m"), "ar")
    ids, att = encode_prompts(tok, [prompt])
    vocab, eos = output_vocab(model, tok), end_ids(tok, model)[0]
    cfg = SamplerConfig("ar", temperature=0.0).replace(eos_id=eos)
    trace = kv_ar_sample(model, ids, att, L, cfg, 0, mask_token_for(tok, "ar", vocab=vocab), eos, vocab,
                         record_hidden=True, stop_at_end=True)
    resp = np.asarray(trace.final_response)[0]
    hit = np.flatnonzero(resp == eos)
    n = int(hit[0]) if len(hit) else L
    got = trace_states(trace, np.array([n]))[0]
    P = ids.shape[1]
    full = _final_norm_states(model, np.concatenate([ids[0], resp[: max(n, 1)]]))
    producing = full[P - 1: P - 1 + min(n + 1, L)]  # the prompt's last state, then tokens 1..n
    for t in range(L):
        want = producing[: min(t, n) + 1].mean(0)
        np.testing.assert_allclose(got[t], want, rtol=1e-4, atol=1e-5)


def test_sri_guard_threshold_on_a_tiny_checkpoint_is_the_held_out_quantile(tmp_path):
    from toydlm.real.kit.checkpoint import open_checkpoint
    from toydlm.real.kit.generate import CellPlan
    from toydlm.real.sri.collect import sample_signal_cell
    from toydlm.sri.guard import fit_guard, reconstruction_error
    from toydlm.sri.signal import compute_centres, sri_signal

    setup = open_checkpoint(str(write_tiny("ar", tmp_path / "m")), gen_length=6, batch_size=8, verbose=False)
    words = ["poem", "music", "sea", "bomb", "virus", "code", "cake", "tree"]
    cell = lambda name, n, off: CellPlan(name, [f"write {words[(i + off) % 8]} {i}" for i in range(n)],  # noqa: E731
                                         [""] * n, 0.0)
    (_, benign), (_, harmful) = (sample_signal_cell(setup, cell(k, 12, o)) for k, o in (("b", 0), ("h", 3)))
    comp, ref = compute_centres(benign, np.ones(12, bool), harmful, np.ones(12, bool))
    (_, train), (_, held) = (sample_signal_cell(setup, cell(k, n, o)) for k, n, o in (("t", 24, 1), ("q", 20, 5)))
    sig_train, sig_held = sri_signal(train, comp, ref), sri_signal(held, comp, ref)
    assert sig_train.shape == (24, 6) and ((0 <= sig_train) & (sig_train <= 1)).all()
    g = fit_guard(sig_train, sig_held)
    err = reconstruction_error(g.params, sig_held)
    assert g.threshold == pytest.approx(float(np.quantile(err, 0.99)))
    assert g.flag(sig_held).sum() <= 1  # at most one of 20 held-out rows lies above its own 99% quantile
