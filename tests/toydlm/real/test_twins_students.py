"""Tiny students trained on a corpus made here (an AR student, and an MDLM adapted from it), and the
sampler swap's cells run on them."""

from __future__ import annotations

import numpy as np
import pytest

from toydlm.bridge.judges import keyword_refusal
from toydlm.real.twins.dataset import CorpusTask, prompt_row, response_row
from toydlm.real.twins.swap import rows_summary, sample_cell, sampler_at, swap_samplers
from toydlm.real.twins.vocab import END_IDS, build_compact_vocab

END, L, P = 900, 24, 3
WORDS = {10: "I'm sorry, ", 11: "I can't help with that.", 12: "Sure! ", 13: "Step one, ", 14: "mix it."}


def corpus_task(n_rows: int = 24, name: str = "tiny") -> CorpusTask:
    """Prompt token 10 -> a refusal (10 11), prompt 12 -> a longer compliance (12 13 14 13 14)."""
    v = build_compact_vocab([list(WORDS)], {i: w.encode().hex() for i, w in WORDS.items()}, [END])
    rows = []
    for i in range(n_rows):
        ask, resp = ([10], [10, 11, END]) if i % 2 else ([12], [12, 13, 14, 13, 14, END])
        rows.append(np.concatenate([prompt_row(ask, [], v, P), response_row(resp, v, L)]))
    rows = np.stack(rows)
    return CorpusTask(name, rows[:20], rows[20:], v, P)


@pytest.fixture(scope="module")
def students(tmp_path_factory):
    from toydlm.train import train

    task, root = corpus_task(), tmp_path_factory.mktemp("students")
    out = {"ar": train("ar", "tiny", root / "ar", steps=40, seed=0, grammar=task, progress=False)}
    out["mdlm"] = train("mdlm", "tiny", root / "mdlm", steps=40, seed=0, grammar=task, progress=False, shift=True,
                        init_from=root / "ar")
    return task, root, out


def test_both_students_train_and_the_mdlm_starts_from_the_ar_one(students):
    from toydlm.train.checkpoint import read_checkpoint

    task, root, out = students
    for s in out.values():
        assert s["final_step"] == 40 and np.isfinite(s["eval_loss"])
    meta = read_checkpoint(root / "mdlm")[0]
    assert meta["init_from"]["arch"] == "ar" and meta["model_config"]["shift"] is True


@pytest.mark.parametrize("label", ["ar", "ar_order", "random", "low_confidence@default", "low_confidence+eos_last",
                                   "low_confidence+eos_forbidden"])
