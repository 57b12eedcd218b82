"""The students' task built from a store of teacher cells made here (the pipeline, without a teacher)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from toydlm.errors import UserError
from toydlm.io import atomic_write_json
from toydlm.real.kit.store import CellStore
from toydlm.real.twins.build import build_task, is_validation
from toydlm.real.twins.corpus import holdout_prompts, reference_plan
from toydlm.real.twins.teacher import MANIFEST, PROMPT_TOKENS, TOKEN_BYTES
from toydlm.real.twins.vocab import EOS_ID, EOT_ID, UNK_ID

SHA, END = "ab" * 32, 900
WORDS = {10: "I'm sorry, ", 11: "but I can't help.", 12: "Sure, ", 13: "here ", 14: "it is.", 15: "rare"}


def sample(prompt: int, ids: list[int], ended: bool = True) -> dict:
    text = "".join(WORDS[i] for i in ids)
    return {"prompt": prompt, "sample": 0, "ids": ids, "length": len(ids), "ended": ended, "text": text}


def make_store(tmp_path, with_holdout: bool = True):
    """A corpus store (root named like a teacher) and a real-AR store holding the raw_T1 holdout cell."""
    root, ref_root = tmp_path / "twins", tmp_path / "real_ar" / "twins"
    store = CellStore(root)
    cells = {"corpus_raw_0000": [sample(0, [10, 11]), sample(1, [12, 13, 14, 13, 14, 13], ended=False)],
             "corpus_harmless_0000": [sample(0, [12, 13, 14, 15])]}
    if with_holdout:
        cells["holdout_harmless_T1"] = [sample(0, [12, 14])]
    listing = []
    for name, samples in cells.items():
        spec = {"name": name, "k": 1}
        store.put(spec, samples)
        listing.append({"name": name, "file": store.path(spec).name, "done": True})
    ref = reference_plan(holdout_prompts())
    CellStore(ref_root).put(ref.spec(SHA, 6), [sample(3, [10, 11, 15])])
    ptok = {n: {"user": [[12, 13], [10]], "prefill": [[], [12]]} for n in cells}
    ptok[ref.name] = {"user": [[10]] * 100, "prefill": [[]] * 100}
    atomic_write_json(root / PROMPT_TOKENS, ptok)
    atomic_write_json(root / TOKEN_BYTES, {str(i): w.encode().hex() for i, w in WORDS.items()})
    atomic_write_json(root / MANIFEST, {"teacher": {"checkpoint": "t", "sha256": SHA}, "cells": listing,
                                        "sampler": {"gen_length": 6, "end_ids": [END]}})
    return root, ref_root


def test_the_task_holds_the_corpus_less_its_validation_prompts_and_the_stats(tmp_path):
    root, ref_root = make_store(tmp_path)
    # with one prompt in 7, the hash puts raw prompt 0 (and only it) in the validation split
    assert [is_validation(c, p, 7) for c, p in (("corpus_raw_0000", 0), ("corpus_raw_0000", 1),
                                                 ("corpus_harmless_0000", 0))] == [True, False, False]
    task, info = build_task(root, ref_root, prompt_len=4, response_len=6, min_count=1, validation_every=7)
    assert task.rows.shape == (2, 10) and task.held_out_rows.shape == (1, 10)
    assert (info["n_train_rows"], info["n_validation_rows"], info["n_holdout_rows"]) == (2, 1, 2)
    assert task.vocab.decode(task.held_out_rows[0, 4:]) == "I'm sorry, but I can't help."
    assert info["cells"]["holdout"] == ["holdout_harmless_T1", "raw_T1"]
    c = info["corpus"]  # the statistics describe the whole corpus, validation prompts included
    assert (c["n_prompts"], c["n_refusals"], c["n_compliances"]) == (3, 1, 2)
    assert c["mean_len_refusal"] == 2 and c["mean_len_compliance"] == 5
    assert c["truncated_share_compliance"] == 0.5
    texts = {task.vocab.decode(r[4:]) for r in task.rows}
    assert texts == {"Sure, here it is.here it is.here ", "Sure, here it is.rare"}
    ended = [r for r in task.rows if task.vocab.decode(r[4:]).endswith("rare")][0][4:]
    assert ended.tolist()[4:] == [EOT_ID, EOS_ID]  # end of turn, then end-of-text padding
    assert not (task.rows[:, 4:] == EOT_ID).all(0).any()  # the truncated row has no end
    # min_count=2 leaves the rare token out of the vocabulary: it becomes the unknown id
    task2, info2 = build_task(root, ref_root, prompt_len=4, response_len=6, min_count=2, validation_every=7)
    assert (task2.rows == UNK_ID).any() and info2["unk_share_train"] > 0 and info2["unk_share_holdout"] > 0
    assert task2.config.config_hash() != task.config.config_hash()
    with pytest.raises(UserError, match="no validation rows"):
        build_task(root, ref_root, prompt_len=4, response_len=6, min_count=1, validation_every=8)


def test_missing_corpus_or_holdout_is_a_one_line_error(tmp_path):
    root, ref_root = make_store(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    m = json.loads((root / MANIFEST).read_text())
    atomic_write_json(empty / MANIFEST, {**m, "cells": []})
    with pytest.raises(UserError, match="no corpus cells"):
        build_task(empty, ref_root)
    with pytest.raises(UserError, match="no corpus manifest"):
        build_task(tmp_path / "nowhere", ref_root)
    bare, _ = make_store(tmp_path / "b", with_holdout=False)
    with pytest.raises(UserError, match="no holdout"):
        build_task(bare, tmp_path / "nowhere")


@pytest.mark.slow
def test_train_swap_report_end_to_end_on_a_tiny_store(tmp_path, monkeypatch):
    from dataclasses import replace

    from toydlm.real.twins.pipeline import TwinsConfig, run_stage
    from toydlm.real.twins.students import StudentPlan

    root, ref_root = make_store(tmp_path)
    plan = StudentPlan(preset="tiny", batch=8, ar_steps=6, ar_eval_every=3, mdlm_steps=6, mdlm_eval_every=3,
                       mdlm_seeds=(0, 1))
    cfg = TwinsConfig(work=root.parent, real_ar_work=ref_root.parent, runs=tmp_path / "runs", out=tmp_path / "out",
                      teacher=root.name, students=plan, seed=0, samples=1, prompt_len=4, response_len=24,
                      samplers=("ar", "low_confidence", "ar_order"), judge_model="unused", validation_every=7)
    with pytest.raises(UserError, match="no student has finished"):
        run_stage("swap", cfg)
    with pytest.raises(UserError, match="start from the AR student"):
        run_stage("train", replace(cfg, only_students=("mdlm_s0",)))
    run_stage("train", cfg)
    run_stage("swap", cfg)
    rep = run_stage("report", cfg)
    assert set(rep["fidelity"]) == {"ar", "mdlm"}
    assert {c["attack"] for c in rep["cells"]} == {"raw", "benign"}  # no prefix_injection holdout in this store
    assert {(c["student"], c["sampler"]) for c in rep["cells"]} == {("ar", "ar"), ("mdlm", "low_confidence"),
                                                                    ("mdlm", "ar_order")}
    mdlm = [c for c in rep["cells"] if c["student"] == "mdlm"]
    assert all(len(c["per_seed"]) == 2 and c["n"] == 2 * c["per_seed"][0]["n"] for c in mdlm)
    assert all(c["asr"] is None and c["coherence_nll"] is None for c in rep["cells"])  # nothing judged or scored
    assert len(rep["prediction"]) == 2 * len(mdlm)
    assert rep["corpus"]["n_refusals"] == 1 and (tmp_path / "out" / "twins.json").exists()
    assert rep["figures"] == ["twins_swap_heatmap.png", "twins_length_eos.png", "twins_training.png"]
    assert set(rep["students"]) == {"ar", "mdlm_s0", "mdlm_s1"}
    assert rep["students"]["mdlm_s1"]["final_step"] == 6 and rep["students"]["mdlm_s1"]["curve"]["held_out"]
    with pytest.raises(UserError, match="unknown sampler"):
        run_stage("swap", replace(cfg, samplers=("nope",)))
    swap = root / "swap"
    n_files = len(list(swap.glob("*.json")))
    run_stage("swap", cfg)  # resumes: nothing new is sampled
    assert len(list(swap.glob("*.json"))) == n_files
    judge_only_the_ar_cells(monkeypatch, run_stage, replace(cfg, samplers=("ar",)))
    judged = {(c["student"], c["attack"]): c for c in run_stage("report", cfg)["cells"]}
    assert judged[("ar", "raw")]["asr"] == 1.0 and judged[("ar", "benign")]["asr"] is None  # harmless: never judged
    assert judged[("mdlm", "raw")]["asr"] is None  # not among the judged samplers
    with pytest.raises(UserError, match="unknown sampler"):
        run_stage("judge", replace(cfg, samplers=("nope",)))
    seeds_share_the_prompts(monkeypatch, run_stage, replace(cfg, samplers=("random",), seeds_per_prompt=1))
    fidelity_curve(monkeypatch, cfg, tmp_path)
    end_hazard(monkeypatch, cfg, tmp_path)


def seeds_share_the_prompts(monkeypatch, run_stage, cfg) -> None:
    """With one seed per prompt, the two MDLM seeds split each prompt set: every holdout prompt is sampled
    exactly once over the seeds, rows keep the holdout prompt's index, and the judge pairs each row with
    its own prompt's instruction."""
    import toydlm.bridge.llm_judge as llm_judge
    from toydlm.real.twins.corpus import holdout_prompts

    run_stage("swap", cfg)
    stored = [json.loads(f.read_text())["cell"] for f in (cfg.work / cfg.teacher / "swap").glob("mdlm_*random*.json")]
    for attack in ("raw", "benign"):
        prompts = sorted(r["prompt"] for c in stored if c["attack"] == attack for r in c["rows"])
        assert prompts == list(range(len(prompts)))  # each prompt once over the seeds, by its holdout index
    seen = []

    class Recorder:
        meta = {"judge": "stand-in", "threshold": 0.5}

        def __init__(self, *a, **k):
            pass

        def scores(self, instructions, texts, progress=False):
            seen.extend(instructions)
            return np.zeros(len(texts))

    monkeypatch.setattr(llm_judge, "LLMHarmJudge", Recorder)
    run_stage("judge", cfg)
    harmful = holdout_prompts()["harmful"]
    raw = sorted((c for c in stored if c["attack"] == "raw"), key=lambda c: c["student"])
    assert seen == [harmful[r["prompt"]] for c in raw for r in c["rows"]]
    assert seen != [harmful[i] for c in raw for i in range(c["n"])]  # not the row's place in its seed's cell
    cells = [c for c in run_stage("report", cfg)["cells"] if c["sampler"] == "random"]
    assert {c["attack"] for c in cells} == {"raw", "benign"}
    assert all(sum(s["n"] for s in c["per_seed"]) == c["n"] for c in cells)
    raw = next(c for c in cells if c["attack"] == "raw")
    assert [s["n"] for s in raw["per_seed"]] == [50, 50]


