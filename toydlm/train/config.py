"""Training hyperparameters per preset, validated before anything is compiled."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

from toydlm.errors import UserError
from toydlm.model import MODEL_PRESETS, check_arch, check_preset


@dataclass(frozen=True)
class TrainConfig:
    """What the loop needs besides the model: batch, schedule, optimiser, cadence.

    `steps` is the length of the learning-rate schedule (warmup then cosine decay to
    `end_lr_frac * lr`); a resumed run continues towards the same `steps`.
    """

    batch: int
    steps: int
    lr: float
    warmup: int
    weight_decay: float = 0.01
    clip_norm: float = 1.0
    end_lr_frac: float = 0.01
    eval_every: int = 500
    eval_batch: int = 1024
    ckpt_every: int = 500
    log_every: int = 10
    suffix_mask_frac: float = 0.0  # MDLM only: share of training rows masked as a suffix (`mdlm_corrupt`)

    def to_dict(self) -> dict:
        """Every field, except `suffix_mask_frac` at its default 0: configs (and the run names hashed from
        them) made before it existed stay what they were."""
        d = asdict(self)
        if not d["suffix_mask_frac"]:
            del d["suffix_mask_frac"]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        return cls(**d)

    def replace(self, **kw) -> TrainConfig:
        return replace(self, **kw)


TRAIN_PRESETS: dict[str, TrainConfig] = {
    "tiny": TrainConfig(
        batch=32, steps=200, lr=3e-3, warmup=20, eval_every=100, eval_batch=256, ckpt_every=100, log_every=10
    ),
    "default": TrainConfig(
        batch=128,
        steps=3000,
        lr=2e-3,
        warmup=200,
        eval_every=500,
        eval_batch=1024,
        ckpt_every=500,
        log_every=25,
    ),
    "small": TrainConfig(
        batch=256,
        steps=8000,
        lr=1e-3,
        warmup=400,
        eval_every=1000,
        eval_batch=2048,
        ckpt_every=1000,
        log_every=50,
    ),
}
assert set(TRAIN_PRESETS) == set(MODEL_PRESETS)


def check_steps(steps) -> int:
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise UserError(f"steps must be a positive integer, got {steps!r}")
    return steps


def validate(cfg: TrainConfig, n_devices: int = 1) -> TrainConfig:
    """Raise UserError naming the first bad field (cheap: runs before any compilation)."""
    check_steps(cfg.steps)
    for name in ("batch", "eval_batch", "eval_every", "ckpt_every", "log_every"):
        v = getattr(cfg, name)
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise UserError(f"train config {name}={v!r}: must be a positive integer")
    if not isinstance(cfg.warmup, int) or not 0 <= cfg.warmup < cfg.steps:
        raise UserError(f"train config warmup={cfg.warmup!r}: must be an integer in [0, steps={cfg.steps})")
    for name in ("lr", "clip_norm"):
        v = getattr(cfg, name)
        if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
            raise UserError(f"train config {name}={v!r}: must be a positive finite number")
    for name in ("weight_decay", "end_lr_frac"):
        v = getattr(cfg, name)
        if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
            raise UserError(f"train config {name}={v!r}: must be a non-negative finite number")
    f = cfg.suffix_mask_frac
    if isinstance(f, bool) or not isinstance(f, (int, float)) or not 0 <= f <= 1:
        raise UserError(f"train config suffix_mask_frac={f!r}: must be a number in [0, 1]")
    for name in ("batch", "eval_batch"):
        if getattr(cfg, name) % n_devices:
            raise UserError(
                f"train config {name}={getattr(cfg, name)} is not divisible by the "
                f"{n_devices} devices JAX sees (data parallelism splits the batch)"
            )
    return cfg


def resolve(arch: str, preset: str, steps: int | None = None) -> TrainConfig:
    """The validated config for an arch and preset, with an optional step count override."""
    check_arch(arch)
    check_preset(preset)
    cfg = TRAIN_PRESETS[preset]
    if steps is not None:
        check_steps(steps)
        cfg = cfg.replace(
            steps=steps,
            warmup=min(cfg.warmup, steps // 10),
            eval_every=min(cfg.eval_every, steps),
            ckpt_every=min(cfg.ckpt_every, steps),
        )
    return cfg
