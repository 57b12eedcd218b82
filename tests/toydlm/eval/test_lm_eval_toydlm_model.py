"""`toydlm lm-eval --model toydlm` from the command line: the done-when command on a tiny diffusion checkpoint
writes a results JSON naming `toydlm_refusal` and its refusal rate; two processes under `accelerate launch`
give the same samples and metrics as one; a bad sampler in model_args is one line, exit 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("lm_eval")
pytest.importorskip("transformers")

OFFLINE = {"HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "HF_EVALUATE_OFFLINE": "1"}
LAUNCH = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
          "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "toydlm"]


def _args(dlm: Path, out: Path, sampler: str = "low_confidence") -> list[str]:
    return ["lm-eval", "--model", "toydlm", "--model_args",
            f"pretrained={dlm},kind=dlm,sampler={sampler},gen_length=8", "--tasks", "toydlm_refusal",
            "--limit", "4", "--output_path", str(out)]


def _run(cmd: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=900, env={**os.environ, **OFFLINE})


def _samples(out: Path) -> dict:
    got = {}
    for f in out.rglob("samples_*.jsonl"):
        for line in f.read_text().splitlines():
            s = json.loads(line)
            got[(s["doc"]["attack"], s["doc_id"])] = s["filtered_resps"][0]
    return got


def _results(out: Path) -> dict:
    files = sorted(out.rglob("results_*.json"))
    assert len(files) == 1, files
    return json.loads(files[0].read_text())


@pytest.fixture(scope="module")
def one(tmp_path_factory):
    """The done-when command (with --log_samples, to compare samples) in one process."""
    from toydlm.bridge.tiny import write_tiny

    root = tmp_path_factory.mktemp("toydlm-model")
    dlm = write_tiny("dlm", root / "dlm")
    p = _run([sys.executable, "-m", "toydlm", *_args(dlm, root / "one"), "--log_samples"])
    assert p.returncode == 0, p.stderr[-3000:]
    return dlm, root / "one"


def test_the_done_when_command_names_the_group_and_its_refusal_rate(one):
    res = _results(one[1])
    assert "toydlm_refusal" in res["groups"]
    assert 0.0 <= res["groups"]["toydlm_refusal"]["refusal_rate,samples"] <= 1.0
    for task in ("toydlm_refusal_raw", "toydlm_refusal_prefix_injection"):
        r = res["results"][task]
        assert r["refusal_rate,samples"] + r["asr_keyword,samples"] == pytest.approx(1.0)
    assert len(_samples(one[1])) == 3 * 4 and all(len(v) == 4 for v in _samples(one[1]).values())


def test_two_processes_under_accelerate_equal_one(one, tmp_path):
    """Three docs over two processes: the second is padded with a copy of its last request, as lm-eval does.
    Rows draw by index, so each doc's samples equal the one-process run's (its first three docs)."""
    dlm, ref = one
    args = _args(dlm, tmp_path)
    args[args.index("--limit") + 1] = "3"
    p = _run([*LAUNCH, *args, "--log_samples"])
    assert p.returncode == 0, p.stderr[-3000:]
    assert "on rank 1" in p.stderr  # the second process really took a share
    two, one_proc = _samples(tmp_path), _samples(ref)
    assert len(two) == 3 * 3 and two == {k: v for k, v in one_proc.items() if k[1] < 3}
    res = _results(tmp_path)["results"]
    for task, metric in (("toydlm_refusal_raw", "refusal_rate"), ("toydlm_refusal_harmless", "over_refusal_rate")):
        per_doc = [_per_doc(ref, task)[d][metric] for d in range(3)]
        assert res[task][f"{metric},samples"] == pytest.approx(sum(per_doc) / 3)


def _per_doc(out: Path, task: str) -> dict:
    f = next(out.rglob(f"samples_{task}_*.jsonl"))
    return {(s := json.loads(line))["doc_id"]: s for line in f.read_text().splitlines()}


def test_an_unknown_sampler_is_one_line_exit_2(one, tmp_path):
    p = _run([sys.executable, "-m", "toydlm", *_args(one[0], tmp_path, sampler="sideways")])
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert p.stderr.strip().splitlines()[-1].startswith("toydlm lm-eval: error: unknown diffusion sampler 'sideways'")
