"""The twins experiment's stages after the corpus, from one `TwinsConfig`: train, swap, judge, report."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from toydlm.io import atomic_write_json, provenance
from toydlm.real.twins.students import StudentPlan

STUDENTS = "students.json"  # in the corpus folder: the training summaries of the students the swap used
REPO = Path(__file__).resolve().parents[3]  # stored paths are relative to the checkout (no machine path)
STAGES = ("train", "swap", "judge", "report")


@dataclass(frozen=True)
class TwinsConfig:
    """Where the stages read and write (`work/teacher`: the corpus; `real_ar_work/teacher`: the real-AR store
    with the holdout's `raw_T1` cell; `runs/teacher`: the students; `out`: the report), the students' task
    and training, and the swap and judge settings (`samplers`: only these sampler labels; None: all)."""

    work: Path
    real_ar_work: Path
    runs: Path
    out: Path
    teacher: str = "qwen2.5-coder-0.5b-instruct"
    prompt_len: int = 64
    response_len: int = 96
    students: StudentPlan = StudentPlan()
    only_students: tuple[str, ...] | None = None  # train: just these (`ar`, `mdlm_s0`, ...)
    seed: int = 0
    samples: int = 1
    samplers: tuple[str, ...] | None = None
    judge_model: str = "qwen2.5-coder-1.5b-instruct"


def paths(cfg: TwinsConfig) -> dict[str, Path]:
    """The corpus, the real-AR store, the swap store and the students' runs of the teacher."""
    corpus = Path(cfg.work) / cfg.teacher
    return {"corpus": corpus, "real_ar": Path(cfg.real_ar_work) / cfg.teacher, "swap": corpus / "swap",
            "runs": Path(cfg.runs) / cfg.teacher}


def run_stage(stage: str, cfg: TwinsConfig) -> dict | None:
    """Run one stage (of `STAGES`); the report stage returns the record it wrote."""
    from toydlm.real.twins.build import build_task

    p = paths(cfg)
    only = None if cfg.samplers is None else list(cfg.samplers)
    if stage == "judge":
        from toydlm.real.twins.stages import ARCHS, judge_swap, pick_samplers, swap_plan

        pick_samplers(swap_plan(ARCHS, cfg.response_len), only)  # an unknown label is an error, as in the swap stage
        judge_swap(p["swap"], cfg.judge_model, only=only)
        return None
    task, info = build_task(p["corpus"], p["real_ar"], cfg.prompt_len, cfg.response_len)
    print(f"task {task.config.name}: {info['n_train_rows']} training and {info['n_holdout_rows']} holdout rows, "
          f"vocabulary {info['vocab_size']} (unknown share {info['unk_share_holdout']:.4f} on the holdout)", flush=True)
    students = _students(stage, cfg, task, p)
    if stage == "swap":
        from toydlm.real.twins.report import portable_students
        from toydlm.real.twins.stages import run_swap, student_dir

        dirs = {arch: student_dir(p["runs"], task, arch, cfg.preset, cfg.steps, cfg.seed) for arch in students}
        weights = run_swap(task, dirs, p["corpus"], p["swap"], samples=cfg.samples, seed=cfg.seed, only=only)
        atomic_write_json(p["corpus"] / STUDENTS, portable_students(
            {arch: {**students[arch], "weights": weights[arch], "curve": training_curve(dirs[arch])}
             for arch in students}, REPO))
    elif stage == "report":
        return _report(cfg, task, info, p, students)
    return None


def training_curve(run_dir: Path) -> dict:
    """The run's logged training loss and held-out loss by step (kept with the swap, as the report's figure
    must not need the checkpoints)."""
    from toydlm.train import read_log

    log = read_log(run_dir)
    return {"train": [[r["step"], r["loss"]] for r in log if "loss" in r and "step" in r],
            "held_out": [[r["step"], r["eval_loss"]] for r in log if "eval_loss" in r]}


def _students(stage: str, cfg: TwinsConfig, task, p: dict[str, Path]) -> dict:
    """Train both students (the train and swap stages) or read their stored summaries (report)."""
    if stage == "report":
        f = p["corpus"] / STUDENTS
        return json.loads(f.read_text()) if f.exists() else {}
    from toydlm.real.twins.students import train_students

    return train_students(task, p["runs"], cfg.students, only=cfg.only_students)


def _report(cfg: TwinsConfig, task, info: dict, p: dict[str, Path], students: dict) -> dict:
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
                       provenance(cfg.seed))
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    rep["figures"] = [f for f in (fig_swap_heatmap(rep, out), fig_length_eos(rep, out), fig_training(rep, out)) if f]
    atomic_write_json(out / "twins.json", rep)
    print(f"wrote {out / 'twins.json'} ({len(rep['cells'])} cells)")
    return rep