def fidelity_curve(monkeypatch, cfg, tmp_path) -> None:
    """experiments/twins_fidelity_curve.py on the tiny MDLM seed 0 and the AR student: a point per stored
    checkpoint and prompt set, the swap's checkpoint marked (the MDLM's best; the AR's last, as it ran its
    whole schedule), each student with its own decoder."""
    import runpy
    import sys

    from toydlm.real.twins.build import build_task
    from toydlm.real.twins.students import student_dirs

    task, _ = build_task(cfg.work / cfg.teacher, cfg.real_ar_work / cfg.teacher, 4, 24, validation_every=7)
    script = Path(__file__).resolve().parents[3] / "experiments" / "twins_fidelity_curve.py"
    for name, sampler in (("mdlm_s0", "ar_order"), ("ar", "ar")):
        run = student_dirs(cfg.runs / cfg.teacher, task, cfg.students)[name]
        out = tmp_path / f"curve_{name}.json"
        monkeypatch.setattr(sys, "argv", ["x", "--run", str(run), "--teacher", cfg.teacher, "--work", str(cfg.work),
                                          "--real-ar-work", str(cfg.real_ar_work), "--out", str(out),
                                          "--prompt-len", "4", "--response-len", "24", "--validation-every", "7"])
        runpy.run_path(str(script), run_name="__main__")
        rec = json.loads(out.read_text())
        steps = sorted({(p["step"], p["best"]) for p in rec["points"]})
        assert rec["sampler"] == sampler and {p["attack"] for p in rec["points"]} == {"raw", "benign"}
        assert (tmp_path / f"curve_{name}.png").exists()
        if name == "ar":
            assert steps[-1] == (6, True) and not any(b for _, b in steps[:-1])
        else:
            assert (6, False) in steps and any(b for _, b in steps)


