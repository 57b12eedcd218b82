"""Two additions for runs that adapt one model from another and stop on held-out loss.

- `init_params_from`: start a run from another run's weights (an MDLM adapted from an AR model, as Dream
  and DiffuLLaMA were): same shapes, new objective and attention.
- `Patience`: the best held-out loss so far, the evaluations since it, and whether to stop; it is rebuilt
  from the run's log on resume, so an interrupted run stops where a straight one would.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from toydlm.errors import UserError
from toydlm.train import checkpoint as ckpt

BEST = "best"  # the run's sub-folder holding the checkpoint with the lowest held-out loss


def init_params_from(path: str | Path, template: Any, model_cfg: dict) -> tuple[Any, dict]:
    """(params, record) of the checkpoint at `path`, shaped like `template`; its model must have the same
    sizes, vocabulary and length as `model_cfg` (attention and shift may differ)."""
    meta, arrays, where = ckpt.read_checkpoint(path)
    mine = {k: v for k, v in model_cfg.items() if k not in ("causal", "shift")}
    theirs = {k: v for k, v in meta["model_config"].items() if k not in ("causal", "shift")}
    if mine != theirs:
        diff = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
        raise UserError(f"cannot start from {where}: its model differs in {', '.join(diff)}")
    params = ckpt.unflatten(template, arrays, "params", where)
    return params, {"path": str(where), "arch": meta["arch"], "step": int(meta["step"]),
                    "arrays_sha256": meta["arrays_sha256"]}


@dataclass
class Patience:
    """Early stopping on the held-out loss: stop after `patience` evaluations without a new best."""

    patience: int | None
    best: float | None = None
    best_step: int | None = None
    since: int = 0
    seen: set[int] = field(default_factory=set)  # the steps evaluated so far

    def update(self, step: int, loss: float) -> bool:
        """Record an evaluation; True when it is a new best."""
        self.seen.add(step)
        if self.best is None or loss < self.best:
            self.best, self.best_step, self.since = loss, step, 0
            return True
        self.since += 1
        return False

    @property
    def stop(self) -> bool:
        return self.patience is not None and self.since >= self.patience

    @classmethod
    def from_log(cls, patience: int | None, log: Path, upto: int) -> Patience:
        """The state after the evaluations on the cadence logged at steps <= `upto` (the step a resumed run
        starts from), each step once."""
        p = cls(patience)
        if log.exists():
            for line in log.read_text().splitlines():
                r = json.loads(line) if line.strip() else {}
                if "eval_loss" in r and r.get("on_cadence", True) and r["step"] <= upto and r["step"] not in p.seen:
                    p.update(r["step"], r["eval_loss"])
        return p
