"""The teacher corpus of the real-text twins: which prompts the teacher answers, in which chunks.

The holdout is the real-AR experiment's own 100 harmful and 100 harmless prompts (its stored teacher
samples are reused there); training prompts are every other distinct harmful instruction of the shipped
sets, raw (several samples each) and under the real attacks (one each), plus disjoint harmless ones.
Chunks are small cells so an interrupted generation loses at most one, and kinds are interleaved so a
partial corpus stays balanced.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from toydlm.bridge.prompts import load_prompts
from toydlm.errors import UserError
from toydlm.real.kit.generate import CellPlan
from toydlm.real.kit.prompts import ATTACK_CELLS, attacked, length_cells, prompt_sets

HARMFUL_SETS = ("advbench", "harmbench", "strongreject", "jailbreakbench")
KINDS = ("raw", "attacked", "harmless")
HOLDOUT_ATTACK = "prefix_injection"  # the attacked holdout cell: the strongest attack on the teacher


@dataclass(frozen=True)
class CorpusMix:
    """How many prompts of each kind, samples per raw prompt, temperature, chunk size and seed."""

    n_raw: int = 700
    raw_samples: int = 2
    n_attacked: int = 650
    n_harmless: int = 700
    temperature: float = 1.0
    chunk_rows: int = 128
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("n_raw", "raw_samples", "n_attacked", "n_harmless", "chunk_rows"):
            v, least = getattr(self, name), 1 if name in ("raw_samples", "chunk_rows") else 0
            if isinstance(v, bool) or not isinstance(v, int) or v < least:
                raise UserError(f"corpus mix {name}={v!r}: must be an integer >= {least}")
        if not 0 < self.temperature <= 2:
            raise UserError(f"corpus mix temperature={self.temperature!r}: must be in (0, 2]")

    def to_dict(self) -> dict:
        return asdict(self)


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def holdout_prompts() -> dict[str, list[str]]:
    """The evaluation prompts: the real-AR experiment's 100 harmful and 100 harmless (seed 0)."""
    return prompt_sets(100, 100, seed=0)


def training_pools(holdout: dict[str, list[str]]) -> dict[str, list[str]]:
    """Distinct harmful instructions of the shipped sets and harmless ones, none in the holdout."""
    held = {_norm(x) for x in holdout["harmful"] + holdout["harmless"]}
    harmful, seen = [], set(held)
    for name in HARMFUL_SETS:
        for ins in load_prompts(name):
            if _norm(ins) not in seen:
                seen.add(_norm(ins))
                harmful.append(ins)
    harmless = [x for x in dict.fromkeys(load_prompts("harmless")) if _norm(x) not in held]
    return {"harmful": harmful, "harmless": harmless}


def draw(pool: list[str], n: int, rng: np.random.Generator, what: str) -> list[str]:
    """n distinct items of `pool` in a seeded random order; a one-line error when the pool is short."""
    if n > len(pool):
        raise UserError(f"corpus mix asks for {n} {what} prompts but only {len(pool)} distinct ones exist outside "
                        "the holdout")
    return [pool[i] for i in rng.permutation(len(pool))[:n]]


def corpus_prompts(mix: CorpusMix, pools: dict[str, list[str]]) -> dict[str, list[tuple[str, str]]]:
    """(attack, instruction) per kind. Attacked prompts cycle through the real attacks in a seeded order."""
    rng = np.random.default_rng(mix.seed)
    raw = draw(pools["harmful"], mix.n_raw, rng, "raw harmful")
    att = draw(pools["harmful"], mix.n_attacked, rng, "attacked harmful")
    order = [ATTACK_CELLS[i] for i in rng.permutation(len(ATTACK_CELLS))]
    return {"raw": [("raw", x) for x in raw],
            "attacked": [(order[i % len(order)], x) for i, x in enumerate(att)],
            "harmless": [("raw", x) for x in draw(pools["harmless"], mix.n_harmless, rng, "harmless")]}


def chunk_plans(mix: CorpusMix, prompts: dict[str, list[tuple[str, str]]]) -> list[CellPlan]:
    """Cells of about `chunk_rows` rows, kinds interleaved; each cell's seed is its position in the list."""
    per_kind = {}
    for kind in KINDS:
        samples = mix.raw_samples if kind == "raw" else 1
        step = max(1, mix.chunk_rows // samples)
        rows = prompts[kind]
        per_kind[kind] = [(kind, samples, rows[a:a + step], a) for a in range(0, len(rows), step)]
    plans = []
    for i in range(max(len(v) for v in per_kind.values())):
        for kind in KINDS:
            if i < len(per_kind[kind]):
                plans.append(_chunk(mix, *per_kind[kind][i], seed=1000 + mix.seed * 10_000 + len(plans)))
    return plans


def _chunk(mix: CorpusMix, kind: str, samples: int, rows: list[tuple[str, str]], start: int, seed: int) -> CellPlan:
    """One corpus cell: each row's attack applied to its instruction, `samples` samples each."""
    from toydlm.bridge.attacks import apply_attack

    ap = [apply_attack(a, x) for a, x in rows]
    return CellPlan(f"corpus_{kind}_{start:04d}", [p.user for p in ap], [p.prefill for p in ap], mix.temperature,
                    samples, seed, list(range(start, start + len(rows))))


def holdout_plans(holdout: dict[str, list[str]], temperature: float = 1.0, samples: int = 2) -> list[CellPlan]:
    """Teacher cells on the holdout at the corpus temperature that the real-AR store lacks: harmless
    prompts and the attacked harmful ones (raw harmful at T=1 is the real-AR experiment's `raw_T1`)."""
    return [attacked("holdout_harmless_T1", "raw", holdout["harmless"], temperature, samples, 5),
            attacked(f"holdout_{HOLDOUT_ATTACK}_T1", HOLDOUT_ATTACK, holdout["harmful"], temperature, samples, 6)]


def reference_plan(holdout: dict[str, list[str]]) -> CellPlan:
    """The real-AR experiment's `raw_T1` cell (4 teacher samples per holdout harmful prompt, T=1), which the
    twins read from that experiment's store instead of sampling again."""
    return length_cells(holdout["harmful"])[1]


def mix_summary(mix: CorpusMix, prompts: dict[str, list[tuple[str, str]]]) -> dict:
    """The recorded mix: prompts and rows per kind, and how many prompts each attack got."""
    att = {}
    for a, _ in prompts["attacked"]:
        att[a] = att.get(a, 0) + 1
    n = {k: len(v) for k, v in prompts.items()}
    return {"mix": mix.to_dict(), "n_prompts": sum(n.values()), "prompts_per_kind": n,
            "rows_per_kind": {"raw": n["raw"] * mix.raw_samples, "attacked": n["attacked"],
                              "harmless": n["harmless"]}, "attacks": att}
