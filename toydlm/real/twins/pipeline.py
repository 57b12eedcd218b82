"""The twins experiment's stages after the corpus, from one `TwinsConfig`: train, swap, judge, report."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from toydlm.errors import UserError
from toydlm.io import atomic_write_json, provenance
from toydlm.real.twins.students import StudentPlan

STUDENTS = "students.json"  # in the corpus folder: the training summaries of the students the swap used
REPO = Path(__file__).resolve().parents[3]  # stored paths are relative to the checkout (no machine path)
STAGES = ("train", "swap", "judge", "coherence", "report")


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
    validation_every: int = 20  # one training prompt in this many is held out for early stopping
    seed: int = 0
    samples: int = 2  # swap: samples per holdout prompt, per student
    seeds_per_prompt: int | None = 2  # swap: MDLM seeds sampling each holdout prompt (None: all of them)
    samplers: tuple[str, ...] | None = None
    judge_model: str = "qwen2.5-coder-1.5b-instruct"

    def __post_init__(self) -> None:
        if self.seeds_per_prompt is not None and self.seeds_per_prompt < 1:
            raise UserError(f"seeds per prompt must be at least 1 (or all), got {self.seeds_per_prompt}")


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
        from toydlm.real.twins.stages import judge_swap, pick_samplers, swap_plan
        from toydlm.real.twins.students import student_names

        names = student_names(cfg.students)
        pick_samplers(swap_plan(names, cfg.response_len), only, cfg.response_len)  # unknown label: an error
        judge_swap(p["swap"], cfg.judge_model, cfg.response_len, only=only, weights=_sampled_weights(p["corpus"]))
        return None
    task, info = build_task(p["corpus"], p["real_ar"], cfg.prompt_len, cfg.response_len,
                            validation_every=cfg.validation_every)
    print(f"task {task.config.name}: {info['n_train_rows']} training, {info['n_validation_rows']} validation and "
          f"{info['n_holdout_rows']} holdout rows, vocabulary {info['vocab_size']} (unknown share "
          f"{info['unk_share_holdout']:.4f} on the holdout)", flush=True)
    if stage == "train":
        from toydlm.real.twins.students import train_students
        from toydlm.real.twins.teacher import read_manifest

        train_students(task, p["runs"], cfg.students, only=cfg.only_students,
                       teacher=read_manifest(p["corpus"])["teacher"])
    elif stage == "swap":
        _swap(cfg, task, p, only)
    elif stage == "coherence":
        from toydlm.real.twins.build import teacher_cells
        from toydlm.real.twins.stages import run_coherence
        from toydlm.real.twins.teacher import read_manifest

        run_coherence(p["swap"], p["corpus"], teacher_cells(p["corpus"], p["real_ar"])[1],
                      read_manifest(p["corpus"])["teacher"], _sampled_weights(p["corpus"]))
    elif stage == "report":
        f = p["corpus"] / STUDENTS
        return _report(cfg, task, info, p, json.loads(f.read_text()) if f.exists() else {})
    return None


def _sampled_weights(corpus: Path) -> set[str] | None:
    """The weights hashes of the students the swap sampled last (`students.json`; None, all, before any swap)."""
    f = corpus / STUDENTS
    return {s["weights"] for s in json.loads(f.read_text()).values()} if f.exists() else None


def _swap(cfg: TwinsConfig, task, p: dict[str, Path], only: list[str] | None) -> None:
    """The swap on every student that has finished training (the others are named and skipped)."""
    from toydlm.real.twins.report import portable_students
    from toydlm.real.twins.stages import run_swap
    from toydlm.real.twins.students import best_checkpoint, finished, student_dirs

    dirs = student_dirs(p["runs"], task, cfg.students)
    done = {name: finished(d) for name, d in dirs.items()}
    missing = [name for name, s in done.items() if s is None]
    if missing:
        print(f"not trained yet, skipped: {', '.join(missing)}", flush=True)
    if len(missing) == len(dirs):
        raise UserError("no student has finished training: run the train stage first")
    ready = {name: best_checkpoint(dirs[name]) for name, s in done.items() if s is not None}
    mdlm = tuple(name for name in dirs if name != "ar")
    weights = run_swap(task, ready, p["corpus"], p["swap"], samples=cfg.samples, seed=cfg.seed, only=only,
                       split_seeds=mdlm, seeds_per_prompt=cfg.seeds_per_prompt)
    atomic_write_json(p["corpus"] / STUDENTS, portable_students(
        {name: {**done[name], "sampled_checkpoint": str(ready[name]), "weights": weights[name],
                "curve": training_curve(dirs[name])} for name in ready},
        REPO))


def training_curve(run_dir: Path) -> dict:
    """The run's logged training loss and held-out loss by step (kept with the swap, as the report's figure
    must not need the checkpoints)."""
    from toydlm.train import read_log

    log = read_log(run_dir)
    return {"train": [[r["step"], r["loss"]] for r in log if "loss" in r and "step" in r],
            "held_out": [[r["step"], r["eval_loss"]] for r in log if "eval_loss" in r]}


def _report(cfg: TwinsConfig, task, info: dict, p: dict[str, Path], students: dict) -> dict:
    from toydlm.real.twins.build import teacher_cells
    from toydlm.real.twins.figures import fig_gen_length, fig_length_eos, fig_swap_heatmap, fig_training
    from toydlm.real.twins.pooling import load_cells, pool
    from toydlm.real.twins.report import build_report, portable_students, teacher_nlls
    from toydlm.real.twins.teacher import read_manifest

    _, hold = teacher_cells(p["corpus"], p["real_ar"])
    m = read_manifest(p["corpus"])
    cells = pool(load_cells(p["swap"], {name: s["weights"] for name, s in students.items() if s.get("weights")}))
    rep = build_report(m, info, cells, hold, teacher_nlls(p["corpus"]), portable_students(students, REPO),
                       provenance(cfg.seed))
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    figs = (fig_swap_heatmap, fig_length_eos, fig_gen_length, fig_training)
    rep["figures"] = [f for f in (fig(rep, out) for fig in figs) if f]
    atomic_write_json(out / "twins.json", rep)
    print(f"wrote {out / 'twins.json'} ({len(rep['cells'])} cells)")
    return rep
