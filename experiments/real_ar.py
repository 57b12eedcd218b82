"""Real AR checkpoints: refusal and ASR per attack, the length premise and length test, recovery curves.

Stages (each resumable; `--work` keeps one file per finished cell):
  gen     sample every cell of the checkpoint's tier (prints the compute estimate first)
  judge   the LLM harm judge over every stored harmful cell
  judge-prefixes  the judge on one cell's first 8/16/32/64 tokens (step-wise harm for Model v1)
  report  results/real_ar.json and figures from whatever is stored
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from toydlm.real.ar.plan import TIERS  # noqa: E402

if TYPE_CHECKING:
    from toydlm.real.ar.judging import JudgeConfig

RATE = {"qwen2.5-coder-0.5b-instruct": 40.0, "qwen2.5-coder-1.5b-instruct": 13.0, "smollm2-135m-instruct": 120.0}


def args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("stage", choices=("gen", "judge", "judge-prefixes", "report"))
    ap.add_argument("--cell", default=None, help="judge-prefixes: the stored cell whose prefixes to judge")
    ap.add_argument("--model", default="qwen2.5-coder-0.5b-instruct", help="a `toydlm weights` name")
    ap.add_argument("--tier", default="full", choices=sorted(TIERS))
    ap.add_argument("--n-harmful", type=int, default=100)
    ap.add_argument("--n-harmless", type=int, default=100)
    ap.add_argument("--samples", type=int, default=4, help="samples per prompt in the length-test cells")
    ap.add_argument("--gen-length", type=int, default=96)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--attacks", default=None, help="comma-separated attack cells (default: the tier's)")
    ap.add_argument("--work", default="runs/real_ar")
    ap.add_argument("--out", default=str(ROOT / "results"))
    ap.add_argument("--judge-model", default="qwen2.5-coder-1.5b-instruct")
    ap.add_argument("--judge-dtype", default="bfloat16", help="the judge's weights (bf16: ~3x faster on CPU)")
    ap.add_argument("--follow", type=float, default=0, help="judge: keep judging new cells until none appears "
                    "for this many seconds (run beside gen)")
    return ap.parse_args()


def gen(a: argparse.Namespace) -> None:
    from toydlm.bridge.attacks import parse_attacks
    from toydlm.real.ar import plan as P
    from toydlm.real.kit.checkpoint import open_checkpoint
    from toydlm.real.kit.prompts import ATTACK_CELLS, prompt_sets
    from toydlm.real.kit.runner import estimate, run_cells
    from toydlm.real.kit.store import CellStore
    from toydlm.weights import checkpoint

    sha = checkpoint(a.model).sha256
    default = P.STRONGEST if a.tier == "core" else ATTACK_CELLS
    attacks = tuple(parse_attacks(a.attacks)) if a.attacks else default  # checked before the load
    prompts = prompt_sets(a.n_harmful, a.n_harmless)
    setup = open_checkpoint(a.model, "ar", gen_length=a.gen_length, batch_size=a.batch_size)
    store = CellStore(Path(a.work) / a.model)
    groups = TIERS[a.tier]
    plans = []
    for g in groups:
        plans += P.base_cells(g, prompts, setup.tok, attacks, a.samples)
    est = estimate(plans, a.gen_length, RATE.get(a.model, 30.0), mean_len=55)
    print(f"plan: {est['cells']} cells, {est['rows']} rows; worst case {est['tokens_worst']} tokens "
          f"= {est['hours_worst']:.1f} h, expected {est['hours_expected']:.1f} h at {est['tokens_per_s']} tokens/s "
          "(plus the injection cells, sized from the results)", flush=True)
    done = run_cells(setup, store, plans, sha)
    if "inject" in groups:
        plans_inj = inject_plans(P, done, plans, setup.tok, Path(a.work) / a.model)
        run_cells(setup, store, plans_inj, sha)


def inject_plans(P, done: dict, plans: list, tok, root: Path) -> list:
    """Injection cells from the attack cell with the most harmful answers by the LLM judge (the keyword
    judge's 'not refused' when no cell is judged yet; it counts flip's failed decodings as compliances)."""
    import json

    from toydlm.bridge.judges import keyword_refusal
    from toydlm.real.kit.judged import judged_path
    from toydlm.real.kit.store import CellStore

    store, by_name = CellStore(root), {p.name: p for p in plans}
    cands = [n for n in by_name if n.endswith("_T0.7") and not n.startswith(("prefill", "benign", "raw"))]

    def complied(name: str) -> list[bool]:
        judged = judged_path(store.path(done[name]["spec"]))
        if judged.exists():
            return [x > 0.5 for x in json.loads(judged.read_text())["p_yes"]]
        return [not keyword_refusal(s["text"]) for s in done[name]["samples"]]

    ok = {n: complied(n) for n in cands}
    best = max(cands, key=lambda n: sum(ok[n]))
    print(f"injection source: {best} ({sum(ok[best])} harmful answers)", flush=True)
    return P.inject_cells(by_name[best], done[best]["samples"], [not x for x in ok[best]], tok)


def judge_config(a: argparse.Namespace) -> JudgeConfig:
    """The judge stages' settings from the parsed arguments."""
    from toydlm.real.ar.judging import JudgeConfig

    return JudgeConfig(work=Path(a.work), model=a.model, n_harmful=a.n_harmful, n_harmless=a.n_harmless,
                       judge_model=a.judge_model, judge_dtype=a.judge_dtype, follow=a.follow)


def main() -> None:
    a = args()
    if a.stage == "gen":
        gen(a)
    elif a.stage == "judge":
        from toydlm.real.ar.judging import judge_stage

        judge_stage(judge_config(a))
    elif a.stage == "judge-prefixes":
        from toydlm.real.ar.judging import judge_prefixes

        if not a.cell:
            sys.exit("judge-prefixes needs --cell NAME (a stored cell, e.g. prefix_injection_T0.7)")
        judge_prefixes(judge_config(a), a.cell)
    else:
        from toydlm.real.ar.report import ReportConfig, report_stage

        report_stage(ReportConfig(work=Path(a.work), out=Path(a.out), n_harmful=a.n_harmful,
                                  n_harmless=a.n_harmless, gen_length=a.gen_length, samples=a.samples))


if __name__ == "__main__":
    from toydlm.errors import UserError

    try:
        main()
    except UserError as e:
        sys.exit(f"error: {e}")
