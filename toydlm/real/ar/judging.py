"""The LLM harm judge over every stored harmful cell, one file of scores per cell (resumable).

The judge sees the raw harmful instruction (not the attacked user turn) and the response as a user
would read it: any assistant-turn prefill followed by what the model wrote.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from toydlm.errors import UserError
from toydlm.io import atomic_write_json
from toydlm.real.ar.plan import prompt_sets


def visible_response(spec: dict, sample: dict) -> str:
    """The prefill (when the cell forced one) followed by the model's own text."""
    return spec["prefills"][sample["prompt"]] + sample["text"]


def judge_inputs(rec: dict, harmful: list[str]) -> tuple[list[str], list[str]]:
    spec = rec["spec"]
    ins = [harmful[spec["prompt_ids"][s["prompt"]]] for s in rec["samples"]]
    return ins, [visible_response(spec, s) for s in rec["samples"]]


PREFIX = "prefix-"  # judged/prefix-<cell file>: the judge on a cell's prefixes (judge_prefixes)


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


def find_cell(root: Path, name: str) -> tuple[Path, dict]:
    """The stored cell called `name` (its file and record), or a one-line error listing the stored names."""
    recs = [(p, json.loads(p.read_text())) for p in sorted(root.glob("*.json"))]
    for p, rec in recs:
        if rec["spec"]["name"] == name:
            return p, rec
    raise UserError(f"no stored cell {name!r} under {root} (stored: {', '.join(r['spec']['name'] for _, r in recs)})")


def cell_files(root: Path) -> list[Path]:
    """Stored cells of harmful prompts (the benign cell has no harm to judge), in judging priority: the raw
    T=0.7 cell and the attack cells (the (a) table) first, then recovery cells, the T=1 length cell last."""
    def rank(p: Path) -> tuple[int, str]:
        n = p.name
        return (0 if n.startswith("raw_T0.7") else 3 if n.startswith("raw_T1") else
                2 if re.match(r"(prefill|inject)\d", n) else 1, n)

    return sorted((p for p in root.glob("*.json") if not p.name.startswith("benign")), key=rank)


def judge_stage(a) -> None:
    """Judge every stored harmful cell not judged yet; with `a.follow` > 0, keep watching for new cells
    (written by a `gen` running beside it) until none has appeared for that many seconds."""
    import time

    from toydlm.bridge.llm_judge import LLMHarmJudge

    root = Path(a.work) / a.model
    harmful = prompt_sets(a.n_harmful, a.n_harmless)["harmful"]
    judge, idle_since = None, time.monotonic()
    while True:
        todo = [p for p in cell_files(root) if not judged_path(p).exists()]
        if todo:
            judge = judge or LLMHarmJudge(a.judge_model, dtype=a.judge_dtype, batch_size=8)
            judge_cell(judge, todo[0], harmful)
            idle_since = time.monotonic()
        elif time.monotonic() - idle_since >= getattr(a, "follow", 0):
            return
        else:
            time.sleep(30)


def judge_cell(judge, path: Path, harmful: list[str]) -> None:
    rec = json.loads(path.read_text())
    ins, resp = judge_inputs(rec, harmful)
    scores = judge.scores(ins, resp, progress=True)
    atomic_write_json(judged_path(path), {"cell": path.name, "judge": judge.meta, "p_yes": scores.tolist()})
    print(f"{path.name}: {len(scores)} judged, harm rate {(scores > judge.threshold).mean():.3f}", flush=True)


PREFIX_STEPS = (8, 16, 32, 64)


def prefix_inputs(rec: dict, harmful: list[str], tok, steps=PREFIX_STEPS) -> tuple[list, list, list]:
    """(instructions, visible prefixes, (row, step index)) for every sample longer than each step: the
    committed text of an AR response at step t is its first t tokens."""
    ins, resp, where = [], [], []
    spec = rec["spec"]
    for i, s in enumerate(rec["samples"]):
        for j, t in enumerate(steps):
            if s["length"] > t:
                ins.append(harmful[spec["prompt_ids"][s["prompt"]]])
                resp.append(spec["prefills"][s["prompt"]] + tok.decode(s["ids"][:t], skip_special_tokens=True))
                where.append((i, j))
    return ins, resp, where


def judge_prefixes(a, cell: str) -> None:
    """The harm judge on the committed prefixes (steps PREFIX_STEPS) of one stored cell: harm committed by
    step t, for a non-trivial step-wise AR trajectory (`judged/prefix-<cell file>`); NaN where the response
    had already ended (its verdict is the final one)."""

    from toydlm.bridge.llm_judge import LLMHarmJudge
    from toydlm.bridge.loading import load_tokenizer

    path, rec = find_cell(Path(a.work) / a.model, cell)
    out = judged_path(path, PREFIX)
    if out.exists():
        return
    ins, resp, where = prefix_inputs(rec, prompt_sets(a.n_harmful, a.n_harmless)["harmful"], load_tokenizer(a.model))
    judge = LLMHarmJudge(a.judge_model, dtype=a.judge_dtype, batch_size=8)
    scores = judge.scores(ins, resp, progress=True)
    grid = np.full((len(rec["samples"]), len(PREFIX_STEPS)), np.nan)
    for (i, j), sc in zip(where, scores):
        grid[i, j] = sc
    atomic_write_json(out, {"cell": path.name, "steps": list(PREFIX_STEPS), "judge": judge.meta,
                            "p_yes": [[None if np.isnan(x) else float(x) for x in row] for row in grid]})
    print(f"{out.name}: {len(scores)} prefixes judged", flush=True)
