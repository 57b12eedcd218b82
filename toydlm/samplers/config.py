"""Sampler configuration: names, hyper-parameters, validation and the k_i commit schedule.

Vocabulary kept apart on purpose (docs/design.md, "Naming rules"): *selection* = which masked
positions get committed this step (`low_confidence`, `random`, `margin`, `entropy`, `annealed`,
and any rule added with `register_selection_rule`); *re-masking* = a committed token is put back
to mask (only `remdm`, through its sigma).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import jax.numpy as jnp
import numpy as np

from toydlm.errors import UserError
from toydlm.samplers.selection import BUILTIN_RULES, ScoreFn

LEFT_TO_RIGHT = ("ar", "ar_order")  # one committed token per step, leftmost masked position
SELECTION = tuple(BUILTIN_RULES)  # built-in LLaDA/Dream k_i-schedule samplers; see selection_names()
ANCESTRAL = ("mdlm", "remdm")  # per-position stochastic unmasking on a uniform time grid
SAMPLERS = LEFT_TO_RIGHT + SELECTION + ANCESTRAL  # built in; see sampler_names()
REMDM_SCHEDULES = ("cap", "rescale", "conf", "loop")
REMDM_DEFAULT_ETA = {"cap": 0.008, "rescale": 0.015, "conf": 1.0, "loop": 0.02}

_SELECTION_RULES: dict[str, ScoreFn] = dict(BUILTIN_RULES)  # name -> score, built-in then registered


def register_selection_rule(name: str, score: ScoreFn) -> None:
    """Add a selection sampler: `SamplerConfig(name)` then commits the eligible masked positions
    of highest `score(inputs)` (a `selection.ScoreInputs` -> `[L]`, traced by jax), k_i per step.

    Example, rightmost masked position first: `register_selection_rule("rightmost", lambda x:
    jnp.asarray(x.position, jnp.float32))`. Names are global to the process and cannot be reused
    for another function (compiled samplers are cached by name); registering the same function
    again is a no-op.
    """
    if not isinstance(name, str) or not name or name.strip() != name:
        raise UserError(f"a sampler name must be a non-empty string without surrounding spaces, got {name!r}")
    if not callable(score):
        raise UserError(f"the score of selection rule {name!r} must be callable, got {type(score).__name__}")
    if name in SAMPLERS:
        raise UserError(f"{name!r} is a built-in sampler: choose another name")
    if _SELECTION_RULES.get(name, score) is not score:
        raise UserError(f"selection rule {name!r} is already registered with another score: choose another name")
    _SELECTION_RULES[name] = score


def selection_names() -> tuple[str, ...]:
    """Every selection sampler: the built-in ones, then the registered ones."""
    return tuple(_SELECTION_RULES)


def selection_rule(name: str) -> ScoreFn:
    """The score function of a selection sampler."""
    return _SELECTION_RULES[name]


# Two exact ways to draw a proposal from the tempered distribution: the exponential race (Gumbel-max, one
# uniform per vocabulary entry) and the inverse CDF (one uniform per position: on CPU several times cheaper
# with a vocabulary of thousands). Same distribution, different random streams.
DRAWS = ("race", "inverse_cdf")


def sampler_names() -> tuple[str, ...]:
    """Every sampler name `SamplerConfig` accepts (what `toydlm sample --sampler` offers)."""
    return LEFT_TO_RIGHT + selection_names() + ANCESTRAL


@dataclass(frozen=True)
class SamplerConfig:
    """Everything that defines a sampler run (hashable: it is a static argument of jit).

    `steps=None` means one step per response position. `temperature=0` is argmax; otherwise
    proposals are Gumbel-max draws from `softmax(logits / temperature)` (float32), optionally
    restricted to the top-p nucleus. `eos_inf` is LLaDA's `logits_eos_inf` (the EOS logit is
    set to -inf before proposals and confidences), extended to every end token in `end_ids`, so that
    a model with a separate end-of-turn token is forced to full length too. Confidence of a proposal is its probability
    under the *untempered* softmax (LLaDA), after EOS suppression.
    """

    name: str
    steps: int | None = None
    block_length: int | None = None  # semi-AR blocks (selection samplers only); None = one block
    temperature: float = 1.0
    top_p: float = 1.0
    eos_inf: bool = False
    eos_id: int = 0
    eos_last: bool = False
    end_ids: tuple[int, ...] = ()  # further end tokens (end-of-turn) that eos_last and eos_inf treat as EOS
    remdm_schedule: str = "cap"
    eta: float | None = None  # None: the ReMDM script default of the schedule
    t_on: float = 0.55
    t_off: float = 0.05
    alpha_on: float = 0.9
    anneal_a0: float = 0.3  # DiffuGuard's a0
    draw: str = "race"  # how a proposal is drawn: `DRAWS` (`toydlm.samplers.proposals.draw`)

    def to_dict(self) -> dict:
        """The fields as JSON-normal values (`end_ids` as a list), so a dict read back compares equal. `draw`
        at its default is left out, so configs (and the cell keys hashed from them) made before it existed
        stay what they were."""
        d = {**dataclasses.asdict(self), "end_ids": [int(i) for i in self.end_ids]}
        if d["draw"] == "race":
            del d["draw"]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> SamplerConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise UserError(f"unknown sampler config field {unknown[0]!r} "
                            f"(valid: {', '.join(sorted(known))})")
        if "end_ids" in d:  # JSON stores the tuple as a list; the config must stay hashable
            d = {**d, "end_ids": tuple(int(i) for i in d["end_ids"])}
        return cls(**d)

    def replace(self, **kw) -> SamplerConfig:
        return dataclasses.replace(self, **kw)

    @property
    def eta_value(self) -> float:
        return REMDM_DEFAULT_ETA[self.remdm_schedule] if self.eta is None else float(self.eta)

    def resolved(self, response_len: int) -> SamplerConfig:
        """Fill defaults that depend on the response length and validate; raise UserError."""
        c = self if self.steps is not None else self.replace(steps=response_len)
        validate(c, response_len)
        return c


def validate(c: SamplerConfig, response_len: int) -> None:
    """Raise UserError naming the first bad field of a config with its steps filled in."""
    L = response_len
    if c.name not in sampler_names():
        raise UserError(f"unknown sampler {c.name!r} (valid: {', '.join(sampler_names())})")
    if not isinstance(c.steps, int) or c.steps < 1:
        raise UserError(f"steps must be a positive integer, got {c.steps!r}")
    if c.name in LEFT_TO_RIGHT and c.steps != L:
        raise UserError(f"sampler {c.name!r} commits one token per step: steps must equal the response "
                        f"length {L}, got {c.steps}")
    if not (c.temperature >= 0 and np.isfinite(c.temperature)):
        raise UserError(f"temperature must be >= 0, got {c.temperature}")
    if not 0 < c.top_p <= 1:
        raise UserError(f"top_p must be in (0, 1], got {c.top_p}")
    if c.block_length is not None:
        _validate_blocks(c, L)
    _validate_remdm(c)
    if c.eos_last and c.name not in selection_names():
        raise UserError(f"eos_last (end tokens selected last) applies to the selection samplers "
                        f"({', '.join(selection_names())}), not {c.name!r}")
    if c.eos_last and c.eos_inf:
        raise UserError("eos_last and eos_inf exclude each other: an end token that is never proposed "
                        "cannot be selected last")
    if c.draw not in DRAWS:
        raise UserError(f"unknown draw {c.draw!r} (valid: {', '.join(DRAWS)})")
    if not 0 <= c.anneal_a0 <= 1:
        raise UserError(f"anneal_a0 must be in [0, 1], got {c.anneal_a0}")


def _validate_blocks(c: SamplerConfig, L: int) -> None:
    if c.name not in selection_names():
        raise UserError(f"block_length applies to the selection samplers ({', '.join(selection_names())}), "
                        f"not {c.name!r}")
    if c.block_length < 1 or L % c.block_length:
        raise UserError(f"block_length {c.block_length} must divide the response length {L}")
    nb = L // c.block_length
    if c.steps % nb:
        raise UserError(f"steps {c.steps} must be a multiple of the number of blocks {nb} "
                        f"(response length {L} / block length {c.block_length})")


def _validate_remdm(c: SamplerConfig) -> None:
    if c.remdm_schedule not in REMDM_SCHEDULES:
        raise UserError(f"unknown remdm schedule {c.remdm_schedule!r} (valid: {', '.join(REMDM_SCHEDULES)})")
    if not 0 <= c.eta_value <= 1:
        raise UserError(f"eta must be in [0, 1], got {c.eta_value}")
    if not 0 <= c.t_off < c.t_on <= 1:
        raise UserError(f"remdm loop needs 0 <= t_off < t_on <= 1, got t_off={c.t_off}, t_on={c.t_on}")
    if not 0 < c.alpha_on < 1:
        raise UserError(f"alpha_on must be in (0, 1), got {c.alpha_on}")


def check_pairing(denoiser: Any, cfg: SamplerConfig) -> None:
    """`ar` needs a causal model (or the exact oracle); a causal model only supports `ar`."""
    causal = getattr(denoiser, "causal", None)
    exact = getattr(denoiser, "name", None) == "oracle"
    if causal is None or exact:
        return
    if causal and cfg.name != "ar":
        raise UserError(f"sampler {cfg.name!r} needs a masked-diffusion denoiser; "
                        "this one is causal (use ar)")
    if not causal and cfg.name == "ar":
        raise UserError("sampler 'ar' needs a causal (AR) model; "
                        "for diffusion weights left to right use ar_order")


def n_blocks(c: SamplerConfig, response_len: int) -> int:
    return 1 if c.block_length is None else response_len // c.block_length


def k_schedule(n: int, steps: int) -> np.ndarray:
    """LLaDA's linear commit counts: `k_i = floor(n / S) + 1[i < n mod S]`, summing to n."""
    i = np.arange(steps)
    return n // steps + (i < n % steps).astype(np.int64)


def k_at(n, steps: int, i):
    """`k_schedule(n, steps)[i]` for traced n and i (jnp)."""
    return n // steps + (i < n % steps).astype(jnp.int32)
