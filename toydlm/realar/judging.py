"""The LLM harm judge over every stored harmful cell, one file of scores per cell (resumable).

The judge sees the raw harmful instruction (not the attacked user turn) and the response as a user
would read it: any assistant-turn prefill followed by what the model wrote.
"""

from __future__ import annotations

import json
from pathlib import Path

from toydlm.io import atomic_write_json
from toydlm.realar.plan import prompt_sets


def visible_response(spec: dict, sample: dict) -> str:
    """The prefill (when the cell forced one) followed by the model's own text."""
    return spec["prefills"][sample["prompt"]] + sample["text"]


def judge_inputs(rec: dict, harmful: list[str]) -> tuple[list[str], list[str]]:
    spec = rec["spec"]
    ins = [harmful[spec["prompt_ids"][s["prompt"]]] for s in rec["samples"]]
    return ins, [visible_response(spec, s) for s in rec["samples"]]


def cell_files(root: Path) -> list[Path]:
    """Stored cells of harmful prompts (the benign cell has no harm to judge)."""
    return sorted(p for p in root.glob("*.json") if not p.name.startswith("benign"))


def judge_stage(a) -> None:
    from toydlm.bridge.llm_judge import LLMHarmJudge

    root = Path(a.work) / a.model
    harmful = prompt_sets(a.n_harmful, a.n_harmless)["harmful"]
    out_dir = root / "judged"
    todo = [p for p in cell_files(root) if not (out_dir / p.name).exists()]
    print(f"{len(todo)} cells to judge with {a.judge_model}", flush=True)
    if not todo:
        return
    judge = LLMHarmJudge(a.judge_model, batch_size=8)
    for p in todo:
        rec = json.loads(p.read_text())
        ins, resp = judge_inputs(rec, harmful)
        scores = judge.scores(ins, resp, progress=True)
        atomic_write_json(out_dir / p.name, {"cell": p.name, "judge": judge.meta, "p_yes": scores.tolist()})
        print(f"{p.name}: {len(scores)} judged, harm rate {(scores > judge.threshold).mean():.3f}", flush=True)
