"""Shared helpers for the experiment scripts: load a `toydlm run` summary, write results."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from toydlm.io import atomic_write_json, provenance  # noqa: E402


def load_run(default: str = "runs/default-s0") -> tuple[dict, argparse.Namespace]:
    ap = argparse.ArgumentParser(description=sys.modules["__main__"].__doc__)
    ap.add_argument("--run", default=default, help="a `toydlm run` output folder (run it first)")
    ap.add_argument("--out", default=str(ROOT / "results"))
    args = ap.parse_args()
    p = Path(args.run) / "summary.json"
    if not p.is_file():
        sys.exit(f"{p} not found: run `toydlm run --out {args.run}` first")
    return json.loads(p.read_text()), args


def write(name: str, data: dict, summary: dict, args) -> Path:
    out = Path(args.out) / f"{name}.json"
    atomic_write_json(out, {"experiment": name, "source_run": str(args.run),
                            "source_git_revision": summary.get("git_revision"), "seed": summary.get("seed"),
                            **provenance(seed=summary.get("seed"), config=summary.get("config")), **data})
    print(f"wrote {out}")
    return out


def cells(summary: dict, **kw) -> list[dict]:
    return [c for c in summary["cells"] if all(c.get(k) == v for k, v in kw.items())]
