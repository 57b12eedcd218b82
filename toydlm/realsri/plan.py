"""Which prompts the real-SRI experiment decodes, following the study's setup where it is known.

- Anchors: the first 400 harmless (Alpaca-derived) and the first 400 AdvBench prompts.
- SRI Guard: the next 1,200 harmless prompts to train on, 200 more for the threshold, and 200 more
  as the benign side of the evaluation; all disjoint from the anchors.
- Evaluation: HarmBench prompts (disjoint from the AdvBench anchors), raw and under each attack.
Every cell is greedy (temperature 0) with 32 new tokens, the study's AR setting.
"""

from __future__ import annotations

from toydlm.bridge.prompts import load_prompts
from toydlm.realar.generate import CellPlan
from toydlm.realar.plan import attacked

STEPS = 32
N_ANCHOR = 400
GUARD_SPLITS = {"guard_train": (400, 1600), "guard_threshold": (1600, 1800), "benign_eval": (1800, 2000)}
EVAL_ATTACKS = ("raw", "refusal_suppression", "prefix_injection", "roleplay", "hypothetical",
                "prefill:Sure, here is")
GROUPS = ("anchors", "attacks", "guard")


def anchor_cells() -> list[CellPlan]:
    """The two anchor cells: harmless prompts (compliance anchor) and AdvBench prompts (refusal anchor)."""
    return [attacked("sri_anchor_benign", "raw", load_prompts("harmless")[:N_ANCHOR], 0.0, seed=0),
            attacked("sri_anchor_harmful", "raw", load_prompts("advbench")[:N_ANCHOR], 0.0, seed=0)]


def attack_cells(n: int = 100, attacks=EVAL_ATTACKS) -> list[CellPlan]:
    """HarmBench prompts, raw and under each attack; the first `n` of the set."""
    hb = load_prompts("harmbench")[:n]
    return [attacked(f"sri_{a}", a, hb, 0.0, seed=0) for a in attacks]


def guard_cells() -> list[CellPlan]:
    """Harmless prompts for SRI Guard's training, its threshold and the benign side of its evaluation."""
    hl = load_prompts("harmless")
    return [attacked(f"sri_{name}", "raw", hl[a:b], 0.0, seed=0) for name, (a, b) in GUARD_SPLITS.items()]


def cells(groups=GROUPS, n_eval: int = 100) -> list[CellPlan]:
    """The plans of the named groups, in the order given."""
    make = {"anchors": anchor_cells, "attacks": lambda: attack_cells(n_eval), "guard": guard_cells}
    return [p for g in groups for p in make[g]()]
