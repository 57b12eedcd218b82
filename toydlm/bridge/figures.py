"""Figures of a bridge run: the step-wise state occupancy and the SRI trajectories per prompt set."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from toydlm.measure.recovery import STATE_NAMES  # noqa: E402
from toydlm.plots import save_png  # noqa: E402

STATE_LABELS = {"C": "C clean", "P": "P harmful-looking draft, nothing committed", "H": "H harm committed",
                "R": "R refusal after harm"}


def fig_states(states: dict[str, np.ndarray], out: Path, title: str) -> Path:
    """Share of prompts in each C/P/H/R state after every step, one panel per prompt set."""
    fig, axes = plt.subplots(1, len(states), figsize=(5.5 * len(states), 3.8), squeeze=False, sharey=True)
    for ax, (name, s) in zip(axes[0], states.items()):
        occ = np.stack([(s == k).mean(0) for k in range(len(STATE_NAMES))])  # [4, T+1]
        ax.stackplot(np.arange(s.shape[1]), occ, labels=[STATE_LABELS[k] for k in STATE_NAMES], alpha=0.85)
        ax.set_title(f"prompts: {name} (n = {s.shape[0]})", fontsize=9)
        ax.set_xlabel("step (0 = before the first)")
        ax.set_ylim(0, 1)
    axes[0][0].set_ylabel("share of prompts")
    axes[0][-1].legend(fontsize=7, loc="lower left")
    fig.suptitle(title, fontsize=10)
    return save_png(fig, out / "fig_states.png")


def fig_sri(signals: dict[str, np.ndarray], out: Path, title: str) -> Path | None:
    """Mean SRI signal per step (with the 10-90% band) per prompt set."""
    sigs = {k.removeprefix("sri_"): v for k, v in signals.items() if np.asarray(v).ndim == 2}
    if not sigs:
        return None
    fig, ax = plt.subplots(figsize=(7, 4))
    for name, v in sigs.items():
        t = np.arange(1, v.shape[1] + 1)
        ax.plot(t, np.nanmean(v, 0), label=f"{name} (n = {v.shape[0]})")
        ax.fill_between(t, np.nanquantile(v, 0.1, 0), np.nanquantile(v, 0.9, 0), alpha=0.2)
    ax.axhline(0.5, color="k", lw=0.6, ls=":")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("step t")
    ax.set_ylabel("SRI σ_t (1 = compliance-aligned,\n0 = refusal-aligned)")
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=10)
    return save_png(fig, out / "fig_sri.png")
