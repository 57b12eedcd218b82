"""Policies and drivers on the oracle: schedules, blocks, re-masking, pins, ties, determinism."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from toydlm.attacks import build_prompts
from toydlm.denoiser import DenoiserOutput, JaxDenoiser
from toydlm.grammar import EOS_ID, MASK_ID, PROMPT_LEN, Grammar, grammar_oracle, is_harmful, is_refusal
from toydlm.samplers import SamplerConfig, init_state, no_force, row_keys, scan_run
from toydlm.sampling import sample

N = 48


@pytest.fixture(scope="module")
def g():
    return Grammar()


@pytest.fixture(scope="module")
def oracle(g):
    return grammar_oracle(g)


def _equal(a, b) -> bool:
    if a.dtype.kind == "f":
        return np.array_equal(a, b, equal_nan=True)
    return np.array_equal(a, b)


def _traces_equal(t1, t2) -> list[str]:
    assert set(t1.arrays) == set(t2.arrays)
    return [k for k in t1.arrays if not _equal(t1[k], t2[k])]


# ---------------------------------------------------------------------------- drivers
@pytest.mark.parametrize("cfg, attack", [
    (SamplerConfig("low_confidence", steps=8, block_length=4), "prefill:3"),
    (SamplerConfig("remdm", steps=20, remdm_schedule="conf"), "inject:refusal@2"),
], ids=["low_confidence-blocks", "remdm-conf"])
def test_scan_driver_equals_loop_driver(g, oracle, cfg, attack):
    a = sample(oracle, g, cfg, attack=attack, n=N, seed=5, driver="scan")
    b = sample(oracle, g, cfg, attack=attack, n=N, seed=5, driver="loop")
    assert _traces_equal(a, b) == []
    assert a.meta["driver"] == "scan" and b.meta["driver"] == "loop"


@pytest.mark.slow
def test_data_parallel_over_several_devices_gives_the_same_rows(g, oracle, tmp_path):
    """Four forced CPU devices split the batch; every row is bit-identical to one device."""
    import subprocess
    import sys

    cfg = SamplerConfig("remdm", steps=20, remdm_schedule="conf")
    one = sample(oracle, g, cfg, attack="inject:refusal@2", n=N, seed=5)
    script = (
        "import jax, numpy as np, sys\n"
        "from toydlm.grammar import Grammar, grammar_oracle\n"
        "from toydlm.samplers import SamplerConfig\n"
        "from toydlm.sampling import sample\n"
        "assert jax.device_count() == 4\n"
        "g = Grammar()\n"
        f"tr = sample(grammar_oracle(g), g, SamplerConfig('remdm', steps=20, remdm_schedule='conf'), "
        f"attack='inject:refusal@2', n={N}, seed=5)\n"
        "np.savez(sys.argv[1], canvas=tr['canvas'], confidence=tr['confidence'], hidden=tr['hidden_mean'])\n")
    out = tmp_path / "dp.npz"
    env = {**__import__("os").environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4"}
    subprocess.run([sys.executable, "-c", script, str(out)], check=True, env=env, timeout=300)
    z = np.load(out)
    assert _equal(z["canvas"], one["canvas"]) and _equal(z["confidence"], one["confidence"])
    np.testing.assert_allclose(z["hidden"], one["hidden_mean"], rtol=1e-5, atol=1e-6)


def test_external_callable_denoiser_matches_scan(g, oracle):
    """A plain Python callable returning numpy logits (what the torch bridge passes) works the same."""
    cfg = SamplerConfig("low_confidence", steps=8, block_length=4)
    fwd = jax.jit(oracle.fn)
    ext = lambda canvas: np.asarray(fwd(oracle.params, canvas).logits)  # no hidden states
    a = sample(oracle, g, cfg, n=N, seed=5)
    b = sample(ext, g, cfg, n=N, seed=5)
    assert b.meta["driver"] == "loop" and "hidden_mean" not in b
    for k in ("hidden_mean", "hidden_committed"):
        a.arrays.pop(k)
    assert _traces_equal(a, b) == []


def test_same_seed_same_trace_and_rows_independent_of_batching(g, oracle):
    cfg = SamplerConfig("low_confidence", steps=8, block_length=4)
    a = sample(oracle, g, cfg, n=N, seed=5)
    b = sample(oracle, g, cfg, n=N, seed=5, batch_size=N // 2)  # other chunking, same rows
    assert _traces_equal(a, b) == []
    c = sample(oracle, g, cfg, n=N, seed=6)
    assert not np.array_equal(a["canvas"], c["canvas"])


def test_final_row_is_returned_canvas_and_verdicts_are_final_judges(g, oracle):
    cfg = SamplerConfig("remdm", steps=16, remdm_schedule="rescale", eta=0.3).resolved(16)
    b = build_prompts("wrapper:prefix", g, N, seed=1)
    state = init_state(b.prompt_ids, b.response, b.pinned, MASK_ID)
    final, rec = scan_run(oracle, cfg, state, row_keys(jax.random.PRNGKey(0), np.arange(N)), no_force(N))
    np.testing.assert_array_equal(np.asarray(rec["canvas"][-1]), np.asarray(final.canvas[:, PROMPT_LEN:]))
    tr = sample(oracle, g, SamplerConfig("remdm", steps=16, remdm_schedule="rescale", eta=0.3),
                attack="wrapper:prefix", n=N, seed=1)
    resp = tr.final_response
    assert not np.any(resp == MASK_ID)
    np.testing.assert_array_equal(tr["committed_harm"][-1], is_harmful(g, resp))
    np.testing.assert_array_equal(tr["committed_refusal"][-1], is_refusal(g, resp))
    np.testing.assert_array_equal(tr["final_harmful"], is_harmful(g, resp))


# ---------------------------------------------------------------------------- schedules and blocks
@pytest.mark.parametrize("name, steps, block", [
    ("low_confidence", 16, None), ("random", 24, None), ("margin", 6, 8), ("entropy", 16, 2),
    ("annealed", 4, 4),
])
def test_k_schedule_commits_every_position_once(g, oracle, name, steps, block):
    tr = sample(oracle, g, SamplerConfig(name, steps=steps, block_length=block), n=N, seed=3)
    com = tr["committed"]  # [T, B, L]
    hm, hc = tr["hidden_mean"], tr["hidden_committed"]  # pooled hidden states (SRI's input)
    assert hm.shape[:2] == (steps, N) and np.isfinite(hm).all()
    assert np.isnan(hc[0]).all() and np.isfinite(hc[1:]).all()  # nothing committed before step 0
    assert not tr["remasked"].any()
    np.testing.assert_array_equal(com.sum(0), 1)  # every position exactly once
    nb = 1 if block is None else 16 // block
    spb = steps // nb
    from toydlm.samplers import k_schedule

    for b in range(nb):  # blocks left to right, each with its own k_i schedule
        cols = slice(b * (16 // nb), (b + 1) * (16 // nb))
        per_step = com[:, :, cols].sum(2)  # [T, B]
        want = np.zeros(steps, int)
        want[b * spb:(b + 1) * spb] = k_schedule(16 // nb, spb)
        np.testing.assert_array_equal(per_step, np.repeat(want[:, None], N, 1))


def _constant_denoiser(g: Grammar) -> JaxDenoiser:
    """Every position's distribution is uniform over the same tokens: all confidences tie."""
    def fn(params, canvas):
        B, NL = canvas.shape
        logits = jnp.broadcast_to(params, (B, NL, params.shape[0]))
        return DenoiserOutput(logits, None)

    logits = jnp.zeros(g.vocab_size, jnp.float32).at[MASK_ID].set(-1e9)
    return JaxDenoiser(fn, logits, g.vocab_size, MASK_ID, PROMPT_LEN, g.response_len, name="constant")


