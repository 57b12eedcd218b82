"""SRI on a real AR checkpoint (issue 17, first part): the study's signal, its anchors and the IRR.

Stages (resumable; `--work` keeps one JSON and one states file per finished cell):
  signals  greedy 32-token generations with their per-step pooled states, per group
           (`--groups anchors,attacks,guard`; anchors first)
  judge    the LLM harm judge (default the 1.5B model) over the stored attack cells
  report   anchors (cached with the weights' sha256 and the anchor cells' specs), the signal of every
           attack cell, IRR per attack at the study's thresholds, and trajectory figures ->
           results/real_sri_signal.json

Not built yet: SRI Guard's training and evaluation, the baselines, detection by step and the cost
comparison; their contract file `results/real_sri.json` is not written by this script.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def args() -> argparse.Namespace:
    from toydlm.realsri.plan import GROUPS

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("stage", choices=("signals", "judge", "report"))
    ap.add_argument("--model", default="qwen2.5-coder-0.5b-instruct", help="a `toydlm weights` name")
    ap.add_argument("--groups", default=",".join(GROUPS), help=f"signals: comma-separated, of {', '.join(GROUPS)}")
    ap.add_argument("--n-eval", type=int, default=100, help="HarmBench prompts per attack cell")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--work", default="runs/real_sri")
    ap.add_argument("--out", default=str(ROOT / "results"))
    ap.add_argument("--judge-model", default="qwen2.5-coder-1.5b-instruct")
    return ap.parse_args()


def pick_groups(spec: str) -> list[str]:
    from toydlm.errors import UserError
    from toydlm.realsri.plan import GROUPS

    groups = [g.strip() for g in spec.split(",") if g.strip()]
    bad = [g for g in groups if g not in GROUPS]
    if bad or not groups:
        raise UserError(f"unknown --groups {', '.join(bad) or spec!r}; choose from {', '.join(GROUPS)}")
    return groups


def load(a: argparse.Namespace):
    from toydlm.bridge.run import load_setup
    from toydlm.realar.store import CellStore
    from toydlm.realsri.plan import STEPS
    from toydlm.samplers import SamplerConfig
    from toydlm.weights import checkpoint

    sha = checkpoint(a.model).sha256
    setup, mem = load_setup(a.model, "ar", SamplerConfig("ar"), "cpu", "float32", False, None,
                            gen_length=STEPS, batch_size=a.batch_size, seed=0)
    print(f"loaded {a.model} (memory estimate {mem})", flush=True)
    return setup, CellStore(Path(a.work) / a.model), sha


def signals(a: argparse.Namespace) -> None:
    from toydlm.realsri.collect import run_signal_cells
    from toydlm.realsri.plan import cells

    plans = cells(pick_groups(a.groups), a.n_eval)  # checked before the load
    rows = sum(len(p.users) for p in plans)
    print(f"plan: {len(plans)} cells, {rows} rows of at most 32 tokens (about {rows * 0.95 / 60:.0f} min on two "
          "cores at the measured 0.95 s per harmless row, prefill included; refusals end sooner)", flush=True)
    setup, store, sha = load(a)
    run_signal_cells(setup, store, plans, sha)


def judge(a: argparse.Namespace) -> None:
    from toydlm.realsri.judge import judge_attack_cells

    n = judge_attack_cells(Path(a.work) / a.model, a.n_eval, a.judge_model)
    print(f"judged {n} attack cells", flush=True)


def report(a: argparse.Namespace) -> None:
    from toydlm.realsri.report import write_report

    write_report(a.model, Path(a.work) / a.model, Path(a.out), a.n_eval)


def main() -> None:
    from toydlm.errors import UserError

    a = args()
    try:
        {"signals": signals, "judge": judge, "report": report}[a.stage](a)
    except UserError as e:
        sys.exit(f"real_sri.py: error: {e}")


if __name__ == "__main__":
    main()
