"""The LLM harm judge over every stored harmful cell of the real-AR experiment, one file of scores per
cell (resumable), and on the committed prefixes of one cell (step-wise harm for Model v1).

What the judge reads and where its scores live is the kit's (`toydlm.real.kit.judged`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from toydlm.errors import UserError
from toydlm.io import atomic_write_json
from toydlm.real.kit.judged import harm_judge, judge_cell, judged_path
from toydlm.real.kit.prompts import prompt_sets


@dataclass(frozen=True)
class JudgeConfig:
    """The judge stages' settings: whose cells (`work/model`), the prompt sets they index, and the judge."""

    work: Path
    model: str
    n_harmful: int = 100
    n_harmless: int = 100
    judge_model: str = "qwen2.5-coder-1.5b-instruct"
    judge_dtype: str = "bfloat16"
    follow: float = 0  # judge_stage: keep watching for new cells until none has appeared for this many seconds

    @property
    def root(self) -> Path:
        """The checkpoint's stored cells."""
        return Path(self.work) / self.model

    def harmful(self) -> list[str]:
        """The raw harmful instructions the cells' `prompt_ids` index."""
        return prompt_sets(self.n_harmful, self.n_harmless)["harmful"]


PREFIX = "prefix-"  # judged/prefix-<cell file>: the judge on a cell's prefixes (judge_prefixes)


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


def judge_stage(cfg: JudgeConfig) -> None:
    """Judge every stored harmful cell not judged yet; with `cfg.follow` > 0, keep watching for new cells
    (written by a `gen` running beside it) until none has appeared for that many seconds."""
    import time

    harmful = cfg.harmful()
    judge, idle_since = None, time.monotonic()
    while True:
        todo = [p for p in cell_files(cfg.root) if not judged_path(p).exists()]
        if todo:
            judge = judge or harm_judge(cfg.judge_model, cfg.judge_dtype)
            judge_cell(judge, todo[0], harmful)
            idle_since = time.monotonic()
        elif time.monotonic() - idle_since >= cfg.follow:
            return
        else:
            time.sleep(30)


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


def judge_prefixes(cfg: JudgeConfig, cell: str) -> None:
    """The harm judge on the committed prefixes (steps PREFIX_STEPS) of one stored cell: harm committed by
    step t, for a non-trivial step-wise AR trajectory (`judged/prefix-<cell file>`); NaN where the response
    had already ended (its verdict is the final one)."""
    from toydlm.bridge.loading import load_tokenizer

    path, rec = find_cell(cfg.root, cell)
    out = judged_path(path, PREFIX)
    if out.exists():
        return
    ins, resp, where = prefix_inputs(rec, cfg.harmful(), load_tokenizer(cfg.model))
    judge = harm_judge(cfg.judge_model, cfg.judge_dtype)
    scores = judge.scores(ins, resp, progress=True)
    grid = np.full((len(rec["samples"]), len(PREFIX_STEPS)), np.nan)
    for (i, j), sc in zip(where, scores):
        grid[i, j] = sc
    atomic_write_json(out, {"cell": path.name, "steps": list(PREFIX_STEPS), "judge": judge.meta,
                            "p_yes": [[None if np.isnan(x) else float(x) for x in row] for row in grid]})
    print(f"{out.name}: {len(scores)} prefixes judged", flush=True)
