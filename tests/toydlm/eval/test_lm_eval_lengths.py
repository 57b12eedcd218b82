"""`toydlm lm-eval-report`: the length test over lm-eval's logged samples agrees with the harness's own refusal
metric, counts a response cut at the cap as never ending early, and refuses a folder without samples in one
line."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("lm_eval")
pytest.importorskip("transformers")

from toydlm.cli import main  # noqa: E402
from toydlm.real.audit.harness_samples import task_report  # noqa: E402

OFFLINE = {"HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "HF_EVALUATE_OFFLINE": "1"}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from toydlm.bridge.tiny import write_tiny

    root = tmp_path_factory.mktemp("lm-eval-report")
    ar = write_tiny("ar", root / "ar")
    out = root / "out"
    p = subprocess.run([sys.executable, "-m", "toydlm.cli", "lm-eval", "--model", "hf", "--model_args",
                        f"pretrained={ar}", "--tasks", "toydlm_refusal", "--limit", "6", "--device", "cpu",
                        "--output_path", str(out), "--log_samples", "--gen_kwargs", "max_gen_toks=24",
                        "--batch_size", "16"],
                       capture_output=True, text=True, timeout=600, env={**os.environ, **OFFLINE})
    assert p.returncode == 0, p.stderr[-3000:]
    return out


def test_the_report_agrees_with_the_harness_refusal_metric(run, capsys):
    assert main(["lm-eval-report", str(run), "--n-boot", "50"]) == 0
    rep = json.loads((run / "toydlm_refusal_lengths.json").read_text())
    res = json.loads(next(run.rglob("results_*.json")).read_text())["results"]
    for task, metric in (("toydlm_refusal_raw", "refusal_rate"), ("toydlm_refusal_prefix_injection", "refusal_rate"),
                         ("toydlm_refusal_harmless", "over_refusal_rate")):
        r = rep["tasks"][task]
        assert r["n"] == 6 * 4 and r["max_gen_toks"] == 24  # 6 prompts, 4 samples each
        assert r["refusal_rate"] == pytest.approx(res[task][f"{metric},samples"])
        assert (r["length_test"] is None) == (task == "toydlm_refusal_harmless")
        if metric == "refusal_rate":  # the keyword ASR: the harness's asr_keyword
            assert r["asr"] == pytest.approx(res[task]["asr_keyword,samples"])
    assert "wrote" in capsys.readouterr().out


def test_a_response_cut_at_the_cap_never_ends_early():
    rows = [{"prompt": i, "harmful": True, "length": 24, "ended": False, "refusal": True} for i in range(3)]
    rows += [{"prompt": 9, "harmful": True, "length": 5, "ended": True, "refusal": False}]
    lt = {r["k"]: r for r in task_report(rows, ks=(8, 24), n_boot=20)["length_test"]}
    assert lt[24]["n"] == 1 and lt[24]["p_refusal_given_len_le_k"] == 0.0  # the three cut refusals are not counted
    assert lt[8]["n"] == 1


def test_a_folder_without_a_run_or_without_samples_is_one_line(tmp_path, capsys):
    assert main(["lm-eval-report", str(tmp_path)]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "results_2026-01-01T00-00-00.json").write_text("{}")
    assert main(["lm-eval-report", str(tmp_path)]) == 2
    assert "--log_samples" in capsys.readouterr().err


def test_the_cap_is_the_toydlm_canvas_when_it_set_one_else_the_tasks_max_gen_toks():
    from toydlm.real.audit.harness_samples import generation_cap

    configs = {"t": {"generation_kwargs": {"max_gen_toks": 128}}}
    toy = {"config": {"model": "toydlm", "toydlm": {"gen_length": 8, "max_canvas": None}}, "configs": configs}
    student = {"config": {"model": "toydlm", "toydlm": {"gen_length": None, "max_canvas": 96}}, "configs": configs}
    hf = {"config": {"model": "hf", "model_args": {"pretrained": "m", "gen_length": 8}}, "configs": configs}
    assert [generation_cap(r, "t") for r in (toy, student, hf)] == [8, 96, 128]


def test_a_model_judge_rules_on_harm_in_the_asr_and_the_length_test(run, monkeypatch, capsys):
    from tests.toydlm.real.judges_for_tests import LongAnswerJudge
    from toydlm.real.audit import judge as judges

    monkeypatch.setattr(judges, "_JUDGES", dict(judges._JUDGES))
    judges.register_judge("longer_than", "longer_than:WORDS", lambda w: None, LongAnswerJudge)
    assert main(["lm-eval-report", str(run), "--n-boot", "20", "--judge", "longer_than:3"]) == 0
    rep = json.loads((run / "toydlm_refusal_lengths.json").read_text())
    assert rep["judge"]["judge"] == "longer_than" and rep["judge"]["refusal"] == "keyword"
    texts = [t for line in next(run.rglob("samples_toydlm_refusal_raw_*.jsonl")).read_text().splitlines()
             for t in json.loads(line)["resps"][0]]
    want = sum(len(t.split()) > 3 for t in texts) / len(texts)
    raw = rep["tasks"]["toydlm_refusal_raw"]
    assert raw["asr"] == pytest.approx(want) and rep["tasks"]["toydlm_refusal_harmless"]["asr"] is None
    assert "ASR (longer_than)" in capsys.readouterr().out
    assert main(["lm-eval-report", str(run), "--judge", "oracle"]) == 2
    assert "unknown --judge 'oracle'" in capsys.readouterr().err


def test_a_response_a_few_tokens_short_of_the_cap_counts_as_cut_within_the_margin(tmp_path):
    from toydlm.real.audit.harness_samples import near_cap, sample_rows

    doc = {"prompt_id": 0, "harmful": True, "instruction": "x"}
    f = tmp_path / "samples.jsonl"
    f.write_text(json.dumps({"doc": doc, "resps": [["w " * 10, "w " * 14, "w " * 16]]}) + "\n")
    count = lambda t: len(t.split())  # noqa: E731
    assert [r["ended"] for r in sample_rows(f, count, 16, cut_margin=0)] == [True, True, False]
    rows = sample_rows(f, count, 16, cut_margin=4)
    assert [r["ended"] for r in rows] == [True, False, False] and [r["length"] for r in rows] == [10, 16, 16]
    hist = near_cap(rows, 16, width=2)  # what was counted, before a cut response's length became the cap
    assert hist == {"14": 1, "15": 0, "16": 1, "17": 0, "18": 0}


def test_a_cut_margin_below_zero_or_past_the_cap_is_one_line(run, capsys):
    assert main(["lm-eval-report", str(run), "--cut-margin", "-1"]) == 2
    assert "--cut-margin must be 0 or more" in capsys.readouterr().err
    assert main(["lm-eval-report", str(run), "--cut-margin", "24"]) == 2
    assert "below the 24-token cap" in capsys.readouterr().err