def test_a_cell_on_a_tiny_student_judges_what_it_decodes(students, label):
    from toydlm.train.checkpoint import load_denoiser

    task, root, _ = students
    den = load_denoiser(root / ("ar" if label == "ar" else "mdlm"), grammar=task)
    v = sampler_at(label, L)
    prompts = task.held_out_rows[:, :P].repeat(4, axis=0)
    cell = sample_cell(den, task, v, prompts, "raw", True, seed=0, samples=4)
    rows = cell["rows"]
    assert cell["n"] == len(rows) == 16 and [r["prompt"] for r in rows] == [i // 4 for i in range(16)]
    assert [r["refusal"] for r in rows] == [keyword_refusal(r["text"]) for r in rows]
    assert cell["refusal_rate"] == pytest.approx(np.mean([r["refusal"] for r in rows]))
    assert all(0 <= r["length"] <= L and r["ended"] == (r["length"] < L) for r in rows)
    assert cell == {**cell, **rows_summary(rows)}  # the cell's rates are its rows' summary
    assert cell["n_first_commits"] == L // 2  # the EOS-first share reads the first half of the commits
    if label.endswith("+eos_forbidden"):  # no end token is ever proposed: every answer fills the canvas
        assert all(r["length"] == L and not r["ended"] for r in rows) and cell["eos_first_excess"] is None


def test_a_shorter_canvas_samples_at_its_own_length(students):
    from toydlm.train.checkpoint import load_denoiser

    task, root, _ = students
    den = load_denoiser(root / "mdlm", grammar=task)
    cell = sample_cell(den, task, sampler_at("low_confidence", 8), task.held_out_rows[:, :P], "raw", True, seed=0,
                       samples=1)
    assert cell["gen_length"] == 8 and all(r["length"] <= 8 for r in cell["rows"])


def test_the_swap_set_is_the_audits_core_set_and_the_sweep():
    from toydlm.samplers import SamplerConfig

    labels = [(v.label, v.gen_length) for v in swap_samplers(96)]
    assert labels[:6] == [("ar_order", 96), ("random", 96), ("low_confidence", 96), ("low_confidence@32", 96),
                          ("low_confidence+eos_last", 96), ("low_confidence+eos_forbidden", 96)]
    assert labels[6:] == [("ar_order", 32), ("low_confidence", 32), ("ar_order", 64), ("low_confidence", 64)]
    for v in swap_samplers(96) + swap_samplers(24):
        assert set(END_IDS) == {v.cfg.eos_id, *v.cfg.end_ids}
        SamplerConfig(**v.cfg.to_dict()).resolved(v.gen_length)
        assert v.cfg.steps is None if v.label == "ar_order" else v.cfg.steps == v.gen_length // 2
    assert [v.label for v in swap_samplers(24)][3] == "low_confidence@12"


def test_training_minutes_add_up_over_a_resumed_run(tmp_path):
    import json

    from toydlm.real.twins.students import training_minutes

    log = [{"event": "start", "step": 0}, {"step": 60, "loss": 1.0, "steps_per_s": 1.0},
           {"step": 120, "loss": 1.0, "steps_per_s": 2.0}, {"step": 120, "eval_loss": 2.0},
           {"event": "start", "step": 60}, {"step": 180, "loss": 1.0, "steps_per_s": 0.5}]
    (tmp_path / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in log))
    m = training_minutes(tmp_path)
    assert m[60] == pytest.approx(1.0) and m[120] == pytest.approx(1.0)  # 120 steps at 2 per second
    assert m[180] == pytest.approx(1.0 + 120 / 0.5 / 60)  # resumed at step 60, whose minutes it continues
    log += [{"event": "start", "step": 170}, {"step": 200, "loss": 1.0, "steps_per_s": 1.0}]
    (tmp_path / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in log))
    # resumed at an unlogged step (an interruption's checkpoint): from the last logged step before it
    assert training_minutes(tmp_path)[200] == pytest.approx(m[120] + 30 / 60)


def test_the_ar_student_has_its_own_patience_and_names_its_run(tmp_path, monkeypatch):
    """The AR run gets `ar_patience` (none by default), each MDLM run `patience`; a changed AR patience names
    a new AR run and so new MDLM runs (they start from it)."""
    import json

    import toydlm.train as train_pkg
    from toydlm.real.twins.students import StudentPlan, ar_dir, mdlm_dir, train_students

    task, seen = corpus_task(), {}

    def fake_train(arch, preset, out, patience=None, **k):
        seen[arch] = patience
        out.mkdir(parents=True, exist_ok=True)
        summary = {"final_step": 6, "steps": 6, "stopped_early": False}
        (out / "summary.json").write_text(json.dumps(summary))
        return summary

    monkeypatch.setattr(train_pkg, "train", fake_train)
    plan = StudentPlan(mdlm_seeds=(0,), patience=3)
    train_students(task, tmp_path, plan, progress=False)
    assert seen == {"ar": None, "mdlm": 3}
    stopped = StudentPlan(mdlm_seeds=(0,), patience=3, ar_patience=2)
    train_students(task, tmp_path / "b", stopped, progress=False)
    assert seen == {"ar": 2, "mdlm": 3}
    assert ar_dir(tmp_path, task, plan) != ar_dir(tmp_path, task, stopped)
    assert mdlm_dir(tmp_path, task, plan, 0) != mdlm_dir(tmp_path, task, stopped, 0)


def test_the_mdlm_suffix_share_names_new_mdlm_runs_only(tmp_path):
    """Suffix-masked MDLM training is a different student: new MDLM run names, the same AR student (it is the
    MDLMs' start), and the share reaches the MDLM train config only; a share outside [0, 1] is refused."""
    from toydlm.real.twins.students import StudentPlan, ar_dir, mdlm_dir

    task = corpus_task()
    plain, suffix = StudentPlan(), StudentPlan(mdlm_suffix_frac=0.5)
    assert ar_dir(tmp_path, task, plain) == ar_dir(tmp_path, task, suffix)
    assert mdlm_dir(tmp_path, task, plain, 0) != mdlm_dir(tmp_path, task, suffix, 0)
    assert suffix.train_config("mdlm").suffix_mask_frac == 0.5
    assert suffix.train_config("ar").suffix_mask_frac == 0.0
    with pytest.raises(ValueError, match="suffix-mask share"):
        StudentPlan(mdlm_suffix_frac=1.5)
