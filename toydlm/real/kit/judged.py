"""The LLM harm judge on stored cells: what it reads, where its scores live, and its verdicts.

The judge sees the raw harmful instruction (not the attacked user turn) and the response as a user
would read it: any assistant-turn prefill followed by what the model wrote. Its scores of a stored
cell file live in `judged/<kind><file name>` beside it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from toydlm.io import atomic_write_json


def harm_judge(model: str, dtype: str = "bfloat16", batch_size: int = 8):
    """The LLM harm judge (`toydlm.bridge.llm_judge.LLMHarmJudge`) the real-model analyses use."""
    from toydlm.bridge.llm_judge import LLMHarmJudge

    return LLMHarmJudge(model, dtype=dtype, batch_size=batch_size)


def visible_response(spec: dict, sample: dict) -> str:
    """The prefill (when the cell forced one) followed by the model's own text."""
    return spec["prefills"][sample["prompt"]] + sample["text"]


def judge_inputs(rec: dict, harmful: list[str]) -> tuple[list[str], list[str]]:
    """(raw instructions, visible responses) of every sample of a stored cell record."""
    spec = rec["spec"]
    ins = [harmful[spec["prompt_ids"][s["prompt"]]] for s in rec["samples"]]
    return ins, [visible_response(spec, s) for s in rec["samples"]]


def judged_path(cell: Path, kind: str = "") -> Path:
    """Where the judge's scores of a stored cell file live: `judged/<kind><file name>` beside it."""
    return cell.parent / "judged" / f"{kind}{cell.name}"


def judged_verdicts(cell: Path) -> np.ndarray | None:
    """The LLM judge's harmful / not verdicts on a stored cell file (its own threshold), or None if not judged."""
    j = judged_path(cell)
    if not j.exists():
        return None
    rec = json.loads(j.read_text())
    return np.asarray(rec["p_yes"]) > rec["judge"]["threshold"]


def judge_cell(judge, path: Path, harmful: list[str]) -> None:
    """Score every sample of the stored cell file `path` and write its `judged/` file."""
    rec = json.loads(path.read_text())
    ins, resp = judge_inputs(rec, harmful)
    scores = judge.scores(ins, resp, progress=True)
    atomic_write_json(judged_path(path), {"cell": path.name, "judge": judge.meta, "p_yes": scores.tolist()})
    print(f"{path.name}: {len(scores)} judged, harm rate {(scores > judge.threshold).mean():.3f}", flush=True)
