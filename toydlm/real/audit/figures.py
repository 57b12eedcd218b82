"""The audit's figures: rates by cell, the length test, lengths by verdict, the gen-length sweep and
the recovery curves (PNG files beside audit.json; report.html inlines them)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from toydlm.plots import save_png
from toydlm.real.kit.figures import pyplot


def _err(v: float | None, ci: list[float] | None) -> list[float]:
    if v is None or ci is None:
        return [0.0, 0.0]
    return [max(v - ci[0], 0.0), max(ci[1] - v, 0.0)]


def fig_rates(cells: list[dict], path: Path) -> Path | None:
    """Refusal rate and ASR of every cell, with 95% prompt-bootstrap intervals."""
    if not cells:
        return None
    plt = pyplot()
    labels = [f"{c['sampler']} · {c['attack']} · T{c['temperature']:g} · L{c['gen_length']}" for c in cells]
    y = np.arange(len(cells))
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(cells) + 1.4))
    for off, key, color in ((-0.18, "refusal_rate", "tab:blue"), (0.18, "asr", "tab:red")):
        vals = [c[key] if c[key] is not None else np.nan for c in cells]
        err = np.array([_err(c[key], c[f"{key}_ci95"]) for c in cells]).T
        ax.barh(y + off, vals, 0.36, xerr=err, color=color, alpha=0.8, label=key.replace("_", " "))
    ax.set_yticks(y, labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("rate (95% bootstrap over prompts)")
    ax.legend(fontsize=8, loc="lower right")
    return save_png(fig, path)


MIN_N = 5  # a length-test point from fewer samples is left out of the figure (the table keeps it)


def fig_length_test(rows: list[dict], path: Path) -> Path | None:
    """P(refusal | length <= k) against k per cell, with P(refusal) dashed; points from fewer than MIN_N
    samples are left out."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["sampler"], r["attack"], r["temperature"], r["gen_length"]), []).append(r)
    if not groups:
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    for i, (key, rs) in enumerate(list(groups.items())[:12]):
        color = f"C{i % 10}"
        pts = [r for r in rs if r["p_refusal_given_len_le_k"] is not None and r["n"] >= MIN_N]
        if pts:
            k = [r["k"] for r in pts]
            ax.plot(k, [r["p_refusal_given_len_le_k"] for r in pts], "o-", color=color, ms=3,
                    label=f"{key[0]} · {key[1]} · T{key[2]:g} · L{key[3]}")
            lo = [r["p_refusal_given_len_le_k_ci95"][0] if r["p_refusal_given_len_le_k_ci95"] else np.nan for r in pts]
            hi = [r["p_refusal_given_len_le_k_ci95"][1] if r["p_refusal_given_len_le_k_ci95"] else np.nan for r in pts]
            ax.fill_between(k, lo, hi, color=color, alpha=0.15)
        ax.axhline(rs[0]["p_refusal"], color=color, ls="--", lw=0.8)
    ax.set_xlabel(f"k (response ended within k tokens; points from fewer than {MIN_N} samples left out)")
    ax.set_ylabel("P(refusal | length ≤ k)")
    ax.set_ylim(-0.02, 1.02)
    ax.legend(fontsize=6)
    return save_png(fig, path)


def fig_lengths(dists: list[dict], path: Path) -> Path | None:
    """Length histograms of refusals and compliances, one panel per cell (at most 12)."""
    dists = dists[:12]
    if not dists:
        return None
    plt = pyplot()
    cols = min(4, len(dists))
    rows = -(-len(dists) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, 2.2 * rows), squeeze=False)
    for ax, d in zip(axes.flat, dists):
        L = np.asarray(d["row_length"])
        ref = np.asarray(d["row_refusal"], bool)
        bins = np.linspace(0, d["gen_length"], 17)
        ax.hist([L[ref], L[~ref]], bins=bins, stacked=True, color=["tab:blue", "tab:red"],
                label=["refusal", "compliance"])
        ax.set_title(f"{d['sampler']} · {d['attack']} · L{d['gen_length']}", fontsize=7)
        ax.tick_params(labelsize=6)
    for ax in list(axes.flat)[len(dists):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=6)
    fig.supxlabel("response length (tokens; the cap means truncated)", fontsize=8)
    return save_png(fig, path)


def fig_sweep(cells: list[dict], path: Path) -> Path | None:
    """Mean length and refusal rate against the maximum length, per sampler and attack (the gen-length sweep)."""
    lines: dict[tuple, list[dict]] = {}
    for c in cells:
        lines.setdefault((c["sampler"], c["attack"], c["temperature"]), []).append(c)
    lines = {k: sorted(v, key=lambda c: c["gen_length"]) for k, v in lines.items() if len(v) > 1}
    if not lines:
        return None
    plt = pyplot()
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.6))
    for i, (key, cs) in enumerate(lines.items()):
        L = [c["gen_length"] for c in cs]
        a.plot(L, [c["mean_length"] for c in cs], "o-", color=f"C{i % 10}", label=f"{key[0]} · {key[1]}")
        b.plot(L, [c["refusal_rate"] for c in cs], "o-", color=f"C{i % 10}")
    a.set_xlabel("gen length (canvas)")
    a.set_ylabel("mean answer length")
    b.set_xlabel("gen length (canvas)")
    b.set_ylabel("refusal rate")
    b.set_ylim(-0.02, 1.02)
    a.legend(fontsize=6)
    return save_png(fig, path)


def fig_recovery(recovery: dict, path: Path) -> Path | None:
    """Refusal rate along the prefill curve (compliance opener tokens) and the injection curve."""
    if not recovery:
        return None
    plt = pyplot()
    fig, axes = plt.subplots(1, len(recovery), figsize=(4.2 * len(recovery), 3.4), squeeze=False)
    names = {"prefill": "compliance opener tokens prefilled", "injection": "own tokens before the refusal opener"}
    for ax, (kind, pts) in zip(axes.flat, recovery.items()):
        pts = sorted(pts, key=lambda p: p["x"])
        x = [p["x"] for p in pts]
        for key, color in (("refusal_rate", "tab:blue"), ("asr", "tab:red")):
            v = [p[key] if p[key] is not None else np.nan for p in pts]
            err = np.array([_err(p[key], p[f"{key}_ci95"]) for p in pts]).T
            ax.errorbar(x, v, yerr=err, fmt="o-", color=color, capsize=2, label=key.replace("_", " "))
        ax.set_xlabel(names.get(kind, kind))
        ax.set_ylim(-0.02, 1.02)
        ax.set_title(kind)
        ax.legend(fontsize=7)
    return save_png(fig, path)
