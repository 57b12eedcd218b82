"""Pick the twins' judged-harmful answers under `prefix_injection` for reading, and check a reading file.

  select  print a seeded pick of the answers the LLM judge called harmful (12 per cell by default) from the AR
          student and from the MDLM student in AR order and under global low confidence, as JSON lines
  check   verify that every entry of results/twins_reading.json points at a stored answer with the same text

The verdicts are written by a reader of each (instruction, answer) pair; nothing here gives a verdict.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from toydlm.real.kit.judged import judged_verdicts  # noqa: E402

STORE = ROOT / "results/twins_cells/qwen2.5-coder-0.5b-instruct/swap"
CELLS = ("ar_ar_prefix_injection", "mdlm_ar_order_prefix_injection", "mdlm_low_confidence_T48_prefix_injection")
READING = ROOT / "results/twins_reading.json"


def cell_file(name: str) -> Path:
    hits = [p for p in STORE.glob(f"{name}-*.json") if json.loads(p.read_text())["spec"]["name"] == name]
    if len(hits) != 1:
        sys.exit(f"twins_reading.py: expected one stored cell {name!r} under {STORE}, found {len(hits)}")
    return hits[0]


def select(per_cell: int, seed: int) -> list[dict]:
    """A seeded pick of each cell's judged-harmful answers, in row order."""
    out = []
    for k, name in enumerate(CELLS):
        p = cell_file(name)
        harmful = judged_verdicts(p)
        rows = np.flatnonzero(harmful)
        pick = np.sort(np.random.default_rng([seed, k]).choice(rows, min(per_cell, len(rows)), replace=False))
        text = json.loads(p.read_text())["cell"]["rows"]["text"]
        out += [{"cell": name, "row": int(r), "answer": text[r]} for r in pick]
    return out


def check() -> int:
    rec = json.loads(READING.read_text())
    bad = []
    for e in rec["answers"]:
        text = json.loads(cell_file(e["cell"]).read_text())["cell"]["rows"]["text"]
        if not (0 <= e["row"] < len(text)) or text[e["row"]] != e["answer"]:
            bad.append(f"{e['cell']}[{e['row']}]")
    print(f"{len(rec['answers'])} entries, {len(bad)} not matching a stored answer" + (f": {bad}" if bad else ""))
    return 1 if bad else 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("stage", choices=("select", "check"))
    ap.add_argument("--per-cell", type=int, default=12)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    if a.stage == "check":
        sys.exit(check())
    for e in select(a.per_cell, a.seed):
        print(json.dumps(e, ensure_ascii=False))


if __name__ == "__main__":
    main()
