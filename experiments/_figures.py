"""Figures of the summary-based experiments (1, 2, 7), drawn from their JSON rows alone."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from toydlm.plots import save_png  # noqa: E402


def hrr_bars(rows: list[dict], path: Path) -> Path:
    """HRR per sampler on the wrapper attacks, learned vs oracle, pooled over families by n_ever_pending."""
    samplers = sorted({r["sampler"] for r in rows if r["model"] != "ar"}, key=lambda s: (s != "ar_order", s))
    fig, ax = plt.subplots(figsize=(11, 4))
    width = 0.38
    for j, model in enumerate(("mdlm", "oracle")):
        vals, errs = [], []
        for s in samplers:
            rs = [r for r in rows if r["model"] == model and r["sampler"] == s and r["attack"].startswith("wrapper:")
                  and r["n_ever_pending"]]
            n = sum(r["n_ever_pending"] for r in rs)
            h = sum(r["hrr"] * r["n_ever_pending"] for r in rs) / n if n else np.nan
            vals.append(h)
            errs.append(2 * np.sqrt(h * (1 - h) / n) if n else 0)
        ax.bar(np.arange(len(samplers)) + (j - 0.5) * width, vals, width, yerr=errs, capsize=2,
               label={"mdlm": "learned MDLM", "oracle": "exact oracle"}[model])
    ax.set_xticks(np.arange(len(samplers)), samplers, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("HRR (share of harmful-looking drafts\nthat end not harmful) ± 2 SE")
    ax.set_ylim(0, 1)
    ax.set_title("Recovery by revision on the wrapper attacks (pooled over families), temperature 1")
    ax.legend()
    return save_png(fig, path)


def swap_forest(rows: list[dict], path: Path, attack: str = "wrapper:prefix") -> Path:
    """Δ ASR vs ar_order with 95% CIs, per sampler, same weights, default vs length-matched grammar."""
    sel = [r for r in rows if r["attack"] == attack]
    keys = sorted({(r["weights"], r["grammar"]) for r in sel})
    samplers = sorted({r["sampler"] for r in sel})
    fig, ax = plt.subplots(figsize=(9, 0.32 * len(samplers) * len(keys) + 1.5))
    y = 0
    ticks, labels = [], []
    for k, (w, g) in enumerate(keys):
        for s in samplers:
            r = next((r for r in sel if (r["weights"], r["grammar"], r["sampler"]) == (w, g, s)), None)
            if r is None:
                continue
            lo, hi = r["delta_asr_ci95"]
            ax.errorbar(r["delta_asr"], y, xerr=[[r["delta_asr"] - lo], [hi - r["delta_asr"]]], fmt="o", ms=4,
                        color=f"C{k}", capsize=2)
            ticks.append(y)
            labels.append(f"{w} / {g} / {s}")
            y += 1
        y += 0.6
    ax.axvline(0, color="k", lw=0.8)
    ax.set_yticks(ticks, labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel(f"Δ ASR = sampler − ar_order on the same weights ({attack}); negative = safer; 95% CI")
    ax.set_title("The fixed-weights sampler swap (Table 2 analogue)")
    return save_png(fig, path)


def length_panels(rows: list[dict], path: Path, attack: str = "wrapper:prefix") -> Path:
    """ASR, mean response length and EOS-first share per sampler, default vs length-matched grammar."""
    sel = [r for r in rows if r["attack"] == attack and r["model"] == "oracle"]
    samplers = sorted({r["sampler"] for r in sel}, key=lambda s: (s != "ar_order", s))
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for ax, (k, lab) in zip(axes, (("asr", "ASR ± 2 SE"), ("mean_length", "mean response length (tokens)"),
                                   ("eos_first_share", "EOS share of the first commits"))):
        for j, g in enumerate(("default", "length_matched")):
            vals, errs = [], []
            for s in samplers:
                r = next((r for r in sel if r["grammar"] == g and r["sampler"] == s), None)
                vals.append(np.nan if r is None or r[k] is None else r[k])
                errs.append(2 * r["asr_se"] if (r is not None and k == "asr") else 0)
            ax.bar(np.arange(len(samplers)) + (j - 0.5) * 0.38, vals, 0.38, yerr=errs, capsize=2,
                   label=g.replace("_", "-") + " grammar")
        ax.set_xticks(np.arange(len(samplers)), samplers, rotation=35, ha="right", fontsize=7)
        ax.set_ylabel(lab)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"The length hypothesis on the exact oracle ({attack}, temperature 1): "
                 "does low-confidence decoding's safety survive length-matched refusals?", fontsize=10)
    return save_png(fig, path)