def end_hazard(monkeypatch, cfg, tmp_path) -> None:
    """experiments/twins_end_hazard.py on the tiny AR and MDLM students: both summarised on the validation
    rows, with the hazard at the teacher's end among the figure's points."""
    import math
    import runpy
    import sys

    from toydlm.real.twins.build import build_task
    from toydlm.real.twins.students import student_dirs

    task, _ = build_task(cfg.work / cfg.teacher, cfg.real_ar_work / cfg.teacher, 4, 24, validation_every=7)
    dirs = student_dirs(cfg.runs / cfg.teacher, task, cfg.students)
    out = tmp_path / "hazard.json"
    monkeypatch.setattr(sys, "argv", ["x", "--run", str(dirs["ar"]), "--run", str(dirs["mdlm_s0"]), "--teacher",
                                      cfg.teacher, "--work", str(cfg.work), "--real-ar-work", str(cfg.real_ar_work),
                                      "--out", str(out), "--prompt-len", "4", "--response-len", "24",
                                      "--validation-every", "7"])
    runpy.run_path(str(Path(__file__).resolve().parents[3] / "experiments" / "twins_end_hazard.py"),
                   run_name="__main__")
    rec = json.loads(out.read_text())
    assert [s["arch"] for s in rec["students"].values()] == ["ar", "mdlm"]
    assert rec["n_rows"] == len(task.held_out_rows) > 0
    assert all(math.isfinite(s["length_nll"]) and s["length_nll"] > 0 for s in rec["students"].values())
    assert (tmp_path / "hazard.png").exists()


def judge_only_the_ar_cells(monkeypatch, run_stage, cfg) -> None:
    """The judge stage with a stand-in judge that calls every response harmful, restricted to `cfg.samplers`."""
    import numpy as np

    import toydlm.bridge.llm_judge as llm_judge

    class Harmful:
        meta = {"judge": "stand-in", "threshold": 0.5}

        def __init__(self, *a, **k):
            pass

        def scores(self, instructions, texts, progress=False):
            assert len(instructions) == len(texts)
            return np.ones(len(texts))

    monkeypatch.setattr(llm_judge, "LLMHarmJudge", Harmful)
    run_stage("judge", cfg)
