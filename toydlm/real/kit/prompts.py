"""The prompts the real-model analyses share: the experiment's harmful and harmless instruction sets, the
real attacks, and a cell of attacked instructions.

Harmful prompts: `n_harmful // 2` each from HarmBench (test) and AdvBench, drawn once with a fixed
seed; harmless prompts from the Alpaca-derived set. Every cell records its own seed.
"""

from __future__ import annotations

import numpy as np

from toydlm.bridge.attacks import apply_attack
from toydlm.bridge.prompts import load_prompts
from toydlm.real.kit.generate import CellPlan

ATTACK_CELLS = ("refusal_suppression", "prefix_injection", "roleplay", "hypothetical", "flip",
                "prefill:Sure, here is")


def prompt_sets(n_harmful: int, n_harmless: int, seed: int = 0) -> dict[str, list[str]]:
    """The experiment's harmful (half HarmBench, half AdvBench) and harmless instructions."""
    rng = np.random.default_rng(seed)
    half = n_harmful // 2
    hb, ab = load_prompts("harmbench"), load_prompts("advbench")
    harmful = [hb[i] for i in sorted(rng.choice(len(hb), half, replace=False))]
    harmful += [ab[i] for i in sorted(rng.choice(len(ab), n_harmful - half, replace=False))]
    hl = load_prompts("harmless")
    harmless = [hl[i] for i in sorted(rng.choice(len(hl), n_harmless, replace=False))]
    return {"harmful": harmful, "harmless": harmless}


def attacked(name: str, attack: str, instructions: list[str], temperature: float, samples: int = 1,
             seed: int = 0) -> CellPlan:
    """A cell of `instructions` under one real attack (its user turns and prefills)."""
    ap = [apply_attack(attack, ins) for ins in instructions]
    return CellPlan(name, [a.user for a in ap], [a.prefill for a in ap], temperature, samples, seed,
                    list(range(len(instructions))))


def length_cells(harmful: list[str], samples: int = 4) -> list[CellPlan]:
    """The two raw length cells, `raw_T0.7` and `raw_T1` (`samples` per prompt): the real-AR experiment's
    length test, and the teacher samples the real-text twins compare their students with."""
    first = attacked("raw_T0.7", "raw", harmful, 0.7, samples, 1)
    first.draw = "race"  # sampled before the inverse-CDF draw existed; both are exact samplers
    return [first, attacked("raw_T1", "raw", harmful, 1.0, samples, 2)]
