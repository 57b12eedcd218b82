"""The bridge throughput benchmark and its LLaDA generate.py reference (plain torch)."""

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from toydlm.bench.bridge import build_masked_lm, run  # noqa: E402
from toydlm.bridge.adapters import HFDenoiser  # noqa: E402
from toydlm.bridge.reference import k_counts, reference_generate  # noqa: E402
from toydlm.bridge.sampling import loop_sample  # noqa: E402
from toydlm.samplers import SamplerConfig, k_schedule  # noqa: E402

V, L = 64, 8


@pytest.fixture(scope="module")
def tiny_mlm():
    """A random masked LM whose mask logit is far below the rest, as in any trained LLaDA."""
    model, mask_id = build_masked_lm(V, 32, 2, 2, seed=3)
    with torch.no_grad():
        model.decoder.bias[mask_id] = -1e4
    prompt = np.random.default_rng(0).integers(3, mask_id, size=(1, 6))
    return model, mask_id, prompt


def _ours(model, mask_id, prompt, cfg):
    den = HFDenoiser(model, "dlm", mask_id=mask_id, pad_id=0, vocab_size=V, prompt_len=prompt.shape[1],
                     response_len=L)
    try:
        return loop_sample(den, prompt, L, cfg, seed=0, mask_id=mask_id, eos_id=1, batch_size=1)
    finally:
        den.close()


@pytest.mark.parametrize("steps,block", [(4, None), (4, 4), (8, 2)])
def test_reference_and_bridge_commit_the_same_tokens_at_temperature_0(tiny_mlm, steps, block):
    """Same committed tokens *at every step* (not only at the end), blocks included."""
    model, mask_id, prompt = tiny_mlm
    x, hist = reference_generate(model, torch.as_tensor(prompt), steps=steps, gen_length=L, block_length=block,
                                 temperature=0.0, mask_id=mask_id, return_history=True)
    tr = _ours(model, mask_id, prompt, SamplerConfig("low_confidence", steps=steps, block_length=block,
                                                     temperature=0.0))
    assert not (x[0, prompt.shape[1]:] == mask_id).any()
    np.testing.assert_array_equal(hist.numpy(), tr["canvas"][:, 0])
    np.testing.assert_array_equal(x[0, prompt.shape[1]:].numpy(), tr.final_response[0])


def test_reference_with_one_token_blocks_is_our_ar_order(tiny_mlm):
    """LLaDA's sampler with block_length 1 is left-to-right decoding: the bridge's `ar_order`."""
    model, mask_id, prompt = tiny_mlm
    _, hist = reference_generate(model, torch.as_tensor(prompt), steps=L, gen_length=L, block_length=1,
                                 temperature=0.0, mask_id=mask_id, return_history=True)
    tr = _ours(model, mask_id, prompt, SamplerConfig("ar_order", temperature=0.0))
    np.testing.assert_array_equal(hist.numpy(), tr["canvas"][:, 0])


def test_reference_random_and_gumbel_paths_fill_the_canvas_and_follow_the_schedule(tiny_mlm):
    model, mask_id, prompt = tiny_mlm
    g = torch.Generator().manual_seed(0)
    for remasking in ("low_confidence", "random"):
        _, hist = reference_generate(model, torch.as_tensor(prompt), steps=4, gen_length=L, temperature=1.0,
                                     mask_id=mask_id, remasking=remasking, generator=g, return_history=True)
        n_done = (hist != mask_id).sum(1).tolist()
        assert n_done == list(np.cumsum(k_counts(L, 4)))
    assert k_counts(7, 3) == list(k_schedule(7, 3)) == [3, 2, 2]
    with pytest.raises(ValueError, match="one prompt at a time"):
        reference_generate(model, torch.zeros((2, 3), dtype=torch.long), steps=4, gen_length=L, mask_id=mask_id)
    with pytest.raises(ValueError, match="must divide"):
        reference_generate(model, torch.as_tensor(prompt), steps=4, gen_length=L, block_length=3, mask_id=mask_id)


def test_eos_inf_never_proposes_eos(tiny_mlm):
    model, mask_id, prompt = tiny_mlm
    with torch.no_grad():
        saved = model.decoder.bias[1].item()
        model.decoder.bias[1] = 50.0  # EOS would win everywhere
    try:
        x = reference_generate(model, torch.as_tensor(prompt), steps=4, gen_length=L, mask_id=mask_id,
                               eos_id=1, eos_inf=True)
        y = reference_generate(model, torch.as_tensor(prompt), steps=4, gen_length=L, mask_id=mask_id)
    finally:
        with torch.no_grad():
            model.decoder.bias[1] = saved
    assert not (x[0, prompt.shape[1]:] == 1).any() and (y[0, prompt.shape[1]:] == 1).all()


def test_benchmark_runs_on_a_tiny_config_and_reports_positive_rates():
    r = run(seconds=0.01, vocab=V, hidden=32, layers=1, heads=2, batch=4, prompt_len=6, gen_length=L, steps=4,
            ref_per_round=1)
    keys = ("bridge_tokens_per_s", "bridge_batch1_tokens_per_s", "reference_tokens_per_s", "speedup_vs_reference",
            "batch1_speedup_vs_reference", "bridge_steps_per_s", "reference_steps_per_s")
    for k in keys:
        assert math.isfinite(r[k]) and r[k] > 0, (k, r[k])
    assert r["speedup_vs_reference"] == pytest.approx(r["bridge_tokens_per_s"] / r["reference_tokens_per_s"])
    assert r["part"] == "bridge" and r["rounds"] >= 2 and r["reference_prompts"] >= 2
    assert (r["sampler"], r["steps"], r["temperature"], r["batch"]) == ("low_confidence", 4, 0.0, 4)
    # the KV-cached `ar` sampler against HF generate on the same causal LM and batch (greedy: same tokens)
    for k in ("ar_tokens_per_s", "generate_tokens_per_s", "ar_ratio_vs_generate"):
        assert math.isfinite(r[k]) and r[k] > 0, (k, r[k])
    assert r["ar_ratio_vs_generate"] == pytest.approx(r["ar_tokens_per_s"] / r["generate_tokens_per_s"])
    assert r["ar_tokens_match_generate"] == 1.0 and (r["ar_batch"], r["ar_gen_length"]) == (4, L)


def test_bench_cli_registers_the_bridge_part():
    from toydlm.cli import build_parser

    args = build_parser().parse_args(["bench", "bridge", "--json", "--seconds", "1"])
    assert args.bench_module == "toydlm.bench.bridge" and args.json and args.seconds == 1.0
