"""Figures of the real-SRI report: SRI trajectories per outcome, IRR bars, ROC curves on the unseen
family, and detection by step (successful vs refused attacks)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from toydlm.real.kit.figures import pyplot, save_figure
from toydlm.real.sri.plan import EVAL_ATTACKS


def all_figures(res: dict, out: Path) -> list[str]:
    """Every figure the results allow, by file name (in `out`)."""
    made = [fig_trajectories(res, out), fig_irr(res, out), fig_roc(res, out), fig_by_step(res, out)]
    return [f for f in made if f]


def fig_trajectories(res: dict, out: Path) -> str | None:
    """Mean SRI per step for each cell, and per keyword outcome for the attack cells."""
    if not res["cells"]:
        return None
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), sharey=True)
    steps = np.arange(1, res["steps"] + 1)
    colours = plt.get_cmap("tab10")
    for i, c in enumerate(res["cells"].values()):
        axes[0].plot(steps, c["mean_sigma"], color=colours(i % 10), label=c["attack"])
        for k, ls in (("refused", "--"), ("answered", "-")):
            if c["attack"] in EVAL_ATTACKS and c["mean_sigma_by"][k] is not None:
                axes[1].plot(steps, c["mean_sigma_by"][k], ls, color=colours(i % 10), alpha=0.8,
                             label=f"{c['attack']} ({k})")
    for ax, title in ((axes[0], "Mean SRI per cell"), (axes[1], "By keyword outcome (dashed: refused)")):
        ax.axhline(0.5, color="0.6", lw=0.8)
        ax.set(xlabel="step", title=title, ylim=(0, 1))
        ax.legend(fontsize=6)
    axes[0].set_ylabel("sigma (1: compliance anchor, 0: refusal anchor)")
    return save_figure(fig, out, f"real_sri_trajectories{res['suffix']}.png")


def fig_irr(res: dict, out: Path) -> str | None:
    """IRR per attack at each lambda_r, with the share of successful jailbreaks beside it."""
    cells = [res["cells"][a] for a in EVAL_ATTACKS if a in res["cells"]]
    if not cells:
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 3.6))
    x = np.arange(len(cells))
    for j, lr in enumerate(res["lambda_r"]):
        vals = [c["irr"][str(lr)] for c in cells]
        ax.bar(x + (j - 1) * 0.22, [np.nan if v is None else v for v in vals], 0.22, label=f"IRR, lambda_r={lr}")
    ax.plot(x, [c.get("asr", np.nan) for c in cells], "k^", label="judged ASR")
    ax.set_xticks(x, [c["attack"] for c in cells], rotation=15, fontsize=8)
    ax.set(ylim=(0, 1), title="Internal recovery rate per attack (greedy, 32 steps)")
    ax.legend(fontsize=7)
    return save_figure(fig, out, f"real_sri_irr{res['suffix']}.png")


def fig_roc(res: dict, out: Path) -> str | None:
    """ROC of SRI Guard and each baseline: unseen family's successes against held-out harmless prompts."""
    curves = {"SRI Guard": (res["sri_guard"] or {}).get("roc_unseen")}
    curves |= {k: b.get("roc_unseen") for k, b in res["baselines"].items()}
    curves = {k: v for k, v in curves.items() if v}
    if not curves:
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(4.8, 4.4))
    for k, c in curves.items():
        auc = res["sri_guard"]["auroc_unseen"] if k == "SRI Guard" else res["baselines"][k]["auroc_unseen"]
        ax.plot(c["fpr"], c["tpr"], label=f"{k} ({auc:.2f})")
    ax.plot([0, 1], [0, 1], color="0.7", lw=0.8)
    ax.set(xlabel="false positive rate (harmless)", ylabel="true positive rate (jailbreaks)",
           title=f"Unseen family: {res['unseen_family']}")
    ax.legend(fontsize=7)
    return save_figure(fig, out, f"real_sri_roc{res['suffix']}.png")


def fig_by_step(res: dict, out: Path) -> str | None:
    """AUROC of successful vs refused attacks from what each detector has seen by step t."""
    d = res.get("detection_by_step_detail")
    if not d:
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 3.8))
    for k, v in d["per_detector"].items():
        steps = [int(t) for t in v["auroc"]]
        ax.plot(steps, list(v["auroc"].values()), "o-" if len(steps) < 8 else "-", ms=3, label=k)
    ax.axhline(0.9, color="0.6", lw=0.8, ls="--")
    ax.axhline(0.5, color="0.8", lw=0.8)
    ax.set(xlabel="step t (information up to t)", ylabel="AUROC", ylim=(0, 1.02),
           title=f"Successful ({d['n_success']}) vs refused ({d['n_refused']}) attacks")
    ax.legend(fontsize=7)
    return save_figure(fig, out, f"real_sri_by_step{res['suffix']}.png")
