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
    """Stored cells of harmful prompts (the benign cell has no harm to judge), in judging priority: the raw
    T=0.7 cell and the attack cells (the (a) table) first, then recovery cells, the T=1 length cell last."""
    def rank(p: Path) -> tuple[int, str]:
        n = p.name
        return (0 if n.startswith("raw_T0.7") else 3 if n.startswith("raw_T1") else
                2 if n.startswith(("prefill", "inject")) else 1, n)

    return sorted((p for p in root.glob("*.json") if not p.name.startswith("benign")), key=rank)


def judge_stage(a) -> None:
    """Judge every stored harmful cell not judged yet; with `a.follow` > 0, keep watching for new cells
    (written by a `gen` running beside it) until none has appeared for that many seconds."""
    import time

    from toydlm.bridge.llm_judge import LLMHarmJudge

    root = Path(a.work) / a.model
    harmful = prompt_sets(a.n_harmful, a.n_harmless)["harmful"]
    out_dir, judge, idle_since = root / "judged", None, time.monotonic()
    while True:
        todo = [p for p in cell_files(root) if not (out_dir / p.name).exists()]
        if todo:
            judge = judge or LLMHarmJudge(a.judge_model, dtype=a.judge_dtype, batch_size=8)
            _judge_cell(judge, todo[0], harmful, out_dir)
            idle_since = time.monotonic()
        elif time.monotonic() - idle_since >= getattr(a, "follow", 0):
            return
        else:
            time.sleep(30)


def _judge_cell(judge, path: Path, harmful: list[str], out_dir: Path) -> None:
    rec = json.loads(path.read_text())
    ins, resp = judge_inputs(rec, harmful)
    scores = judge.scores(ins, resp, progress=True)
    atomic_write_json(out_dir / path.name, {"cell": path.name, "judge": judge.meta, "p_yes": scores.tolist()})
    print(f"{path.name}: {len(scores)} judged, harm rate {(scores > judge.threshold).mean():.3f}", flush=True)
