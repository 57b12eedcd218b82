"""The students and how each is trained: one AR student (the reference) and MDLM students over several
training seeds, each adapted from the AR student by default (shifted logits, attention opened up), as
Dream 7B was adapted from Qwen2.5 and DiffuLLaMA from LLaMA.

Each MDLM run stops early on the validation loss (prompts of the training corpus held out of training) and
keeps its best checkpoint, which is what the swap samples. The AR student runs its whole schedule by
default (`ar_patience` None): stopped at its best validation loss it refused 0.26 on raw harmful holdout
prompts against the teacher's 0.48 (docs/real-text-twins.md), so validation loss is not the criterion
that keeps the reference faithful. Runs are resumable and named by what defines
them, so a changed corpus, schedule or starting point trains a new student instead of resuming an old one.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from toydlm.errors import UserError
from toydlm.train.config import TrainConfig
from toydlm.train.early_stop import BEST

INITS = ("ar", "scratch")  # where an MDLM student starts: the trained AR student, or a fresh init


@dataclass(frozen=True)
class StudentPlan:
    """What defines the students: size, schedules, the MDLM seeds and start, and early stopping."""

    preset: str = "small"
    batch: int = 32
    ar_steps: int = 1500
    ar_lr: float = 1e-3
    ar_eval_every: int = 50
    mdlm_steps: int = 3000  # about 80 minutes at the 1.6 s per step measured on 2 cores: the 90-minute budget
    mdlm_lr: float = 5e-4
    mdlm_eval_every: int = 250
    mdlm_seeds: tuple[int, ...] = (0, 1, 2)
    mdlm_init: str = "ar"
    mdlm_suffix_frac: float = 0.0  # share of MDLM training rows masked as a suffix, the canvases of AR order
    patience: int = 4  # evaluations without a new best validation loss before an MDLM run stops
    ar_patience: int | None = None  # the same for the AR student; None: it runs its whole schedule
    seed: int = 0  # the AR student's

    def __post_init__(self) -> None:
        if self.mdlm_init not in INITS:
            raise UserError(f"unknown MDLM start {self.mdlm_init!r} (valid: {', '.join(INITS)})")
        if not 0 <= self.mdlm_suffix_frac <= 1:
            raise UserError(f"the MDLM suffix-mask share must be in [0, 1], got {self.mdlm_suffix_frac}")
        if not self.mdlm_seeds or len(set(self.mdlm_seeds)) != len(self.mdlm_seeds):
            raise UserError(f"MDLM seeds must be distinct and at least one, got {self.mdlm_seeds}")

    def train_config(self, arch: str) -> TrainConfig:
        """AdamW, warmup then cosine decay; held-out loss at the arch's cadence; a checkpoint every 500 steps."""
        steps, lr, every = ((self.ar_steps, self.ar_lr, self.ar_eval_every) if arch == "ar"
                            else (self.mdlm_steps, self.mdlm_lr, self.mdlm_eval_every))
        return TrainConfig(batch=self.batch, steps=steps, lr=lr, warmup=min(200, steps // 10), eval_every=every,
                           eval_batch=256, ckpt_every=min(500, steps), log_every=max(1, min(25, steps // 20)),
                           suffix_mask_frac=0.0 if arch == "ar" else self.mdlm_suffix_frac)


def _tag(d: dict) -> str:
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:8]


def ar_dir(root: Path, task, plan: StudentPlan) -> Path:
    tc = plan.train_config("ar").to_dict()
    return root / f"ar-{plan.preset}-{task.config.config_hash()}-{_tag({**tc, 'p': plan.ar_patience})}-s{plan.seed}"


def mdlm_dir(root: Path, task, plan: StudentPlan, seed: int) -> Path:
    start = ar_dir(root, task, plan).name if plan.mdlm_init == "ar" else "scratch"
    tag = _tag({**plan.train_config("mdlm").to_dict(), "p": plan.patience, "start": start})
    return root / f"mdlm-{plan.preset}-{task.config.config_hash()}-{plan.mdlm_init}-{tag}-s{seed}"


def student_names(plan: StudentPlan) -> tuple[str, ...]:
    """`ar`, then `mdlm_s<seed>` for each MDLM seed."""
    return ("ar", *(f"mdlm_s{s}" for s in plan.mdlm_seeds))


def student_dirs(root: Path, task, plan: StudentPlan) -> dict[str, Path]:
    """Run folders by student name (`student_names`)."""
    dirs = [ar_dir(root, task, plan), *(mdlm_dir(root, task, plan, s) for s in plan.mdlm_seeds)]
    return dict(zip(student_names(plan), dirs))


def best_checkpoint(run_dir: Path) -> Path:
    """The checkpoint a student is sampled from: its best by validation loss (its last when it has none)."""
    return run_dir / BEST if (run_dir / BEST).is_dir() else run_dir


def finished(run_dir: Path) -> dict | None:
    """The run's summary when it reached its horizon or stopped early; None otherwise."""
    f = run_dir / "summary.json"
    if not f.exists():
        return None
    s = json.loads(f.read_text())
    return s if s.get("stopped_early") or s["final_step"] >= s["steps"] else None


def train_students(task, root: Path, plan: StudentPlan, progress: bool = True, only: tuple[str, ...] | None = None,
                   teacher: dict | None = None) -> dict[str, dict]:
    """Train (or resume, or skip when finished) the AR student, then each MDLM seed; their summaries by
    name. `only`: just these students (an MDLM adapted from the AR student still needs it finished).
    `teacher` (the corpus manifest's record) is written beside each student, so `toydlm audit` can open it."""
    from toydlm.real.twins.student_setup import write_student_record
    from toydlm.train import train

    out = {}
    for name, d in student_dirs(root, task, plan).items():
        if only is not None and name not in only:
            continue
        if teacher is not None:
            d.mkdir(parents=True, exist_ok=True)
            write_student_record(d, task, teacher)
        done = finished(d)
        if done is not None:
            out[name] = done
            continue
        arch = "ar" if name == "ar" else "mdlm"
        seed = plan.seed if arch == "ar" else int(name.split("_s")[1])
        start = None
        if arch == "mdlm" and plan.mdlm_init == "ar":
            a = ar_dir(root, task, plan)
            if finished(a) is None:
                raise UserError(f"the MDLM students start from the AR student, which has not finished ({a}): "
                                "train it first")
            start = best_checkpoint(a)
        resume = d.is_dir() and any(d.glob("ckpt-*"))
        out[name] = train(arch, plan.preset, d, seed=seed, resume=resume, grammar=task, progress=progress,
                          train_config=None if resume else plan.train_config(arch), shift=arch == "mdlm" and
                          plan.mdlm_init == "ar", init_from=None if resume else start,
                          patience=plan.ar_patience if arch == "ar" else plan.patience,
                          keep=1000)
    return out


def training_minutes(run: Path) -> dict[int, float]:
    """Training wall minutes up to each logged step. Each segment of the run (a start, or a resume) logs its
    mean rate since its first update, so the minutes at step s are the segment's start minutes plus
    (s - segment start) / rate; a resumed segment continues from the minutes of the step it resumed at."""
    from toydlm.train import read_log

    out, base, start = {}, 0.0, 0
    for r in read_log(run):
        if r.get("event") == "start":
            start = r["step"]
            logged = [k for k in out if k <= start]  # a resume continues from the minutes of its start step
            base = out[max(logged)] if start and logged else 0.0
        elif "loss" in r and r.get("steps_per_s"):
            out[r["step"]] = base + (r["step"] - start) / r["steps_per_s"] / 60
    return out
