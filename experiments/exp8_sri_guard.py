"""Experiment 8: SRI Guard vs its baselines on the toys — the paper's task, and a harder early-outcome task.

Task A (paper Tables 4 / 13): successful jailbreaks vs held-out benign generations, per model and sampler,
with `toydlm.experiment.sri_eval.evaluate` (SRI Guard, layer ablation, baselines, overheads).
Task B (harder): among attack prompts only, successful jailbreaks vs refused attacks, using what each
detector can see *up to step t*: the SRI value sigma_t, the text-level refusal signal at t, the exact harm
judge on the committed text at t, and the guard model on the partial canvas at t. The prompt alone
cannot separate the classes (both are attack prompts), so this asks which signal knows the outcome first.
Per step we report the AUROC with a fixed sign (higher = predicted jailbreak; for SRI, higher sigma =
compliance-aligned) and the first step reaching AUROC >= 0.9.

Run: `python experiments/exp8_sri_guard.py [--grammars default,midway] [--n-attack 100]`; models come
from the cache of `toydlm run` (default preset; a missing one is trained, minutes per model).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from _common import ROOT, repo_relative  # noqa: E402

from toydlm.experiment.models import ensure_model, models_cache  # noqa: E402
from toydlm.experiment.presets import get_preset  # noqa: E402
from toydlm.experiment.sri_eval import evaluate  # noqa: E402
from toydlm.grammar import load_grammar  # noqa: E402
from toydlm.grammar.judges import harm_count  # noqa: E402
from toydlm.io import atomic_write_json, provenance  # noqa: E402
from toydlm.samplers import SamplerConfig  # noqa: E402
from toydlm.sampling import sample  # noqa: E402
from toydlm.sri import auroc, compute_centres, sri_signal  # noqa: E402
from toydlm.sri import pooled_states as pooled  # noqa: E402
from toydlm.sri.baselines import guard_model_baseline  # noqa: E402

CONFIGS = (("ar", {"name": "ar"}), ("mdlm", {"name": "random", "steps": 16}), ("mdlm", {"name": "ar_order"}))


def early_outcome(den, g, sampler: dict, gm, n_attack: int, seed: int) -> dict:
    """Task B: per-step AUROC of successful vs refused attack responses for each step-t signal."""
    cfg = SamplerConfig(**sampler, temperature=1.0)
    run = lambda attack, s: sample(den, g, cfg, attack=attack, n=n_attack, seed=s, batch_size=n_attack)  # noqa: E731
    ben, harm = run("benign", seed + 101), run("none", seed + 102)
    bc, rc = compute_centres(pooled(ben, "generated"), ~ben["final_refusal"], pooled(harm, "generated"),
                             harm["final_refusal"])
    att = [run(f"wrapper:{f}", seed + 110 + i) for i, f in enumerate(g.config.wrapper_families)]
    cat = lambda k: np.concatenate([t[k] for t in att], axis=1 if t0(k) else 0)  # noqa: E731
    sig = np.concatenate([sri_signal(pooled(t, "generated"), bc, rc) for t in att])  # [N, T]
    canvas, prompt = cat("canvas"), cat("prompt")  # [T, N, L], [N, P]
    success, refused = cat("final_harmful"), cat("final_refusal")
    keep = success | refused
    T = sig.shape[1]
    signals = {
        "sri_sigma_t": sig.T,
        "text_level_no_refusal_yet": (~cat("committed_refusal")).astype(float),
        "committed_harm_count": np.asarray(harm_count(g, canvas), float),
        "guard_model_on_partial_text": np.stack([gm(np.concatenate([prompt, canvas[t]], 1)) for t in range(T)]),
    }
    out = {"sampler": sampler, "n_success": int(success.sum()), "n_refused": int(refused.sum()),
           "n_neither": int((~keep).sum()), "per_step_auroc": {}, "first_step_auroc_ge_0.9": {}}
    for name, s in signals.items():
        a = [auroc(s[t][keep & refused], s[t][keep & success]) for t in range(T)]
        out["per_step_auroc"][name] = a
        hit = [t + 1 for t, v in enumerate(a) if v >= 0.9]
        out["first_step_auroc_ge_0.9"][name] = hit[0] if hit else None
    return out


def t0(key: str) -> bool:
    """Trace arrays stored step-first ([T, N, ...]) rather than row-first."""
    return key in ("canvas", "committed_refusal")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--grammars", default="default", help="comma-separated grammar presets (models trained if missing)")
    ap.add_argument("--n-attack", type=int, default=100, help="prompts per attack family")
    ap.add_argument("--n-benign", type=int, default=200, help="benign prompts (task A)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(ROOT / "results"))
    args = ap.parse_args()
    if args.n_attack < 10 or args.n_benign < 8:
        sys.exit("--n-attack must be >= 10 and --n-benign >= 8")
    t_start = time.perf_counter()
    p = get_preset("default")
    res: dict = {}
    for gname in args.grammars.split(","):
        g = load_grammar(gname)
        dens = {arch: ensure_model(arch, p.model_preset, p.train_steps[arch], 0, g, models_cache(), True)[0]
                for arch in {arch for arch, _ in CONFIGS}}
        gm = guard_model_baseline(g, [f for f in g.config.wrapper_families if f not in g.config.unseen_families],
                                  args.seed)
        for arch, sampler in CONFIGS:
            key = f"{gname}/{arch}/{sampler['name']}{sampler.get('steps') or ''}"
            t = time.perf_counter()
            a = evaluate(dens[arch], g, {**sampler, "temperature": 1.0}, args.seed, n_benign=args.n_benign,
                         n_attack=args.n_attack, ar_den=dens["ar"], guard_model=gm, timing_k=3)
            b = early_outcome(dens[arch], g, sampler, gm, args.n_attack, args.seed)
            res[key] = {"task_a": {k: a[k] for k in ("sri_guard", "ablation", "asr", "n_pos")}
                        | {"baselines": {n: {part: {k: v[part][k] for k in ("auroc", "auroc_ci95", "n_pos")}
                                                for part in ("seen", "unseen")} | {"fpr_benign": v["fpr_benign"]}
                                         for n, v in a["baselines"].items()}},
                        "task_b": b, "seconds": time.perf_counter() - t}
            print(key, f"{res[key]['seconds']:.0f}s", "first step AUROC>=0.9:", b["first_step_auroc_ge_0.9"])
    out = Path(args.out)
    prov = provenance(seed=args.seed, config={**vars(args), "out": repo_relative(args.out)})  # before any output
    fig = figure(res, out / "exp8_sri_guard.png")
    atomic_write_json(out / "exp8_sri_guard.json", {
        "experiment": "exp8_sri_guard", "figure": fig.name, "runtime_s": time.perf_counter() - t_start,
        **prov, "results": res})
    print(f"wrote {out / 'exp8_sri_guard.json'} in {time.perf_counter() - t_start:.0f}s")


def figure(res: dict, path: Path) -> Path:
    keys = list(res)
    fig, axes = plt.subplots(1, len(keys), figsize=(4.6 * len(keys), 3.8), squeeze=False, sharey=True)
    for ax, k in zip(axes[0], keys):
        b = res[k]["task_b"]
        for name, a in b["per_step_auroc"].items():
            ax.plot(np.arange(1, len(a) + 1), a, marker=".", label=name.replace("_", " "))
        ax.axhline(0.9, color="#969696", ls=":", lw=1)
        ax.axhline(0.5, color="#d9d9d9", lw=1)
        ax.set_title(f"{k}\n{b['n_success']} jailbreaks vs {b['n_refused']} refused attacks", fontsize=9)
        ax.set_xlabel("generation step t (information up to t)")
        ax.set_ylim(0, 1.02)
    axes[0][0].set_ylabel("AUROC, jailbreak vs refused attack\n(SRI: 1 = compliance-aligned, 0 = refusal-aligned)")
    axes[0][-1].legend(fontsize=7, loc="lower right")
    fig.suptitle("Which step-t signal knows the outcome first (task B)", fontsize=11, y=1.03)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


if __name__ == "__main__":
    main()
