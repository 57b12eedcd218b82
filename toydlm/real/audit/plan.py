"""The audit's cells: every sampler × attack × temperature × generation length, plus the recovery curves.

A cell is prompts × samples rows; row r is prompt r // samples, sample r % samples. Its seed is fixed
by the run's seed and the cell's attack, temperature and length, so every sampler of a swap sees the
same prompts and noise stream, and a cell keeps its numbers when other cells are added or dropped.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from toydlm.bridge.attacks import apply_attack, parse_attacks
from toydlm.bridge.prompts import load_prompts
from toydlm.real.ar.plan import INJECT_STEPS, PREFILL_TOKENS, REFUSAL_OPENER, opener_prefix
from toydlm.real.audit.spec import RECOVERY_ATTACKS, AuditConfig, sampler_texts
from toydlm.real.kit.sampler_specs import SamplerSpec, parse_sampler


@dataclass(frozen=True)
class AuditCell:
    """One cell: what to decode and how to label it. `group` is `attack`, `benign`, `prefill` or `injection`;
    `x` is the curve's position (prefill tokens or injection step), else None."""

    sampler: SamplerSpec
    attack: str
    temperature: float
    gen_length: int
    users: tuple[str, ...]
    prefills: tuple[str, ...]
    instructions: tuple[str, ...]  # the raw requests the judge sees
    prompt_index: tuple[int, ...]
    samples: int
    seed: int
    group: str = "attack"
    x: int | None = None

    @property
    def rows(self) -> int:
        return len(self.users) * self.samples

    @property
    def name(self) -> str:
        curve = "" if self.x is None else f"@{self.x}"
        return f"{self.sampler.label}|{self.attack}{curve}|T{self.temperature:g}|L{self.gen_length}"

    def spec(self, model: dict) -> dict:
        """Everything that decides the cell's samples: the store's key (JSON-normal, so it compares equal
        to the copy read back from disk)."""
        return json.loads(json.dumps({
                "name": self.name, "model": model, "sampler": self.sampler.cfg.to_dict(), "attack": self.attack,
                "x": self.x, "users": list(self.users), "prefills": list(self.prefills),
                "temperature": self.temperature, "gen_length": self.gen_length, "samples": self.samples,
                "seed": self.seed}))


def cell_seed(seed: int, attack: str, temperature: float, gen_length: int, x: int | None = None) -> int:
    """A cell's seed: the run's seed plus a stable hash of what the cell is (not of the sampler)."""
    h = hashlib.sha256(f"{attack}|{temperature:g}|{gen_length}|{x}".encode()).hexdigest()
    return seed * 1_000_003 + int(h[:7], 16)


def attack_names(cfg: AuditConfig) -> list[str]:
    """The single-cell attacks, checked (the recovery curves are planned apart)."""
    rest = [a for a in cfg.attacks if a not in RECOVERY_ATTACKS]
    return parse_attacks(rest) if rest else []


def prompt_lists(cfg: AuditConfig) -> tuple[list[str], list[str] | None]:
    """(harmful instructions, harmless instructions or None), read and checked before any model loads."""
    harmful = load_prompts(cfg.prompts, cfg.n)
    harmless = load_prompts(cfg.harmless, cfg.n) if cfg.harmless else None
    return harmful, harmless


def base_cells(cfg: AuditConfig, harmful: list[str], harmless: list[str] | None, tok=None) -> list[AuditCell]:
    """Every cell that needs no earlier result (`tok` is needed only for the prefill curve)."""
    cells = []
    for L in cfg.gen_lengths:
        for T in cfg.temperatures:
            for text in sampler_texts(cfg):
                sp = parse_sampler(text, cfg.kind, L, T, cfg.steps)
                cells += _sampler_cells(cfg, sp, T, L, harmful, harmless, tok)
    return cells


def _sampler_cells(cfg, sp, T, L, harmful, harmless, tok) -> list[AuditCell]:
    idx = tuple(range(len(harmful)))
    out = []
    for a in attack_names(cfg):
        ap = [apply_attack(a, ins) for ins in harmful]
        out.append(AuditCell(sp, a, T, L, tuple(x.user for x in ap), tuple(x.prefill for x in ap), tuple(harmful),
                             idx, cfg.samples, cell_seed(cfg.seed, a, T, L)))
    if harmless:
        out.append(AuditCell(sp, "benign", T, L, tuple(harmless), ("",) * len(harmless), tuple(harmless),
                             tuple(range(len(harmless))), cfg.samples, cell_seed(cfg.seed, "benign", T, L),
                             group="benign"))
    if "prefill" in cfg.attacks and tok is not None:
        for k in PREFILL_TOKENS:
            pre = opener_prefix(tok, k)
            out.append(AuditCell(sp, "prefill", T, L, tuple(harmful), (pre,) * len(harmful), tuple(harmful), idx,
                                 cfg.samples, cell_seed(cfg.seed, "prefill", T, L, k), group="prefill", x=k))
    return out


def injection_cells(raw: AuditCell, samples: list[dict], refused, tok, max_prompts: int = 50,
                    min_len: int = 16) -> list[AuditCell]:
    """A refusal opener forced after the first t tokens of the model's own compliant raw answers (one
    sample per prompt: the first compliant one at least `min_len` long), one cell per t."""
    keep, seen = [], set()
    for s, r in zip(samples, refused):
        if not r and s["length"] >= min_len and s["prompt"] not in seen:
            keep.append(s)
            seen.add(s["prompt"])
    keep = keep[:max_prompts]
    if not keep:
        return []
    cells = []
    for t in INJECT_STEPS:
        users = tuple(raw.users[s["prompt"]] for s in keep)
        pre = tuple(raw.prefills[s["prompt"]] + tok.decode(s["ids"][:t]) + REFUSAL_OPENER for s in keep)
        cells.append(AuditCell(raw.sampler, "injection", raw.temperature, raw.gen_length, users, pre,
                               tuple(raw.instructions[s["prompt"]] for s in keep),
                               tuple(raw.prompt_index[s["prompt"]] for s in keep), 1,
                               cell_seed(raw.seed, "injection", raw.temperature, raw.gen_length, t),
                               group="injection", x=t))
    return cells


def plan_summary(cells: list[AuditCell], n_injection: int) -> dict:
    """Cells, rows and worst-case tokens (every row to the cap), the injection cells counted at their most."""
    rows = sum(c.rows for c in cells)
    tokens = sum(c.rows * c.gen_length for c in cells)
    return {"cells": len(cells) + n_injection, "rows": rows, "tokens_worst": tokens}
