"""Trace derived quantities, save/load, rates, plots and the sample / show-trace commands."""

import json
import math

import numpy as np
import pytest

from toydlm.cli import main
from toydlm.grammar import EOS_ID, Grammar, grammar_oracle
from toydlm.samplers import SamplerConfig
from toydlm.sampling import outcome_rates, sample
from toydlm.trace import eos_first_excess, eos_first_share, load_trace, response_length, save_trace


@pytest.fixture(scope="module")
def trace():
    g = Grammar()
    return g, sample(grammar_oracle(g), g, SamplerConfig("low_confidence", steps=8, block_length=4),
                     attack="prefill:3", n=48, seed=5)


def test_eos_first_share_counts_the_first_commits_with_fractional_boundary():
    # one row, L = 6, n_first = 3: step 0 commits 2 EOS, step 1 commits 2 tokens (1 EOS), step 2 the rest
    committed = np.zeros((3, 1, 6), bool)
    canvas = np.full((3, 1, 6), 9)
    committed[0, 0, [4, 5]] = True
    committed[1, 0, [0, 3]] = True
    committed[2, 0, [1, 2]] = True
    canvas[:, 0, 4:] = EOS_ID
    canvas[1:, 0, 3] = EOS_ID
    share = eos_first_share(committed, canvas, EOS_ID, 3)
    assert share[0] == pytest.approx((2 + 0.5 * 1) / 3)  # half of step 1's commits are among the first 3
    assert eos_first_share(committed, canvas, EOS_ID, 2)[0] == pytest.approx(1.0)
    assert eos_first_share(committed, canvas, EOS_ID, 6)[0] == pytest.approx(3 / 6)


def test_response_length():
    r = np.array([[5, 6, 0, 0], [5, 5, 5, 5], [0, 0, 0, 0]])
    np.testing.assert_array_equal(response_length(r, 0), [2, 4, 0])


def test_trace_schema(trace):
    g, tr = trace
    T, B, L = 8, 48, 16
    for k in ("canvas", "xhat_argmax", "xhat_sample", "confidence", "committed", "remasked"):
        assert tr[k].shape == (T, B, L), k
    for k in ("committed_harm", "predicted_harm_argmax", "predicted_harm_sample", "committed_refusal",
              "first_eos", "n_eos"):
        assert tr[k].shape == (T, B), k
    assert tr["hidden_mean"].shape[:2] == (T, B)
    # x̂₀ keeps committed tokens; confidence lives only where the step saw a mask
    prev = np.concatenate([tr["init_response"][None], tr["canvas"][:-1]])
    seen_mask = prev == g.mask_id
    assert np.all(tr["xhat_argmax"][~seen_mask] == prev[~seen_mask])
    assert np.isnan(tr["confidence"][~seen_mask]).all() and np.isfinite(tr["confidence"][seen_mask]).all()
    # EOS bookkeeping agrees with the canvas
    np.testing.assert_array_equal(tr["n_eos"], (tr["canvas"] == EOS_ID).sum(-1))
    np.testing.assert_array_equal(tr["length"], response_length(tr.final_response, EOS_ID))
    m = tr.meta
    assert m["sampler"]["name"] == "low_confidence" and m["attack"] == "prefill:3" and m["seed"] == 5
    assert m["grammar_hash"] == g.config.config_hash() and len(m["model_hash"]) == 16


def test_save_load_roundtrip(trace, tmp_path):
    _, tr = trace
    p = save_trace(tr, tmp_path / "t.npz")
    back = load_trace(p)
    assert set(back.arrays) == set(tr.arrays)
    for k in tr.arrays:
        np.testing.assert_array_equal(back[k], tr[k])
        assert back[k].dtype == tr[k].dtype
    assert back.meta["sampler"] == tr.meta["sampler"] and back.meta["model_hash"] == tr.meta["model_hash"]
    assert json.loads((tmp_path / "t.json").read_text())["grammar_hash"] == tr.meta["grammar_hash"]
    with pytest.raises(ValueError, match=".npz"):
        save_trace(tr, tmp_path / "t.pkl")
    (tmp_path / "bad.npz").write_bytes(b"nope")
    with pytest.raises(ValueError, match="not a toydlm trace"):
        load_trace(tmp_path / "bad.npz")
    with pytest.raises(FileNotFoundError):
        load_trace(tmp_path / "missing.npz")


