"""Sampler configuration: names, hyper-parameters, validation and the k_i commit schedule.

Vocabulary kept apart on purpose (DESIGN.md "Naming"): *selection* = which masked positions
get committed this step (`low_confidence`, `random`, `margin`, `entropy`, `annealed`);
*re-masking* = a committed token is put back to mask (only `remdm`, through its sigma).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np

LEFT_TO_RIGHT = ("ar", "ar_order")  # one committed token per step, leftmost masked position
SELECTION = ("low_confidence", "random", "margin", "entropy", "annealed")  # LLaDA/Dream k_i schedule
ANCESTRAL = ("mdlm", "remdm")  # per-position stochastic unmasking on a uniform time grid
SAMPLERS = LEFT_TO_RIGHT + SELECTION + ANCESTRAL
REMDM_SCHEDULES = ("cap", "rescale", "conf", "loop")
REMDM_DEFAULT_ETA = {"cap": 0.008, "rescale": 0.015, "conf": 1.0, "loop": 0.02}


@dataclass(frozen=True)
class SamplerConfig:
    """Everything that defines a sampler run (hashable: it is a static argument of jit).

    `steps=None` means one step per response position. `temperature=0` is argmax; otherwise
    proposals are Gumbel-max draws from `softmax(logits / temperature)` (float32), optionally
    restricted to the top-p nucleus. `eos_inf` is LLaDA's `logits_eos_inf` (the EOS logit is
    set to -inf before proposals and confidences). Confidence of a proposal is its probability
    under the *untempered* softmax (LLaDA), after EOS suppression.
    """

    name: str
    steps: int | None = None
    block_length: int | None = None  # semi-AR blocks (selection samplers only); None = one block
    temperature: float = 1.0
    top_p: float = 1.0
    eos_inf: bool = False
    eos_id: int = 0
    remdm_schedule: str = "cap"
    eta: float | None = None  # None: the ReMDM script default of the schedule
    t_on: float = 0.55
    t_off: float = 0.05
    alpha_on: float = 0.9
    anneal_a0: float = 0.3  # DiffuGuard's a0

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> SamplerConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown sampler config field {unknown[0]!r} "
                             f"(valid: {', '.join(sorted(known))})")
        return cls(**d)

    def replace(self, **kw) -> SamplerConfig:
        return dataclasses.replace(self, **kw)

    @property
    def eta_value(self) -> float:
        return REMDM_DEFAULT_ETA[self.remdm_schedule] if self.eta is None else float(self.eta)

    def resolved(self, response_len: int) -> SamplerConfig:
        """Fill defaults that depend on the response length and validate; raise ValueError."""
        c = self if self.steps is not None else self.replace(steps=response_len)
        validate(c, response_len)
        return c


def validate(c: SamplerConfig, response_len: int) -> None:
    L = response_len
    if c.name not in SAMPLERS:
        raise ValueError(f"unknown sampler {c.name!r} (valid: {', '.join(SAMPLERS)})")
    if not isinstance(c.steps, int) or c.steps < 1:
        raise ValueError(f"steps must be a positive integer, got {c.steps!r}")
    if c.name in LEFT_TO_RIGHT and c.steps != L:
        raise ValueError(f"sampler {c.name!r} commits one token per step: steps must equal the response "
                         f"length {L}, got {c.steps}")
    if not (c.temperature >= 0 and np.isfinite(c.temperature)):
        raise ValueError(f"temperature must be >= 0, got {c.temperature}")
    if not 0 < c.top_p <= 1:
        raise ValueError(f"top_p must be in (0, 1], got {c.top_p}")
    if c.block_length is not None:
        if c.name not in SELECTION:
            raise ValueError(f"block_length applies to the selection samplers ({', '.join(SELECTION)}), "
                             f"not {c.name!r}")
        if c.block_length < 1 or L % c.block_length:
            raise ValueError(f"block_length {c.block_length} must divide the response length {L}")
        nb = L // c.block_length
        if c.steps % nb:
            raise ValueError(f"steps {c.steps} must be a multiple of the number of blocks {nb} "
                             f"(response length {L} / block length {c.block_length})")
    if c.remdm_schedule not in REMDM_SCHEDULES:
        raise ValueError(f"unknown remdm schedule {c.remdm_schedule!r} (valid: {', '.join(REMDM_SCHEDULES)})")
    if not 0 <= c.eta_value <= 1:
        raise ValueError(f"eta must be in [0, 1], got {c.eta_value}")
    if not 0 <= c.t_off < c.t_on <= 1:
        raise ValueError(f"remdm loop needs 0 <= t_off < t_on <= 1, got t_off={c.t_off}, t_on={c.t_on}")
    if not 0 < c.alpha_on < 1:
        raise ValueError(f"alpha_on must be in (0, 1), got {c.alpha_on}")
    if not 0 <= c.anneal_a0 <= 1:
        raise ValueError(f"anneal_a0 must be in [0, 1], got {c.anneal_a0}")


def n_blocks(c: SamplerConfig, response_len: int) -> int:
    return 1 if c.block_length is None else response_len // c.block_length


def k_schedule(n: int, steps: int) -> np.ndarray:
    """LLaDA's linear commit counts: `k_i = floor(n / S) + 1[i < n mod S]`, summing to n."""
    i = np.arange(steps)
    return n // steps + (i < n % steps).astype(np.int64)


def k_at(n, steps: int, i):
    """`k_schedule(n, steps)[i]` for traced n and i (jnp)."""
    return n // steps + (i < n % steps).astype(jnp.int32)


def anneal_weight(a0: float, i, steps: int):
    """DiffuGuard's stochastic-annealing weight `a_i = clip(a0 (1 - i / (S - 1)), 0, 1)`.

    `i` is the step within the current block and `S` the steps per block; with S = 1 the
    weight stays a0 (the formula's 0/0 is read as "no annealing progress").
    """
    frac = i / max(steps - 1, 1)
    return jnp.clip(a0 * (1.0 - frac), 0.0, 1.0)
