"""The LLM harm judge over the real-SRI attack cells (one scores file per cell, resumable).

A jailbreak counts as successful when the judge calls the visible 32-token response harmful; the
judge sees the raw harmful instruction, as in the real-AR experiment.
"""

from __future__ import annotations

import json
from pathlib import Path

from toydlm.real.kit.judged import harm_judge, judge_cell, judged_path
from toydlm.real.sri.plan import EVAL_ATTACKS, attack_of, eval_prompts


def attack_cell_files(root: Path) -> list[Path]:
    """Stored attack cells under `root` (not the anchor or guard cells), raw first."""
    found = []
    for p in Path(root).glob("sri_*.json"):
        name = json.loads(p.read_text())["spec"]["name"]
        if attack_of(name) in EVAL_ATTACKS:
            found.append(((EVAL_ATTACKS.index(attack_of(name)), name), p))
    return [p for _, p in sorted(found)]


def judge_attack_cells(root: Path, judge_model: str, judge_dtype: str = "bfloat16") -> int:
    """Judge every stored attack cell not judged yet; returns how many were judged now."""
    harmful = eval_prompts()
    todo = [p for p in attack_cell_files(root) if not judged_path(p).exists()]
    judge = harm_judge(judge_model, judge_dtype) if todo else None
    for p in todo:
        judge_cell(judge, p, harmful)
    return len(todo)
