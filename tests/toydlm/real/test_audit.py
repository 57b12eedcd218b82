"""`toydlm audit` end to end on tiny Hugging Face checkpoints (CPU, offline): the diffusion sampler set
with a gen-length sweep, the AR tables and curves, resuming, the time budget and every bad input."""

import json
import shutil

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from toydlm.cli import main  # noqa: E402
from toydlm.real.audit import runner  # noqa: E402

CELL_KEYS = {"sampler", "attack", "temperature", "gen_length", "n_prompts", "samples_per_prompt", "n", "refusal_rate",
             "refusal_rate_ci95", "asr", "asr_ci95", "mean_len_refusal", "mean_len_compliance", "eos_first_excess",
             "hrr", "frr"}
LENGTH_KEYS = {"sampler", "attack", "temperature", "gen_length", "k", "n", "p_refusal_given_len_le_k",
               "p_refusal_given_len_le_k_ci95", "p_refusal", "asr_given_len_le_k", "asr"}


def audit(tiny, out, kind="ar", *extra) -> dict:
    args = ["audit", "--model", str(tiny[kind]), "--kind", kind, "--out", str(out), "--n", "3", "--n-boot", "100",
            "--no-progress", *extra]
    assert main(args) == 0
    return json.loads((out / "audit.json").read_text())


def test_tiny_diffusion_audit_runs_the_whole_sampler_set_and_a_gen_length_sweep(tiny, tmp_path):
    a = audit(tiny, tmp_path, "dlm", "--gen-length", "8,16", "--samples", "2", "--n", "2")
    samplers = ["ar_order", "random", "low_confidence", "low_confidence@4", "entropy", "low_confidence+eos_last",
                "low_confidence+eos_forbidden"]
    got = {(c["sampler"].replace("@8", "@4"), c["gen_length"]) for c in a["cells"]}
    assert got == {(s, L) for s in samplers for L in (8, 16)}
    assert all(CELL_KEYS <= set(c) for c in a["cells"]) and all(c["attack"] == "raw" for c in a["cells"])
    assert all(LENGTH_KEYS <= set(r) for r in a["length_test"]) and a["length_test"]
    assert {"name", "path", "sha256", "kind"} <= set(a["model"]) and len(a["model"]["sha256"]) == 64
    assert {"rows", "tokens", "seconds", "tokens_per_s", "estimated_seconds"} <= set(a["timing"])
    by = {(c["sampler"], c["gen_length"]): c for c in a["cells"]}
    for L in (8, 16):
        assert by[("low_confidence+eos_forbidden", L)]["truncated_share"] == 1.0  # never ends: forced full length
        assert by[("low_confidence", L)]["hrr"] is not None  # diffusion cells carry step-wise recovery
    html = (tmp_path / "report.html").read_text()
    assert "data:image/png;base64," in html and 'src="fig_' not in html  # self-contained
    assert "fig_gen_length_sweep.png" in (tmp_path / "report.md").read_text()


def test_eos_last_cells_never_commit_an_end_token_while_content_is_eligible(tiny, tmp_path):
    """Read from the stored rows: under +eos_last, the EOS-first share is at its minimum on every row."""
    audit(tiny, tmp_path, "dlm", "--gen-length", "8", "--samplers", "low_confidence,low_confidence+eos_last",
          "--temperature", "1.0", "--samples", "4")
    rows = {}
    for f in (tmp_path / "cells").glob("*.json"):
        rec = json.loads(f.read_text())
        rows[rec["spec"]["sampler"]["eos_last"]] = [s["eos"] for s in rec["samples"]]
    last = [e for e in rows[True] if e[0] is not None]
    assert last and all(abs(s - m) < 1e-9 for s, _, _, m in last)
    plain = [e for e in rows[False] if e[0] is not None]
    assert any(s > m + 1e-9 for s, _, _, m in plain)  # the check can fail: plain low confidence is not at it


def test_tiny_ar_audit_attack_table_length_test_and_recovery_curves(tiny, tmp_path):
    a = audit(tiny, tmp_path, "ar", "--attacks", "raw,refusal_suppression,prefill,injection", "--samples", "2",
              "--gen-length", "16", "--harmless", "harmless")
    assert [c["attack"] for c in a["cells"]] == ["raw", "refusal_suppression", "benign"]
    assert all(c["eos_first_excess"] is None and c["hrr"] is None for c in a["cells"])  # AR: not applicable
    assert a["cells"][2]["asr"] is None and a["cells"][0]["n"] == 6
    for d, c in zip(a["length_distributions"], a["cells"]):  # summaries by verdict, and every row
        assert d["refusal"]["n"] + d["compliance"]["n"] == c["n"] == len(d["row_length"])
        assert d["refusal"]["n"] == round(c["refusal_rate"] * c["n"]) == sum(d["row_refusal"])
    assert [p["x"] for p in a["recovery"]["prefill"]] == [1, 2, 4, 8]
    assert {p["x"] for p in a["recovery"].get("injection", [])} <= {0, 1, 2, 4, 8, 16}
    assert a["complete"]


