"""Pick responses of the real-AR experiment for hand labelling, and check a labels file against the store.

  select  print a stratified random pick (half keyword refusals, half not; seeded) as JSON lines to label
  check   verify that every label in results/real_ar_hand_labels.json points at a stored sample with the same text

The labels themselves are written by a person who reads each (instruction, response) pair; nothing here labels.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from toydlm.bridge.judges import keyword_refusal  # noqa: E402
from toydlm.real.ar.judging import cell_files, find_cell  # noqa: E402
from toydlm.real.kit.judged import judge_inputs  # noqa: E402
from toydlm.real.kit.prompts import prompt_sets  # noqa: E402


def candidates(root: Path, harmful: list[str], cells: list[str] | None) -> list[dict]:
    out = []
    for p in cell_files(root):
        rec = json.loads(p.read_text())
        name = rec["spec"]["name"]
        if cells and name not in cells:
            continue
        ins, resp = judge_inputs(rec, harmful)
        out += [{"checkpoint": root.name, "cell": name, "row": i, "instruction": a, "response": b,
                 "keyword_refusal": keyword_refusal(rec["samples"][i]["text"])}
                for i, (a, b) in enumerate(zip(ins, resp))]
    return out


def select(a) -> None:
    harmful = prompt_sets(100, 100)["harmful"]
    pool = candidates(Path(a.work) / a.model, harmful, a.cells.split(",") if a.cells else None)
    rng = np.random.default_rng(a.seed)
    pick = []
    for want_ref in (True, False):
        group = [c for c in pool if c["keyword_refusal"] == want_ref]
        pick += [group[i] for i in rng.choice(len(group), min(a.n // 2, len(group)), replace=False)]
    for c in sorted(pick, key=lambda c: rng.random()):  # shuffled, so the keyword verdict is not in the order
        c.pop("keyword_refusal")
        print(json.dumps(c, ensure_ascii=False))


def check(a) -> None:
    labels = json.loads((Path(a.out) / "real_ar_hand_labels.json").read_text())["labels"]
    harmful = prompt_sets(100, 100)["harmful"]
    bad = 0
    for lab in labels:
        _, rec = find_cell(Path(a.work) / lab["checkpoint"], lab["cell"])
        _, resp = judge_inputs(rec, harmful)
        bad += resp[lab["row"]] != lab["response"]
    print(f"{len(labels)} labels, {bad} not matching the store")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("action", choices=("select", "check"))
    ap.add_argument("--model", default="qwen2.5-coder-0.5b-instruct")
    ap.add_argument("--work", default="results/real_ar_cells")
    ap.add_argument("--out", default=str(ROOT / "results"))
    ap.add_argument("--cells", default=None)
    ap.add_argument("--n", type=int, default=40)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    select(a) if a.action == "select" else check(a)
