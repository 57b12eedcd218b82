"""Which prompts the real-SRI experiment decodes, following the study's setup where it is known.

- Anchors: the first 400 harmless (Alpaca-derived) and the first 400 AdvBench prompts.
- SRI Guard: the next 1,200 harmless prompts to train on, 200 more for the threshold, and 200 more
  as the benign side of the evaluation; all disjoint from the anchors.
- Evaluation: all 159 HarmBench prompts, then AdvBench prompts 400-519 (both disjoint from the AdvBench
  anchors), raw and under each attack, in cells of 100 prompts. The first 100 HarmBench prompts were the
  first run; the rest were added because four of six sets had fewer than 50 successful jailbreaks.
Every cell is greedy (temperature 0) with 32 new tokens, the study's AR setting.
"""

from __future__ import annotations

from toydlm.bridge.prompts import load_prompts
from toydlm.errors import UserError
from toydlm.real.kit.generate import CellPlan
from toydlm.real.kit.prompts import attacked

STEPS = 32
N_ANCHOR = 400
CHUNK = 100  # evaluation prompts per attack cell; a larger --n-eval adds cells and keeps the stored ones
GUARD_SPLITS = {"guard_train": (400, 1600), "guard_threshold": (1600, 1800), "benign_eval": (1800, 2000)}
EVAL_ATTACKS = ("raw", "refusal_suppression", "prefix_injection", "roleplay", "hypothetical",
                "prefill:Sure, here is")
GROUPS = ("anchors", "attacks", "guard")


def anchor_cells() -> list[CellPlan]:
    """The two anchor cells: harmless prompts (compliance anchor) and AdvBench prompts (refusal anchor)."""
    return [attacked("sri_anchor_benign", "raw", load_prompts("harmless")[:N_ANCHOR], 0.0, seed=0),
            attacked("sri_anchor_harmful", "raw", load_prompts("advbench")[:N_ANCHOR], 0.0, seed=0)]


def eval_prompts() -> list[str]:
    """The harmful instructions of the evaluation, in order: HarmBench, then AdvBench past the anchors."""
    return load_prompts("harmbench") + load_prompts("advbench")[N_ANCHOR:]


def attack_cells(n: int | None = None, attacks=EVAL_ATTACKS) -> list[CellPlan]:
    """The first `n` evaluation prompts (all by default), raw and under each attack, `CHUNK` per cell.
    A cell's `prompt_ids` index `eval_prompts()`, which is what the judge reads the instruction from."""
    ev = eval_prompts()
    n = len(ev) if n is None else n
    if not 0 < n <= len(ev):
        raise UserError(f"--n-eval must be between 1 and {len(ev)} (the evaluation prompts), got {n}")
    out = []
    for a in attacks:
        for lo in range(0, n, CHUNK):
            hi = min(lo + CHUNK, n)
            plan = attacked(f"sri_{a}" + (f"@{lo}" if lo else ""), a, ev[lo:hi], 0.0, seed=0)
            plan.prompt_ids = list(range(lo, hi))
            out.append(plan)
    return out


def attack_of(cell_name: str) -> str:
    """The attack an evaluation cell's name stands for (`sri_raw@100` -> `raw`)."""
    return cell_name.removeprefix("sri_").split("@")[0]


def guard_cells() -> list[CellPlan]:
    """Harmless prompts for SRI Guard's training, its threshold and the benign side of its evaluation."""
    hl = load_prompts("harmless")
    return [attacked(f"sri_{name}", "raw", hl[a:b], 0.0, seed=0) for name, (a, b) in GUARD_SPLITS.items()]


def cells(groups=GROUPS, n_eval: int | None = None, attacks=EVAL_ATTACKS) -> list[CellPlan]:
    """The plans of the named groups, in the order given."""
    make = {"anchors": anchor_cells, "attacks": lambda: attack_cells(n_eval, attacks), "guard": guard_cells}
    return [p for g in groups for p in make[g]()]
