"""Fidelity against compute: a student's refusal rate and mean length in AR order (an MDLM student's AR-order
decoding, the AR student's own left-to-right decoder), at each stored checkpoint of its run, beside the
teacher's on the same holdout prompts.

Each (checkpoint, prompt set) cell is sampled once and stored (resumable) under `--work`; the curve is
written to `--out` as JSON with a figure. The compute axis is training steps (batch 32); each point also
carries the wall minutes read from the run's log, which depend on what else the machine was running.

  python experiments/twins_fidelity_curve.py --run runs/twins/<teacher>/mdlm-...-s0
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", required=True, help="a student's run folder (its ckpt-* folders and best/)")
    ap.add_argument("--teacher", default="qwen2.5-coder-0.5b-instruct")
    ap.add_argument("--work", default=str(ROOT / "results" / "twins_cells"))
    ap.add_argument("--real-ar-work", default=str(ROOT / "results" / "real_ar_cells"))
    ap.add_argument("--curve-sets", default="raw", help="holdout prompt sets sampled at every checkpoint")
    ap.add_argument("--best-sets", default="raw,prefix_injection,benign",
                    help="holdout prompt sets sampled at the best checkpoint (the one the swap uses)")
    ap.add_argument("--samples", type=int, default=1, help="samples per holdout prompt")
    ap.add_argument("--draw", default="inverse_cdf", choices=("inverse_cdf", "race"),
                    help="an MDLM's proposal draw (same distribution; the first curves were drawn with race)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--prompt-len", type=int, default=64)
    ap.add_argument("--response-len", type=int, default=96)
    ap.add_argument("--validation-every", type=int, default=20, help="as the students were trained with")
    ap.add_argument("--out", default=str(ROOT / "results" / "twins_fidelity_curve.json"))
    return ap.parse_args()


def checkpoints(run: Path) -> list[tuple[Path, bool]]:
    """Every regular checkpoint, each with whether the swap samples it: the best one (by validation loss)
    comes last when the run kept it apart, otherwise the swap's is the last regular one."""
    from toydlm.real.twins.students import best_checkpoint

    regular = sorted(d for d in run.glob("ckpt-*") if d.is_dir())
    best = best_checkpoint(run)
    if best != run:
        return [(d, False) for d in regular] + [(best, True)]
    return [(d, d == regular[-1]) for d in regular]


def main() -> None:
    a = args()
    from toydlm.real.kit.store import CellStore
    from toydlm.real.twins.build import build_task, teacher_cells
    from toydlm.real.twins.compare import teacher_rows
    from toydlm.real.twins.stages import PROMPT_SETS, holdout_prompt_rows
    from toydlm.real.twins.students import training_minutes
    from toydlm.real.twins.swap import sample_cell, sampler_at
    from toydlm.real.twins.teacher import PROMPT_TOKENS
    from toydlm.sampling import params_hash
    from toydlm.train.checkpoint import load_denoiser, read_checkpoint

    corpus, real_ar, run = Path(a.work) / a.teacher, Path(a.real_ar_work) / a.teacher, Path(a.run)
    task, _ = build_task(corpus, real_ar, a.prompt_len, a.response_len, validation_every=a.validation_every)
    tok = json.loads((corpus / PROMPT_TOKENS).read_text())
    _, hold = teacher_cells(corpus, real_ar)
    pick = lambda names: [ps for ps in PROMPT_SETS if ps.attack in names.split(",") and ps.teacher_cell in tok]
    store, minutes, points = CellStore(corpus / "fidelity_curve"), training_minutes(run), []
    for ck, is_best in checkpoints(run):
        meta = read_checkpoint(ck)[0]
        step = int(meta["step"])
        v = sampler_at("ar" if meta["arch"] == "ar" else "ar_order", task.response_len, draw=a.draw)
        den = load_denoiser(ck, grammar=task, response_logits_only=True)  # same distribution, faster
        for ps in pick(",".join([a.curve_sets, a.best_sets]) if is_best else a.curve_sets):
            prompts = holdout_prompt_rows(tok[ps.teacher_cell], task, a.samples)
            spec = {"name": f"{run.name}_{step}_{ps.attack}", "weights": params_hash(den.params), "n": len(prompts),
                    "seed": a.seed, "sampler": v.cfg.to_dict(), "attack": ps.attack}
            rec = store.get(spec)
            if rec is None:
                cell = sample_cell(den, task, v, prompts, ps.attack, ps.harmful, a.seed, a.samples)
                rec = store.put(spec, [], {"cell": {k: x for k, x in cell.items() if k != "rows"}})
            c = rec["cell"]
            t = teacher_rows(hold[ps.teacher_cell])
            t_ref, t_len = float(t["refusal"].mean()), float(t["length"].mean())
            points.append({"step": step, "best": is_best, "minutes": minutes.get(step), "attack": ps.attack,
                           "n": c["n"],
                           "refusal_rate": c["refusal_rate"], "refusal_rate_se": c["refusal_rate_se"],
                           "teacher_refusal_rate": t_ref, "refusal_gap": c["refusal_rate"] - t_ref,
                           "mean_length": c["mean_length"], "teacher_mean_length": t_len,
                           "length_gap_share": c["mean_length"] / t_len - 1})
            print(json.dumps(points[-1]), flush=True)
    write(Path(a.out), run, points, a)


