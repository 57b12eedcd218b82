"""Shared helpers for the experiment scripts: load a `toydlm run` summary, write results."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from toydlm.io import atomic_write_json, provenance  # noqa: E402


def repo_relative(path: str | Path) -> str:
    """`path` relative to the repository when it lies inside it (results store no machine paths), else as given."""
    try:
        return Path(path).resolve().relative_to(ROOT).as_posix()
    except ValueError:
        return str(path)


def load_run(default: str = "runs/default-s0") -> tuple[dict, argparse.Namespace]:
    """The summary of the `toydlm run` folder given by `--run`, and the parsed arguments."""
    ap = argparse.ArgumentParser(description=sys.modules["__main__"].__doc__)
    ap.add_argument("--run", default=default, help="a `toydlm run` output folder (run it first)")
    ap.add_argument("--out", default=str(ROOT / "results"))
    args = ap.parse_args()
    p = Path(args.run) / "summary.json"
    if not p.is_file():
        sys.exit(f"{p} not found: run `toydlm run --out {args.run}` first")
    return json.loads(p.read_text()), args


def write(name: str, data: dict, summary: dict, args) -> Path:
    """Write `results/<name>.json`: the experiment's data with the provenance of its source run."""
    out = Path(args.out) / f"{name}.json"
    atomic_write_json(out, {"experiment": name, "source_run": repo_relative(args.run),
                            "source_git_revision": summary.get("git_revision"), "seed": summary.get("seed"),
                            **provenance(seed=summary.get("seed"), config=summary.get("config")), **data})
    print(f"wrote {out}")
    return out


def cells(summary: dict, **kw) -> list[dict]:
    """The summary's cell rows whose fields equal every keyword given."""
    return [c for c in summary["cells"] if all(c.get(k) == v for k, v in kw.items())]


def grid_args(name: str, n: int = 250) -> argparse.Namespace:
    """Arguments of the grid experiments (sweeps, recovery curves), which sample cells of their own."""
    ap = argparse.ArgumentParser(description=sys.modules["__main__"].__doc__)
    ap.add_argument("--run", default="results/default-s1",
                    help="a `toydlm run` folder (default preset) whose fitted model offsets the theory uses")
    ap.add_argument("--out", default=str(ROOT / "results"))
    ap.add_argument("--work", default=f"runs/{name}", help="per-cell results, so an interrupted run resumes")
    ap.add_argument("--n", type=int, default=n, help="prompts per cell")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--oracle-sim-n", type=int, default=800, help="theory (Model v2, oracle_sim) trajectories per cell")
    ap.add_argument("--quiet", action="store_true", help="no progress bars")
    args = ap.parse_args()
    if args.n < 1 or args.oracle_sim_n < 1:
        sys.exit("--n and --oracle-sim-n must be >= 1")
    return args


def run_grid(cells_: list, args: argparse.Namespace) -> tuple[list[dict], dict]:
    """Measure the cells on the default preset's cached models; (rows, source-run summary or {})."""
    from toydlm.experiment.grid import measure_grid
    from toydlm.experiment.models import models_cache
    from toydlm.experiment.presets import get_preset

    p = Path(args.run) / "summary.json"
    summary = json.loads(p.read_text()) if p.is_file() else {}
    if not summary:
        print(f"note: {p} not found; learned-model predictions use no offset (the oracle's)", file=sys.stderr)
    rows = measure_grid(cells_, args.work, get_preset("default"), args.n, args.seed, models_cache(),
                        args.oracle_sim_n, summary.get("model_offsets"), progress=not args.quiet)
    return rows, summary


def write_grid(name: str, data: dict, args: argparse.Namespace, summary: dict) -> Path:
    """Write a grid experiment's JSON with its provenance (seed, n, source run)."""
    out = Path(args.out) / f"{name}.json"
    atomic_write_json(out, {"experiment": name, "source_run": repo_relative(args.run), "n_per_cell": args.n,
                            "oracle_sim_n": args.oracle_sim_n, "offsets_from_run": summary.get("git_revision"),
                            **provenance(seed=args.seed, config={"n": args.n, "oracle_sim_n": args.oracle_sim_n}),
                            **data})
    print(f"wrote {out}")
    return out
