"""The lm-eval experiments' report logic: the agreement rule counts only ks with data on both sides, and a copied
run keeps no machine path."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "experiments"))


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "experiments" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_intervals_agree_when_they_overlap_and_a_missing_one_is_no_verdict():
    q = _script("lm_eval_qwen")
    assert q.ci_overlap([0.1, 0.3], [0.3, 0.5]) is True
    assert q.ci_overlap([0.1, 0.2], [0.3, 0.5]) is False
    assert q.ci_overlap(None, [0.3, 0.5]) is None


def test_the_comparison_pairs_ks_both_reports_have():
    q = _script("lm_eval_qwen")
    row = lambda k, p, ci, n: {"k": k, "p_refusal_given_len_le_k": p, "p_refusal_given_len_le_k_ci95": ci,  # noqa: E731
                               "n": n, "n_total": 400}
    ours = [row(8, None, None, 0), row(16, 0.9, [0.8, 1.0], 50), row(24, 0.5, [0.4, 0.6], 80)]
    stored = {16: row(16, 0.95, [0.9, 1.0], 60), 24: row(24, 0.9, [0.85, 0.95], 90)}
    rows = q.compare(ours, stored)
    assert [r["k"] for r in rows] == [16, 24] and [r["agree"] for r in rows] == [True, False]


def test_a_copied_run_names_its_files_without_machine_paths(tmp_path):
    from _lm_eval_runs import copy_run

    src = tmp_path / "out" / "m"
    src.mkdir(parents=True)
    res = src / "results_T1.json"
    res.write_text('{"p": "/opt/x/site/toydlm/eval/tasks/t/a.yaml", "m": "/data/ckpt/best"}')
    (src / "samples_t_T1.jsonl").write_text('{"doc": "/data/ckpt/best"}\n')
    (src / "samples_t_T0.jsonl").write_text("an older run\n")
    copied = copy_run(res, tmp_path / "dst", {"/data/ckpt": "ckpt"})
    assert copied.read_text() == '{"p": "toydlm/eval/tasks/t/a.yaml", "m": "ckpt/best"}'
    assert sorted(p.name for p in (tmp_path / "dst").iterdir()) == ["results_T1.json", "samples_t_T1.jsonl"]