def test_an_interrupted_audit_resumes_to_the_same_numbers(tiny, tmp_path, monkeypatch):
    ref = audit(tiny, tmp_path / "whole", "ar", "--samples", "3", "--batch-size", "4", "--attacks", "raw,flip")
    real, calls = runner.decode_batch, []

    def flaky(*a, **k):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(runner, "decode_batch", flaky)
    args = ["audit", "--model", str(tiny["ar"]), "--kind", "ar", "--out", str(tmp_path / "cut"), "--n", "3",
            "--n-boot", "100", "--no-progress", "--samples", "3", "--batch-size", "4", "--attacks", "raw,flip"]
    assert main(args) == 130
    assert list((tmp_path / "cut" / "cells" / "partial").rglob("batch_*.json"))  # finished batches were kept
    monkeypatch.setattr(runner, "decode_batch", real)
    assert main(args) == 0
    got = json.loads((tmp_path / "cut" / "audit.json").read_text())
    assert got["cells"] == ref["cells"] and got["length_test"] == ref["length_test"]
    assert got["timing"]["rows"] < ref["timing"]["rows"]  # the resumed run decoded only what was missing


def test_max_minutes_stops_between_batches_and_a_rerun_finishes(tiny, tmp_path, monkeypatch):
    seen = []

    def budget(clock, cell, rows, first):
        seen.append(1)
        return len(seen) > 2

    monkeypatch.setattr(runner, "_over_budget", budget)
    a = audit(tiny, tmp_path, "ar", "--samples", "2", "--batch-size", "2", "--attacks", "raw,flip",
              "--max-minutes", "5")
    assert not a["complete"] and len(a["cells"]) < 2
    monkeypatch.undo()
    b = audit(tiny, tmp_path, "ar", "--samples", "2", "--batch-size", "2", "--attacks", "raw,flip",
              "--max-minutes", "5")
    assert b["complete"] and len(b["cells"]) == 2 and len(b["timing_history"]) == 2


def test_two_processes_under_accelerate_write_the_same_audit_as_one(tiny, tmp_path):
    import subprocess
    import sys

    common = ["audit", "--model", str(tiny["ar"]), "--kind", "ar", "--n", "3", "--samples", "2", "--gen-length", "16",
              "--batch-size", "4", "--attacks", "raw,flip,refusal_suppression", "--n-boot", "100", "--no-progress"]
    one = audit(tiny, tmp_path / "one", "ar", *common[5:])
    # accelerate runs several processes through torchrun under --multi_gpu (which works without a GPU, over
    # gloo); --cpu would start only one
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
              "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "toydlm"]
    r = subprocess.run([*launch, *common, "--out", str(tmp_path / "two")], capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    two = json.loads((tmp_path / "two" / "audit.json").read_text())
    for key in ("cells", "length_test", "length_distributions"):
        assert two[key] == one[key]
    assert 0 < two["timing"]["rows"] < one["timing"]["rows"]  # process 0 decoded only its share


def _no_mask_copy(src, dst):
    shutil.copytree(src, dst)
    for name in ("tokenizer_config.json", "special_tokens_map.json", "config.json"):
        d = json.loads((dst / name).read_text())
        d.pop("mask_token", None)
        d.pop("mask_token_id", None)
        (dst / name).write_text(json.dumps(d))
    return dst


WHY = {"unknown name": "not found", "no config": "neither config.json", "no mask id": "names no mask token",
       "ar as dlm": "use --kind ar", "missing judge": "--judge", "malformed prompts": "'instruction'",
       "unwritable out": "is a file", "max minutes too small": "too small for one batch"}


@pytest.mark.parametrize("case", list(WHY))
def test_bad_inputs_are_one_line_exit_2_and_lose_nothing(tiny, tmp_path, capsys, case):
    out = tmp_path / "out"
    out.mkdir()
    (out / "audit.json").write_text('{"earlier": true}')
    model, kind, extra = str(tiny["ar"]), "ar", []
    if case == "unknown name":
        model = "no-such-checkpoint"
    elif case == "no config":
        (tmp_path / "empty").mkdir()
        model = str(tmp_path / "empty")
    elif case == "no mask id":
        model, kind = str(_no_mask_copy(tiny["dlm"], tmp_path / "nomask")), "dlm"
    elif case == "ar as dlm":
        kind = "dlm"
    elif case == "missing judge":
        extra = ["--judge", f"llm:{tmp_path / 'no-judge'}"]
    elif case == "malformed prompts":
        bad = tmp_path / "p.jsonl"
        bad.write_text('{"instruction": "ok"}\n{"instr": 1}\n')
        extra = ["--prompts", str(bad)]
    elif case == "unwritable out":
        out = tmp_path / "a_file"
        out.write_text("x")
    else:
        extra = ["--max-minutes", "0.00001"]
    capsys.readouterr()
    code = main(["audit", "--model", model, "--kind", kind, "--out", str(out), "--n", "2", "--no-progress", *extra])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert WHY[case] in err, err
    if case != "unwritable out":
        assert (out / "audit.json").read_text() == '{"earlier": true}'  # nothing written over
    else:
        assert out.read_text() == "x"
    if case == "max minutes too small":
        assert list((out / "cells" / "partial").rglob("batch_*.json"))  # the batch it did decode is kept