def test_outcome_rates(trace):
    g, tr = trace
    r = outcome_rates(tr, g)
    p = tr["final_harmful"].mean()
    assert r["n"] == 48 and r["asr"] == pytest.approx(p)
    assert r["asr_se"] == pytest.approx(math.sqrt(p * (1 - p) / 48))
    assert r["refusal_rate"] == pytest.approx(tr["final_refusal"].mean())
    assert r["mean_length"] == pytest.approx(tr["length"].mean())
    assert 0 <= r["eos_first_share"] <= 1 and r["exact_harmful_rate"] is None
    # the excess over a random commit order: pinned prefill positions are not commits
    assert r["eos_first_excess"] == pytest.approx(eos_first_excess(tr["committed"], tr["canvas"], EOS_ID, 8))
    assert (~tr["init_pinned"]).sum(1).tolist() == tr["committed"].sum((0, 2)).tolist()


def test_plot_trace_writes_png(trace, tmp_path):
    from toydlm.plots.trace_plots import plot_trace, row_states

    g, tr = trace
    st = row_states(tr, 1, g)
    assert st.shape == (8, 16) and np.all(st[:, :3] == 2)  # pinned prefill
    plot_trace(tr, 1, tmp_path / "f.png", g)
    assert (tmp_path / "f.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_sample_and_show_trace_commands(tmp_path, capsys):
    out = tmp_path / "s.npz"
    rc = main(["sample", "--ckpt", "oracle", "--sampler", "low_confidence", "--steps", "8",
               "--block-length", "4",
               "--attack", "prefill:3", "--n", "48", "--seed", "5", "--out", str(out), "--json"])
    assert rc == 0
    res = json.loads(capsys.readouterr().out)
    for k in ("n", "asr", "asr_se", "refusal_rate", "refusal_rate_se", "valid_rate", "mean_length",
              "eos_first_share"):
        assert k in res
    assert res["n"] == 48 and out.exists() and (tmp_path / "s.json").exists()
    rc = main(["show-trace", str(out), "--index", "3", "--png", str(tmp_path / "s.png")])
    text = capsys.readouterr().out
    assert rc == 0 and "row 3" in text and "sure here" in text and (tmp_path / "s.png").exists()
    assert main(["show-trace", str(out), "--index", "99"]) == 2
    assert "out of range" in capsys.readouterr().err


@pytest.mark.parametrize("argv, msg", [
    (["--sampler", "remdm", "--attack", "prefill:99"], "valid forms"),
    (["--sampler", "ar_order", "--steps", "4"], "steps must equal"),
    (["--sampler", "mdlm", "--block-length", "4"], "selection samplers"),
    (["--sampler", "random", "--ckpt", "/nonexistent/dir"], "checkpoint not found"),
])
def test_sample_command_user_errors(tmp_path, capsys, argv, msg):
    base = {"--ckpt": "oracle", "--n": "4", "--seed": "0", "--out": str(tmp_path / "e.npz")}
    for k, v in zip(argv[::2], argv[1::2], strict=True):
        base[k] = v
    rc = main(["sample"] + [x for kv in base.items() for x in kv])
    assert rc == 2 and msg in capsys.readouterr().err


@pytest.mark.slow
def test_bench_sample_smoke():
    from toydlm.bench.sample import describe, run

    r = run(seconds=0.0, batch=8, model="oracle")
    assert r["speedup_vs_reference"] > 0 and r["speedup_vs_loop_driver"] > 0 and r["oracle_fallback"]
    assert "seq/s" in describe(r)
