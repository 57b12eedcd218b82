"""The cells of a run: (grammar, model, sampler, temperature, attack), each fit or held out."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

from toydlm.experiment.presets import RunPreset, SamplerVariant

AR_VARIANT = SamplerVariant("ar", "ar")


def stable_seed(s: str) -> int:
    """A seed offset from a string that does not change between Python processes."""
    import zlib

    return zlib.crc32(s.encode()) % 100_003


@dataclass(frozen=True)
class Cell:
    grammar: str
    model: str  # ar | mdlm | oracle
    seed: int | None  # the learned model's training seed; None for the oracle
    sampler: SamplerVariant
    temperature: float
    attack: str
    fit: bool  # used to fit the theory's free parameters (else held out)

    @property
    def key(self) -> str:
        m = self.model if self.seed is None else f"{self.model}-s{self.seed}"
        raw = f"{self.grammar}__{m}__{self.sampler.label}__temp{self.temperature:g}__{self.attack}"
        return re.sub(r"[^A-Za-z0-9_.@-]", "-", raw)

    @property
    def model_key(self) -> str:
        """Cells sharing a model (and temperature) share the theory's model-side parameters."""
        return f"{self.grammar}/{self.model}/{self.seed}/temp{self.temperature:g}"

    def to_dict(self) -> dict:
        d = asdict(self)
        d["sampler"] = self.sampler.label
        d["sampler_config"] = self.sampler.config_dict(self.temperature)
        d["key"] = self.key
        return d


def _attacks_for(p: RunPreset, temperature: float, grammar: str) -> tuple[str, ...]:
    attacks = p.grammar_attacks.get(grammar, p.attacks)
    if temperature == 1.0:
        return attacks
    if p.t0_grammars and grammar not in p.t0_grammars:
        return ()
    return tuple(a for a in attacks if a == "none" or a.startswith("wrapper:"))


def enumerate_cells(p: RunPreset) -> list[Cell]:
    """Every cell of the preset, in a stable order (the order they are run and reported)."""
    cells: list[Cell] = []

    def fit(model: str, label: str, attack: str) -> bool:
        if model == "oracle" or label == p.heldout_sampler:
            return False  # the oracle has no representation error: the theory has nothing to fit there
        if label in p.fit_samplers_every_attack:
            return True
        return label in p.fit_samplers and attack in p.fit_attacks

    for g in p.grammars:
        models: list[tuple[str, int | None]] = [("oracle", None)]
        if g in p.learned_grammars:
            models = [("ar", s) for s in p.model_seeds] + [("mdlm", s) for s in p.model_seeds] + models
        for temp in (1.0, 0.0) if 0.0 in p.temperatures or p.t0_samplers else (1.0,):
            for model, seed in models:
                variants = (AR_VARIANT,) if model == "ar" else p.samplers
                for v in variants:
                    if temp == 0.0 and v.label not in p.t0_samplers and not (model == "ar" and "ar_order" in
                                                                              p.t0_samplers):
                        continue
                    for a in _attacks_for(p, temp, g):
                        cells.append(Cell(g, model, seed, v, temp, a, fit(model, v.label, a)))
    return cells