def portable_args(a: argparse.Namespace, run: Path) -> dict:
    """The arguments as a stored record: folders by name only (no machine path)."""
    return {**{k: v for k, v in vars(a).items() if k not in ("run", "work", "real_ar_work", "out")},
            "run": run.name, "out": Path(a.out).name}


def write(out: Path, run: Path, points: list[dict], a: argparse.Namespace) -> None:
    from toydlm.io import atomic_write_json, provenance
    from toydlm.real.kit.figures import pyplot, save_figure
    from toydlm.train import read_log
    from toydlm.train.checkpoint import read_checkpoint

    evals = [[r["step"], r["eval_loss"]] for r in read_log(run) if "eval_loss" in r]
    arch = read_checkpoint(checkpoints(run)[0][0])[0]["arch"]
    atomic_write_json(out, {"run": run.name, "sampler": "ar" if arch == "ar" else "ar_order",
                            "samples_per_prompt": a.samples,
                            "points": points, "validation_loss": evals, "goal": {"refusal_gap": 0.05,
                                                                                 "length_gap_share": 0.10},
                            "provenance": provenance(a.seed, config=portable_args(a, run))})
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for attack in dict.fromkeys(p["attack"] for p in points):
        pts = sorted({p["step"]: p for p in points if p["attack"] == attack}.values(), key=lambda p: p["step"])
        x = [p["step"] for p in pts]
        line = axes[0].errorbar(x, [p["refusal_gap"] for p in pts], yerr=[2 * p["refusal_rate_se"] for p in pts],
                                marker="o", capsize=3, label=attack)
        axes[1].plot(x, [p["length_gap_share"] for p in pts], marker="o", label=attack)
        for b in (p for p in points if p["attack"] == attack and p["best"]):  # the checkpoint the swap samples
            color = line[0].get_color()
            axes[0].plot(b["step"], b["refusal_gap"], "*", ms=12, color=color)
            axes[1].plot(b["step"], b["length_gap_share"], "*", ms=12, color=color)
    for ax, lim, title in ((axes[0], 0.05, "refusal gap to the teacher (AR order)"),
                           (axes[1], 0.10, "mean-length gap (share of the teacher's)")):
        ax.axhspan(-lim, lim, color="0.9")
        ax.axhline(0, color="0.5", lw=0.6)
        ax.set(xlabel=f"{arch.upper()} training steps (batch 32)", title=title)
        ax.legend(fontsize=8)
    print(f"wrote {out} and {save_figure(fig, out.parent, out.stem + '.png')}")


if __name__ == "__main__":
    main()