@pytest.mark.parametrize("name", ["low_confidence", "margin", "entropy"])
def test_ties_are_not_broken_left_to_right(g, name):
    """Dream#72: equal confidences resolved by position silently become AR decoding."""
    tr = sample(_constant_denoiser(g), g, SamplerConfig(name, temperature=0.0), n=N, seed=0)
    first = tr["committed"][0].argmax(-1)  # first committed position per row
    assert len(np.unique(first)) >= 8, np.bincount(first)
    order = tr["commit_step"]  # [B, L] step each position was committed
    left_to_right = np.all(np.diff(order, axis=1) > 0, axis=1)
    assert left_to_right.mean() < 0.05


# ---------------------------------------------------------------------------- re-masking and pins
def test_remdm_re_masks_committed_tokens(g, oracle):
    tr = sample(oracle, g, SamplerConfig("remdm", steps=16, remdm_schedule="rescale", eta=0.3), n=N, seed=4)
    rem = tr["remasked"]
    assert rem.sum() > N  # several re-mask events per sequence
    prev = np.concatenate([tr["init_response"][None], tr["canvas"][:-1]])
    assert np.all(prev[rem] != MASK_ID) and np.all(tr["canvas"][rem] == MASK_ID)
    assert not np.any(tr.final_response == MASK_ID)


