"""SRI on a real AR checkpoint: the study's signal, its anchors, the IRR, SRI Guard and its baselines.

Stages (resumable; `--work` keeps one JSON and one states file per finished cell):
  signals  greedy 32-token generations with their per-step pooled states, per group
           (`--groups anchors,attacks,guard`; anchors first)
  judge      the LLM harm judge (default the 1.5B model) over the stored attack cells
  detectors  the cost run (generation and every detector on one batch, side by side), then the
             perplexity filter, Self-Examine and the guard model on every stored cell
  report     anchors (cached with the weights' sha256 and the anchor cells' specs), signals, IRR, SRI
             Guard, baselines, detection by step and costs -> results/real_sri.json (the contract),
             results/real_sri_signal.json (details) and figures
  guard      after signals and judge only: recompute SRI Guard's section of both stored reports (which
             it must reproduce) and add bootstrap intervals per attack family and over all successes,
             the share flagged, and two checks (answered harmless rows only; the study's literal end
             padding); the detector stages are not needed
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def args() -> argparse.Namespace:
    from toydlm.real.sri.plan import GROUPS

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("stage", choices=("signals", "judge", "detectors", "report", "guard"))
    ap.add_argument("--model", default="qwen2.5-coder-0.5b-instruct", help="a `toydlm weights` name")
    ap.add_argument("--groups", default=",".join(GROUPS), help=f"signals: comma-separated, of {', '.join(GROUPS)}")
    ap.add_argument("--n-eval", type=int, default=None,
                    help="evaluation prompts per attack (default all 279: HarmBench, then AdvBench 400-519)")
    ap.add_argument("--attacks", default=None, help="signals: a comma-separated subset of the attacks (default all)")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--work", default="runs/real_sri")
    ap.add_argument("--out", default=str(ROOT / "results"))
    ap.add_argument("--judge-model", default="qwen2.5-coder-1.5b-instruct",
                    help="the harm judge, and the guard-model baseline (under its own prompt)")
    ap.add_argument("--cost-batch", type=int, default=32, help="rows in the side-by-side cost run (float32)")
    ap.add_argument("--accept-changes", action="store_true",
                    help="guard: replace stored SRI Guard numbers that the cells do not reproduce (listed)")
    ap.add_argument("--score-dtype", default="bfloat16", choices=("bfloat16", "float32"),
                    help="dtype of the detectors' scoring passes (the cost run is always float32)")
    return ap.parse_args()


def pick_groups(spec: str) -> list[str]:
    from toydlm.errors import UserError
    from toydlm.real.sri.plan import GROUPS

    groups = [g.strip() for g in spec.split(",") if g.strip()]
    bad = [g for g in groups if g not in GROUPS]
    if bad or not groups:
        raise UserError(f"unknown --groups {', '.join(bad) or spec!r}; choose from {', '.join(GROUPS)}")
    return groups


def pick_attacks(spec: str | None) -> tuple[str, ...]:
    from toydlm.errors import UserError
    from toydlm.real.sri.plan import EVAL_ATTACKS

    if spec is None:
        return EVAL_ATTACKS
    got = tuple(x.strip() for x in spec.split(";" if ";" in spec else ",") if x.strip())
    bad = [x for x in got if x not in EVAL_ATTACKS]
    if bad or not got:
        raise UserError(f"unknown --attacks {', '.join(bad) or spec!r}; choose from {'; '.join(EVAL_ATTACKS)} "
                        "(separate with ';' when a name holds a comma)")
    return got


def load(a: argparse.Namespace):
    from toydlm.real.kit.checkpoint import open_checkpoint
    from toydlm.real.kit.store import CellStore
    from toydlm.real.sri.plan import STEPS
    from toydlm.weights import checkpoint

    sha = checkpoint(a.model).sha256
    setup = open_checkpoint(a.model, "ar", gen_length=STEPS, batch_size=a.batch_size)
    return setup, CellStore(Path(a.work) / a.model), sha


def signals(a: argparse.Namespace) -> None:
    from toydlm.real.sri.collect import run_signal_cells
    from toydlm.real.sri.plan import cells

    plans = cells(pick_groups(a.groups), a.n_eval, pick_attacks(a.attacks))  # checked before the load
    rows = sum(len(p.users) for p in plans)
    print(f"plan: {len(plans)} cells, {rows} rows of at most 32 tokens (about {rows * 0.95 / 60:.0f} min on two "
          "cores at the measured 0.95 s per harmless row, prefill included; refusals end sooner)", flush=True)
    setup, store, sha = load(a)
    run_signal_cells(setup, store, plans, sha)


def judge(a: argparse.Namespace) -> None:
    from toydlm.real.sri.judge import judge_attack_cells

    n = judge_attack_cells(Path(a.work) / a.model, a.judge_model)
    print(f"judged {n} attack cells", flush=True)


def detectors(a: argparse.Namespace) -> None:
    from toydlm.errors import UserError
    from toydlm.io import atomic_write_json
    from toydlm.real.sri.detectors import prompted_detectors, score_all, score_order
    from toydlm.real.sri.guard_eval import UNSEEN
    from toydlm.real.sri.load import load_run
    from toydlm.real.sri.plan import EVAL_ATTACKS
    from toydlm.real.sri.report import COST_FILE

    work = Path(a.work) / a.model
    run = load_run(a.model, work)
    missing = [g for g in ("guard_train", "guard_threshold", "benign_eval") if g not in run.states]
    if missing or UNSEEN not in run.harmful:
        raise UserError(f"the detectors need every group sampled and the attack cells judged (missing: "
                        f"{', '.join(missing + ([] if UNSEEN in run.harmful else [f'judged {UNSEEN}']))}): "
                        "run `signals` and `judge` first")
    if not (work / COST_FILE).exists():  # float32 throughout, generator and detectors alike
        setup, _, _ = load(a)
        cost = cost_run(a, setup, run, prompted_detectors(a.model, a.judge_model, "float32"))
        atomic_write_json(work / COST_FILE, cost)
        print(f"cost run: generation {cost['generation_s']:.1f} s, SRI Guard "
              f"{cost['detectors']['sri_guard']['overhead_pct']:.4f}% of it", flush=True)
        del setup
    judges = prompted_detectors(a.model, a.judge_model, a.score_dtype)
    order = score_order(run.paths, UNSEEN, [g for g in EVAL_ATTACKS if g in run.paths])
    print(f"scoring {len(order)} (cell, step) entries with perplexity, Self-Examine and the guard model "
          f"({a.score_dtype}); resumable", flush=True)
    n = score_all(order, judges, judges["self_examine"].tokenizer)
    print(f"wrote {n} detector score files", flush=True)


def cost_run(a: argparse.Namespace, setup, run, judges) -> dict:
    """Generation of one batch of the unseen family's prompts and every detector on it, in this process."""
    from toydlm.io import provenance
    from toydlm.real.sri.baselines import fit_first_step_probe
    from toydlm.real.sri.cost import measure
    from toydlm.real.sri.detectors import prompt_nll
    from toydlm.real.sri.guard_eval import UNSEEN
    from toydlm.real.sri.plan import attack_cells
    from toydlm.sri.guard import fit_guard
    from toydlm.sri.signal import sri_signal

    g = fit_guard(run.signal("guard_train"), run.signal("guard_threshold"))
    first = {k: run.states[k][:, 0] for k in [*run.harmful, "guard_train"]}
    probe, _ = fit_first_step_probe(first, run.harmful, UNSEEN)
    plan = next(p for p in attack_cells() if p.name == f"sri_{UNSEEN}")
    plan.users, plan.prefills = plan.users[:a.cost_batch], plan.prefills[:a.cost_batch]
    plan.prompt_ids = plan.prompt_ids[:a.cost_batch]
    dims = [len(w) for w, _ in g.params] + [len(g.params[-1][1])]
    res = measure(setup, plan, judges, lambda st: g.score(sri_signal(st, run.compliance, run.refusal)), probe,
                  lambda users: prompt_nll(setup.hf, setup.tok, users), dims)
    return res | {"cell": plan.name, "guard_dtype": "float32", "generator_dtype": "float32",
                  "provenance": provenance(seed=0)}


def report(a: argparse.Namespace) -> None:
    from toydlm.real.sri.report import write_report

    write_report(a.model, Path(a.work) / a.model, Path(a.out))


def guard(a: argparse.Namespace) -> None:
    from toydlm.real.sri.refresh import refresh

    refresh(a.model, Path(a.work) / a.model, Path(a.out), a.accept_changes)


def main() -> None:
    from toydlm.errors import UserError

    a = args()
    try:
        {"signals": signals, "judge": judge, "detectors": detectors, "report": report, "guard": guard}[a.stage](a)
    except UserError as e:
        sys.exit(f"real_sri.py: error: {e}")


if __name__ == "__main__":
    main()
