"""Sampler specs: the lab's sampler names with two optional parts, shared by the audit and the twins.

`@B` runs semi-AR blocks of B positions (`low_confidence@32`; `@default`: 32, or a divisor of the length),
and a control suffix: `+eos_last` (end tokens are selected only after every other position of their
block) or `+eos_forbidden` (end tokens never proposed: forced full length). An AR model runs the one
sampler `ar`.
"""

from __future__ import annotations

from dataclasses import dataclass

from toydlm.errors import UserError
from toydlm.samplers import SamplerConfig, sampler_names

CONTROLS = ("eos_last", "eos_forbidden")


@dataclass(frozen=True)
class SamplerSpec:
    """One parsed sampler spec: the name the user wrote and the lab config it stands for (steps unresolved)."""

    label: str
    cfg: SamplerConfig


def default_block(L: int) -> int:
    """The default semi-AR block length: 32 when it divides L into several blocks, else the largest
    divisor of L no larger than L // 2 (1 for L = 1)."""
    if L > 32 and L % 32 == 0:
        return 32
    return max((d for d in range(1, L // 2 + 1) if L % d == 0), default=1)


def parse_sampler(text: str, kind: str, gen_length: int, temperature: float, steps: int | None) -> SamplerSpec:
    """A sampler spec at one generation length and temperature, or a one-line error."""
    name, _, control = text.partition("+")
    base, _, block = name.partition("@")
    if kind == "ar":
        if text != "ar":
            raise UserError(f"an AR checkpoint runs only the sampler 'ar', not {text!r} (drop --samplers, or use "
                            "--kind dlm for a diffusion checkpoint)")
        return SamplerSpec("ar", SamplerConfig("ar", temperature=temperature))
    if base == "ar" or base not in sampler_names():
        valid = ", ".join(n for n in sampler_names() if n != "ar")
        raise UserError(f"unknown diffusion sampler {base!r} in {text!r} (valid: {valid}; blocks as NAME@B, "
                        f"controls as NAME+{' or NAME+'.join(CONTROLS)})")
    if control and control not in CONTROLS:
        raise UserError(f"unknown control {control!r} in {text!r} (valid: {', '.join(CONTROLS)})")
    block_length = _block(block, text, gen_length)
    cfg = SamplerConfig(base, steps=None if base == "ar_order" else steps, block_length=block_length,
                        temperature=temperature, eos_last=control == "eos_last", eos_inf=control == "eos_forbidden")
    label = f"{base}@{block_length}" if block_length else base
    return SamplerSpec(label + (f"+{control}" if control else ""), cfg)


def _block(block: str, text: str, L: int) -> int | None:
    if not block:
        return None
    if block == "default":
        return default_block(L)
    if not block.isdigit() or int(block) < 1:
        raise UserError(f"the block length in {text!r} must be a positive integer")
    if L % int(block):
        raise UserError(f"block length {block} in {text!r} does not divide --gen-length {L}")
    return int(block)