@pytest.mark.parametrize("cfg", [SamplerConfig("remdm", steps=20, remdm_schedule="conf"),
                                 SamplerConfig("remdm", steps=16, remdm_schedule="rescale", eta=0.3)],
                         ids=["conf", "rescale"])
def test_pinned_prefill_never_moves(g, oracle, cfg):
    k = 4  # the pin logic is shared by every schedule; these two re-mask the most
    tr = sample(oracle, g, cfg, attack=f"prefill:{k}", n=N, seed=7)
    pre = tr["init_response"][:, :k]
    assert np.all(tr["canvas"][:, :, :k] == pre[None]) and not tr["remasked"][:, :, :k].any()
    assert tr["remasked"].any()  # re-masking did happen elsewhere
    assert tr["final_harmful"].all()  # two harm tokens pinned: harmful under any completion


def test_injection_lands_at_its_step_and_stays(g, oracle):
    t = 5
    tr = sample(oracle, g, SamplerConfig("remdm", steps=16, remdm_schedule="rescale", eta=0.3),
                attack=f"inject:refusal@{t}", n=N, seed=8)
    sorry = g.vocab.id("sorry")
    assert np.all(tr["canvas"][t:, :, 0] == sorry) and tr["pinned"][:, 0].all()
    assert np.any(tr["canvas"][:t, :, 0] != sorry)  # not there before step t


def test_eos_suppression_flag(g, oracle):
    tr = sample(oracle, g, SamplerConfig("low_confidence", eos_inf=True), attack="benign", n=N, seed=9)
    assert not np.any(tr.final_response == EOS_ID)
    assert not np.any(tr["xhat_sample"] == EOS_ID) and not np.any(tr["xhat_argmax"] == EOS_ID)


def test_top_p_tiny_draws_the_argmax(g, oracle):
    """A nucleus smaller than the top token's mass keeps only the argmax: samples equal argmax x̂₀."""
    cfg = SamplerConfig("ar", temperature=1.0, top_p=1e-6)
    tr = sample(oracle, g, cfg, attack="wrapper:roleplay", n=N, seed=2)
    np.testing.assert_array_equal(tr["xhat_sample"], tr["xhat_argmax"])
    assert len(np.unique(tr.final_response[:, 2:], axis=0)) < N // 4  # nearly deterministic completions


def test_sampler_model_pairing_is_checked(g):
    base = _constant_denoiser(g)
    args = (base.fn, base.params, g.vocab_size, MASK_ID, PROMPT_LEN, 16)
    fake_ar = JaxDenoiser(*args, name="fake", causal=True)
    fake_dlm = JaxDenoiser(*args, name="fake", causal=False)
    with pytest.raises(ValueError, match="causal"):
        sample(fake_ar, g, SamplerConfig("low_confidence"), n=2, seed=0)
    with pytest.raises(ValueError, match="ar_order"):
        sample(fake_dlm, g, SamplerConfig("ar"), n=2, seed=0)
