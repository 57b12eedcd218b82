"""Model v2's sampler description: `SamplerSpec`, its validation and its step plan.

The fields of toydlm's `SamplerConfig` that matter on an oracle (read, not imported). A sampler is
identified by its `name`: left-to-right (`ar_order`, `ar`), a top-k selection rule
(`theory.selection_rules`, extensible by `register_selection_rule`), or ancestral (`mdlm`, and
`remdm`, the only one that re-masks).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from theory.schedules import block_plan
from theory.selection_rules import BUILTIN_SELECTION, SELECTION_RULES

LEFT_TO_RIGHT = ("ar_order", "ar")
SELECTION = BUILTIN_SELECTION  # the built-in selection rules; registered ones extend SELECTION_RULES
ANCESTRAL = ("mdlm", "remdm")
SAMPLERS = LEFT_TO_RIGHT + SELECTION + ANCESTRAL
REMDM_SCHEDULES = ("cap", "rescale", "conf", "loop")
REMDM_DEFAULT_ETA = {"cap": 0.008, "rescale": 0.015, "conf": 1.0, "loop": 0.02}


def sampler_names() -> tuple[str, ...]:
    """Every sampler name a spec may use: the built-ins and the registered selection rules."""
    return LEFT_TO_RIGHT + tuple(SELECTION_RULES) + ANCESTRAL


@dataclass(frozen=True)
class SamplerSpec:
    """A sampler on the oracle: the fields of toydlm's `SamplerConfig` that matter there.

    `steps` as in the lab (ar/ar_order: = L). `block_length`: selection samplers only (None = one
    block). `argmax_ties` at temperature 0: "lowest" (lowest token id: jnp.argmax, the lab) or
    "random" (uniform among the maximisers). `mask_id`: a token never proposed, even where
    `eos_inf` leaves no mass (None: every non-EOS token may be). `anneal_a0` may exceed 1 here (the
    lab caps it at 1): a0 -> inf is `random` selection.
    """

    name: str
    steps: int
    block_length: int | None = None
    temperature: float = 1.0
    eos_inf: bool = False
    argmax_ties: str = "lowest"
    anneal_a0: float = 0.3
    remdm_schedule: str = "cap"
    eta: float | None = None
    t_on: float = 0.55
    t_off: float = 0.05
    alpha_on: float = 0.9
    mask_id: int | None = None

    @property
    def eta_value(self) -> float:
        return REMDM_DEFAULT_ETA[self.remdm_schedule] if self.eta is None else float(self.eta)

    @property
    def is_selection(self) -> bool:
        """Does the sampler commit the top-k of a selection rule (with LLaDA blocks)?"""
        return self.name in SELECTION_RULES

    def validate(self, L: int) -> None:
        """Raise ValueError for an unknown name or a field out of range, for canvases of length L."""
        if self.name not in sampler_names():
            raise ValueError(f"unknown sampler {self.name!r}: expected one of {', '.join(sampler_names())}")
        if not isinstance(self.steps, (int, np.integer)) or self.steps < 1:
            raise ValueError(f"steps = {self.steps!r} must be a positive integer")
        if self.name in LEFT_TO_RIGHT and self.steps != L:
            raise ValueError(f"{self.name} commits one position per step: steps={self.steps} "
                             f"must equal L={L}")
        if self.block_length is not None:
            self._validate_blocks(L)
        if not (self.temperature >= 0 and np.isfinite(self.temperature)):
            raise ValueError(f"temperature = {self.temperature!r} must be >= 0")
        if self.argmax_ties not in ("lowest", "random"):
            raise ValueError(f"argmax_ties = {self.argmax_ties!r}: expected 'lowest' or 'random'")
        if not self.anneal_a0 >= 0:
            raise ValueError(f"anneal_a0 = {self.anneal_a0!r} must be >= 0")
        self._validate_remdm()

    def _validate_blocks(self, L: int) -> None:
        if not self.is_selection:
            raise ValueError(f"{self.name} has no blocks: leave block_length as None "
                             f"(blocks apply to {', '.join(SELECTION_RULES)})")
        bl = self.block_length
        if bl < 1 or L % bl:
            raise ValueError(f"block_length={bl} must divide L={L}")
        if self.steps % (L // bl):
            raise ValueError(f"steps T={self.steps} must be a multiple of the number of blocks {L // bl}")

    def _validate_remdm(self) -> None:
        if self.remdm_schedule not in REMDM_SCHEDULES:
            raise ValueError(f"unknown ReMDM schedule {self.remdm_schedule!r}: "
                             f"expected {', '.join(REMDM_SCHEDULES)}")
        if not 0 <= self.eta_value <= 1:
            raise ValueError(f"eta = {self.eta_value!r} must be in [0, 1]")
        if not 0 <= self.t_off < self.t_on <= 1:
            raise ValueError(f"need 0 <= t_off < t_on <= 1, got t_off={self.t_off}, t_on={self.t_on}")
        if not 0 < self.alpha_on < 1:
            raise ValueError(f"alpha_on = {self.alpha_on!r} must be in (0, 1)")

    def n_blocks(self, L: int) -> int:
        return 1 if self.block_length is None else L // self.block_length

    def plan(self, L: int) -> tuple[np.ndarray, np.ndarray, int]:
        """(block of each step, commit count of each step for a block that starts fully masked,
        block length); validates. The lab derives k from the block's masked count at its start."""
        self.validate(L)
        if self.name in LEFT_TO_RIGHT:
            return np.arange(L), np.ones(L, int), 1
        if self.name in ANCESTRAL:
            return np.zeros(self.steps, int), np.zeros(self.steps, int), L
        blocks, k = block_plan(L, self.steps, self.block_length)
        return blocks, k, L // self.n_blocks(L)
