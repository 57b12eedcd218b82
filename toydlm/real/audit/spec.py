"""The audit's settings: one frozen config, the sampler specs it runs, and checks made before anything loads.

The sampler-spec grammar (`NAME@B`, `+eos_last`, `+eos_forbidden`) is the kit's
(`toydlm.real.kit.sampler_specs`), so the twins name their cells exactly as the audit does.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from toydlm.errors import UserError
from toydlm.real.kit.length_test import DEFAULT_KS
from toydlm.real.kit.sampler_specs import CONTROLS, SamplerSpec, default_block, parse_sampler

__all__ = ["CONTROLS", "SamplerSpec", "default_block", "parse_sampler"]  # the grammar lives in the kit
DEFAULT_DLM_SAMPLERS = ("ar_order", "random", "low_confidence", "low_confidence@32", "entropy",
                        "low_confidence+eos_last", "low_confidence+eos_forbidden")
RECOVERY_ATTACKS = ("prefill", "injection")  # expand into the recovery curves, not single cells


@dataclass(frozen=True)
class AuditConfig:
    """Everything an audit run needs; `samplers=None` is the kind's default set."""

    model: str
    kind: str
    out: str
    prompts: str = "harmbench"
    harmless: str | None = None
    n: int | None = None
    attacks: tuple[str, ...] = ("raw",)
    samplers: tuple[str, ...] | None = None
    samples: int = 1
    temperatures: tuple[float, ...] = (0.7,)
    gen_lengths: tuple[int, ...] = (96,)
    steps: int | None = None
    judge: str = "keyword"
    device: str = "cpu"
    dtype: str = "float32"
    device_map: str | None = None
    batch_size: int = 16
    seed: int = 0
    max_minutes: float | None = None
    trust_remote_code: bool = False
    mask_id: int | None = None
    logits_shift: bool | None = None  # None: from the checkpoint's config (Dream shifts)
    chat: bool = True
    ks: tuple[int, ...] = field(default=DEFAULT_KS)
    n_boot: int = 1000
    progress: bool = True


def settings(cfg: AuditConfig) -> dict:
    """What was asked, as audit.json records it (both as `settings` and as the provenance `config`): every
    field but the progress switch, with the sampler specs resolved to the list that ran."""
    d = dataclasses.asdict(cfg)
    d.pop("progress")
    return {**d, "samplers": list(sampler_texts(cfg))}


def sampler_texts(cfg: AuditConfig) -> tuple[str, ...]:
    """The sampler specs to run: the user's, else the kind's default set (blocks at the default length)."""
    if cfg.samplers:
        return cfg.samplers
    if cfg.kind == "ar":
        return ("ar",)
    return tuple(s.replace("@32", "@default") for s in DEFAULT_DLM_SAMPLERS)


def check_config(cfg: AuditConfig) -> None:
    """Every check that needs no model: numbers, names, sampler specs at every length and temperature."""
    if cfg.kind not in ("ar", "dlm"):
        raise UserError(f"unknown --kind {cfg.kind!r} (valid: ar, dlm)")
    positive = {"--samples": cfg.samples, "--batch-size": cfg.batch_size, "--n-boot": cfg.n_boot}
    if cfg.n is not None:
        positive["--n"] = cfg.n
    for flag, v in positive.items():
        if v < 1:
            raise UserError(f"{flag} must be a positive integer, got {v}")
    if not cfg.gen_lengths or any(L < 1 for L in cfg.gen_lengths):
        raise UserError(f"--gen-length needs positive lengths, got {list(cfg.gen_lengths)}")
    if not cfg.temperatures or any(not (t >= 0 and math.isfinite(t)) for t in cfg.temperatures):
        raise UserError(f"--temperature needs finite values >= 0, got {list(cfg.temperatures)}")
    if cfg.max_minutes is not None and not cfg.max_minutes > 0:
        raise UserError(f"--max-minutes must be positive, got {cfg.max_minutes}")
    if cfg.logits_shift and cfg.kind != "dlm":
        raise UserError("--logits-shift applies to diffusion (--kind dlm) checkpoints; AR logits are always aligned")
    if cfg.kind == "ar" and cfg.mask_id is not None:
        raise UserError("--mask-id applies to diffusion (--kind dlm) checkpoints")
    if "injection" in cfg.attacks and cfg.kind != "ar":
        raise UserError("the injection curve continues an AR model's own compliant text: it applies to --kind ar "
                        "(use prefill for a diffusion model)")
    if "injection" in cfg.attacks and "raw" not in cfg.attacks:
        raise UserError("the injection curve starts from the raw cell's compliant answers: add raw to --attacks")
    from toydlm.real.audit.judge import parse_judge

    parse_judge(cfg.judge)
    for L in cfg.gen_lengths:
        for t in cfg.temperatures:
            for text in sampler_texts(cfg):
                parse_sampler(text, cfg.kind, L, t, cfg.steps).cfg.resolved(L)


def split_attacks(text: str) -> tuple[str, ...]:
    """`--attacks` as names: the real attacks (`prefill:<text>` may hold commas) plus the two curve names
    `prefill` and `injection`; each checked, order kept, duplicates dropped."""
    from toydlm.bridge.attacks import ATTACKS, parse_attacks

    pieces: list[str] = []
    for piece in text.split(","):
        new = piece.strip() in (*ATTACKS, *RECOVERY_ATTACKS) or piece.lstrip().startswith("prefill:")
        if pieces and not new and pieces[-1].lstrip().startswith("prefill:"):
            pieces[-1] += "," + piece
        else:
            pieces.append(piece)
    out: list[str] = []
    for p in pieces:
        name = p.strip() if p.strip() in RECOVERY_ATTACKS else parse_attacks([p])[0]
        if name not in out:
            out.append(name)
    return tuple(out)


def split_numbers(text: str, flag: str, kind: type) -> tuple:
    """A comma-separated list of numbers (`--temperature 0.7,1`, `--gen-length 32,64`), or a one-line error."""
    try:
        vals = tuple(kind(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise UserError(f"{flag} takes comma-separated {kind.__name__} values, got {text!r}") from None
    if not vals:
        raise UserError(f"{flag} needs at least one value")
    return vals
