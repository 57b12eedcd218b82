"""A training request, validated before anything is compiled or written: the `Plan` of a run.

Checks the arch, preset, seed, train config and `stop_after`, and either refuses to overwrite an
existing run or reads the checkpoint to resume (its grammar, arch and preset must match).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from toydlm.errors import UserError
from toydlm.model import check_arch, check_preset
from toydlm.train import checkpoint as ckpt
from toydlm.train.config import TrainConfig, resolve, validate


@dataclass(frozen=True)
class Plan:
    """A validated request: what to train, on which grammar, where, and from which step to which."""

    arch: str
    preset: str
    out: Path
    grammar: Any
    tcfg: TrainConfig
    seed: int
    start: int  # 0, or the step of the checkpoint resumed from
    end: int  # the schedule's last step, or `stop_after`
    resume: bool
    arrays: dict[str, np.ndarray] | None  # the resumed checkpoint's arrays
    shift: bool = False  # an MDLM whose output i predicts token i + 1 (`toydlm.model.ModelConfig.shift`)
    init_from: Path | None = None  # a run (or checkpoint) whose weights a new run starts from
    patience: int | None = None  # stop after this many evaluations without a new best held-out loss
    keep: int = 2  # regular checkpoints kept (the best one is kept apart when `patience` is set)
    init_record: dict | None = None  # a resumed run's record of the weights it started from


def _check_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**31:
        raise UserError(f"seed must be an integer in [0, 2^31), got {seed!r}")
    return int(seed)


def make_plan(arch: str, preset: str, out: Path, steps: int | None, seed: int, resume: bool, g: Any,
              train_config: TrainConfig | None, stop_after: int | None, *, shift: bool = False,
              init_from: Path | None = None, patience: int | None = None, keep: int = 2) -> Plan:
    """Validate the request (nothing is compiled or written yet) and fix the steps to run."""
    check_arch(arch)
    check_preset(preset)
    seed = _check_seed(seed)
    arrays, init_record = None, None
    if resume:
        tcfg, seed, start, arrays, meta = _resume_point(arch, preset, out, steps, g)
        shift = bool(meta["model_config"].get("shift", False))  # the objective of the run being continued
        init_record = meta.get("init_from")
    else:
        if out.exists() and any(out.glob("ckpt-*")):
            raise UserError(
                f"{out} already holds a checkpoint; pass --resume to continue it or choose another --out"
            )
        tcfg, start = (train_config if train_config is not None else resolve(arch, preset, steps)), 0
    tcfg = validate(tcfg)
    if stop_after is not None and (not isinstance(stop_after, int) or stop_after < 1):
        raise UserError(f"stop_after must be a positive integer, got {stop_after!r}")
    end = min(tcfg.steps, stop_after) if stop_after is not None else tcfg.steps
    if tcfg.suffix_mask_frac and arch != "mdlm":
        raise UserError(f"suffix_mask_frac applies to an mdlm run, not {arch}")
    if shift and arch != "mdlm":
        raise UserError(f"shift applies to an mdlm run (an {arch} model is always shifted)")
    if patience is not None and (isinstance(patience, bool) or not isinstance(patience, int) or patience < 1):
        raise UserError(f"patience must be a positive integer, got {patience!r}")
    if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
        raise UserError(f"keep must be a positive integer, got {keep!r}")
    if init_from is not None and not resume:
        ckpt.find_checkpoint(init_from)  # a one-line error before anything is built
    return Plan(arch, preset, out, g, tcfg, seed, start, end, resume, arrays, shift,
                None if init_from is None else Path(init_from), patience, keep, init_record)


def _resume_point(arch: str, preset: str, out: Path, steps: int | None, g: Any
                  ) -> tuple[TrainConfig, int, int, dict, dict]:
    """(train config, seed, step, arrays, meta) of the checkpoint to resume; `steps` sets a new horizon."""
    meta, arrays, where = ckpt.read_checkpoint(out)
    ckpt.check_grammar(meta, g, where)
    if (meta["arch"], meta.get("preset")) != (arch, preset):
        raise UserError(
            f"checkpoint {where} is a {meta['arch']}/{meta.get('preset')} run, not {arch}/{preset}"
        )
    tcfg = TrainConfig.from_dict(meta["train_config"])
    if steps is not None:
        tcfg = tcfg.replace(steps=steps)  # a new schedule horizon: no longer a straight run's twin
    return tcfg, int(meta["seed"]), int(meta["step"]), arrays, meta
