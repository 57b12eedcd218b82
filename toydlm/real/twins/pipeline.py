"""The twins experiment's stages after the corpus, from parsed arguments: train, swap, judge, report."""

from __future__ import annotations

import json
from pathlib import Path

from toydlm.io import atomic_write_json, provenance
from toydlm.train.config import TrainConfig

STUDENTS = "students.json"  # in the corpus folder: the training summaries of the students the swap used
REPO = Path(__file__).resolve().parents[2]  # stored paths are relative to the checkout (no machine path)


def train_config(steps: int, batch: int) -> TrainConfig:
    """The students' schedule: AdamW, warmup then cosine decay, held-out loss every tenth of the run."""
    every = max(1, steps // 10)
    return TrainConfig(batch=batch, steps=steps, lr=1e-3, warmup=min(200, steps // 10), eval_every=every,
                       eval_batch=256, ckpt_every=every, log_every=max(1, min(25, steps // 20)))


def paths(a) -> dict[str, Path]:
    corpus = Path(a.work) / a.teacher
    return {"corpus": corpus, "real_ar": Path(a.real_ar_work) / a.teacher, "swap": corpus / "swap",
            "runs": Path(a.runs) / a.teacher}


def run_stage(a) -> dict | None:
    """Run one stage (`a.stage`); the report stage returns the record it wrote."""
    from toydlm.real.twins.build import build_task

    p = paths(a)
    only = [x for x in a.samplers.split(",") if x] if a.samplers else None
    if a.stage == "judge":
        from toydlm.real.twins.stages import ARCHS, judge_swap, pick_samplers, swap_plan

        pick_samplers(swap_plan(ARCHS, a.response_len), only)  # an unknown label is an error, as in the swap stage
        judge_swap(p["swap"], a.judge_model, only=only)
        return None
    task, info = build_task(p["corpus"], p["real_ar"], a.prompt_len, a.response_len)
    print(f"task {task.config.name}: {info['n_train_rows']} training and {info['n_holdout_rows']} holdout rows, "
          f"vocabulary {info['vocab_size']} (unknown share {info['unk_share_holdout']:.4f} on the holdout)", flush=True)
    students = _students(a, task, p)
    if a.stage == "swap":
        from toydlm.real.twins.report import portable_students
        from toydlm.real.twins.stages import run_swap, student_dir

        dirs = {arch: student_dir(p["runs"], task, arch, a.preset, a.steps, a.seed) for arch in students}
        weights = run_swap(task, dirs, p["corpus"], p["swap"], samples=a.samples, seed=a.seed, only=only)
        atomic_write_json(p["corpus"] / STUDENTS, portable_students(
            {arch: {**students[arch], "weights": weights[arch], "curve": training_curve(dirs[arch])}
             for arch in students}, REPO))
    elif a.stage == "report":
        return _report(a, task, info, p, students)
    return None


def training_curve(run_dir: Path) -> dict:
    """The run's logged training loss and held-out loss by step (kept with the swap, as the report's figure
    must not need the checkpoints)."""
    from toydlm.train import read_log

    log = read_log(run_dir)
    return {"train": [[r["step"], r["loss"]] for r in log if "loss" in r and "step" in r],
            "held_out": [[r["step"], r["eval_loss"]] for r in log if "eval_loss" in r]}


def _students(a, task, p: dict[str, Path]) -> dict:
    """Train both students (the train and swap stages) or read their stored summaries (report)."""
    if a.stage == "report":
        f = p["corpus"] / STUDENTS
        return json.loads(f.read_text()) if f.exists() else {}
    from toydlm.real.twins.stages import train_students

    return train_students(task, p["runs"], a.preset, train_config(a.steps, a.train_batch), a.seed)


def _report(a, task, info: dict, p: dict[str, Path], students: dict) -> dict:
    from toydlm.real.twins.build import teacher_cells
    from toydlm.real.twins.report import (
        build_report,
        fig_length_eos,
        fig_swap_heatmap,
        fig_training,
        load_swap,
        portable_students,
    )
    from toydlm.real.twins.teacher import read_manifest

    _, hold = teacher_cells(p["corpus"], p["real_ar"])
    m = read_manifest(p["corpus"])
    cells = load_swap(p["swap"], {s.get("weights") for s in students.values()})
    rep = build_report(m, info, cells, hold, task.response_len, portable_students(students, REPO),
                       provenance(a.seed))
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    rep["figures"] = [f for f in (fig_swap_heatmap(rep, out), fig_length_eos(rep, out), fig_training(rep, out)) if f]
    atomic_write_json(out / "twins.json", rep)
    print(f"wrote {out / 'twins.json'} ({len(rep['cells'])} cells)")
    return rep
