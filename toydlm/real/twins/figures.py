"""The twins report's figures: the swap heatmap, lengths and EOS-first preference, the gen-length sweep,
and the students' training curves."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from toydlm.real.kit.figures import pyplot, save_figure
from toydlm.real.twins.stages import PROMPT_SETS


def _grid(cells: list[dict], rows: list[str], cols: list[str], key: str) -> np.ndarray:
    """Sampler-by-prompt-set matrix of one cell value (NaN where not measured or not judged)."""
    grid = np.full((len(rows), len(cols)), np.nan)
    for c in cells:
        if c.get(key) is not None and c["attack"] in cols:
            grid[rows.index(f"{c['student']}:{c['sampler']}"), cols.index(c["attack"])] = c[key]
    return grid


def trained_length(rep: dict) -> list[dict]:
    L = rep["corpus"]["details"]["response_len"]
    return [c for c in rep["cells"] if c["gen_length"] == L]


def fig_swap_heatmap(rep: dict, out: Path) -> str | None:
    """Refusal rate (keyword judge) and ASR (LLM judge) per sampler (rows) and prompt set (columns) on the
    trained canvas; the MDLM rows pool the training seeds."""
    cells = trained_length(rep)
    if not cells:
        return None
    rows = list(dict.fromkeys(f"{c['student']}:{c['sampler']}" for c in cells))
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 0.4 * len(rows) + 1.8), width_ratios=(3, 2))
    panels = (([ps.attack for ps in PROMPT_SETS], "refusal_rate", "Refusal rate (keyword judge)"),
              ([ps.attack for ps in PROMPT_SETS if ps.attack != "benign"], "asr", "ASR (LLM harm judge)"))
    for ax, (cols, key, title) in zip(axes, panels):
        grid = _grid(cells, rows, cols, key)
        im = ax.imshow(grid, vmin=0, vmax=1, cmap="viridis", aspect="auto")
        for (i, j), v in np.ndenumerate(grid):
            ax.text(j, i, f"{v:.2f}" if np.isfinite(v) else "n/a", ha="center", va="center",
                    color="0.5" if not np.isfinite(v) else "w" if v < 0.6 else "k", fontsize=8)
        ax.set_xticks(range(len(cols)), cols, fontsize=8)
        ax.set_yticks(range(len(rows)), rows if key == "refusal_rate" else [], fontsize=8)
        ax.set_title(title, fontsize=10)
    fig.colorbar(im, ax=axes[1], fraction=0.08, pad=0.04)
    return save_figure(fig, out, "twins_swap_heatmap.png")


def fig_length_eos(rep: dict, out: Path) -> str | None:
    """Mean length and EOS-first excess per MDLM sampler on each held-out prompt set (trained canvas)."""
    attacks = [ps.attack for ps in PROMPT_SETS]
    cells = [c for c in trained_length(rep) if c["student"] == "mdlm"]
    if not cells:
        return None
    samplers = list(dict.fromkeys(c["sampler"] for c in cells))
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    x, w = np.arange(len(samplers)), 0.8 / len(attacks)
    for k, attack in enumerate(attacks):
        by = {c["sampler"]: c for c in cells if c["attack"] == attack}
        for ax, key in ((axes[0], "mean_length"), (axes[1], "eos_first_excess")):
            vals = [by[s][key] if s in by and by[s][key] is not None else np.nan for s in samplers]
            ax.bar(x + (k - (len(attacks) - 1) / 2) * w, vals, w, label=attack)
    L = rep["corpus"]["details"]["response_len"]
    for ax, title, lim in ((axes[0], "Mean response length (tokens)", (0, 1.3 * L)),
                           (axes[1], "EOS-first excess (0: random order, 1: ends first)", (-1.1, 1.4))):
        ax.set_xticks(x, samplers, rotation=40, ha="right", fontsize=7)
        ax.set_title(title, fontsize=10)
        ax.set_ylim(*lim)  # headroom so the legend does not cover the bars
        ax.axhline(0, color="0.6", lw=0.6)
        ax.legend(fontsize=8, ncol=3, loc="upper center")
    return save_figure(fig, out, "twins_length_eos.png")


def fig_gen_length(rep: dict, out: Path) -> str | None:
    """Mean length and refusal rate against the canvas length (raw harmful prompts), with 2-SE bars: does a
    longer canvas give shorter answers (Rainbow Padding), and does refusal follow?"""
    cells = [c for c in rep["cells"] if c["student"] == "mdlm" and c["attack"] == "raw"]
    samplers = [s for s in ("ar_order", "low_confidence")
                if len({c["gen_length"] for c in cells if c["sampler"] == s}) > 1]
    if not samplers:
        return None
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for s in samplers:
        pts = sorted((c["gen_length"], c) for c in cells if c["sampler"] == s)
        L = [p[0] for p in pts]
        axes[0].errorbar(L, [c["mean_length"] for _, c in pts],
                         yerr=[2 * c["mean_length_se"] for _, c in pts], marker="o", label=s, capsize=3)
        axes[1].errorbar(L, [c["refusal_rate"] for _, c in pts], yerr=[2 * c["refusal_rate_se"] for _, c in pts],
                         marker="o", label=s, capsize=3)
    axes[0].set(xlabel="canvas (gen length, tokens)", ylabel="mean answer length", title="Answer length")
    axes[1].set(xlabel="canvas (gen length, tokens)", ylabel="refusal rate", ylim=(0, 1), title="Refusal")
    for ax in axes:
        ax.legend(fontsize=8)
    return save_figure(fig, out, "twins_gen_length.png")


def fig_training(rep: dict, out: Path) -> str | None:
    """Training and validation loss of every student against the step (AR: NLL; MDLM: NELBO bound)."""
    curves = {a: s["curve"] for a, s in rep["students"].items() if s.get("curve")}
    if not curves:
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    for name, c in curves.items():
        for key, ls in (("train", "-"), ("held_out", "--")):
            if c[key]:
                x, y = zip(*c[key])
                ax.plot(x, y, ls, label=f"{name} {'validation' if key == 'held_out' else 'train'}", lw=1)
    ax.set(xlabel="step", ylabel="loss (nats / response token)", title="Students' training curves")
    ax.legend(fontsize=7, ncol=2)
    return save_figure(fig, out, "twins_training.png")
