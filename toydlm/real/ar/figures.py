"""Figures of the real-AR experiment: the length premise, the length test, recovery curves, refusal by step."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from toydlm.real.kit.figures import pyplot, save_figure


def fig_length_test(res: dict, out: Path) -> str | None:
    """P(refusal | length ≤ k) and ASR(length ≤ k) against k, per checkpoint and temperature, with 95% CIs."""
    rows = res["length_test"]
    if not rows:
        return None
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for (ck, temp, attack) in sorted({(r["checkpoint"], r["temperature"], r["attack"]) for r in rows}):
        rr = [r for r in rows if (r["checkpoint"], r["temperature"], r["attack"]) == (ck, temp, attack) and r["n"] > 0]
        for ax, key, base in ((axes[0], "p_refusal_given_len_le_k", "p_refusal"),
                              (axes[1], "asr_given_len_le_k", "asr")):
            pts = [r for r in rr if r[key] is not None]
            if not pts:
                continue
            k = [r["k"] for r in pts]
            label = f"{ck.split('-instruct')[0]} {attack} T={temp:g}"
            line, = ax.plot(k, [r[key] for r in pts], marker="o", label=label)
            ci = [r[f"{key}_ci95"] for r in pts]
            ax.fill_between(k, [c[0] for c in ci], [c[1] for c in ci], color=line.get_color(), alpha=0.15)
            ax.axhline(pts[0][base], color=line.get_color(), ls=":", lw=1)
    axes[0].set(xlabel="k (tokens)", ylabel="P(refusal | length ≤ k)",
                title="Refusal given an early end (dotted: overall)")
    axes[1].set(xlabel="k (tokens)", ylabel="ASR(length ≤ k)", title="Harm given an early end (LLM judge)")
    axes[0].legend(fontsize=7)
    return save_figure(fig, out, "real_ar_length_test.png")


def fig_premise(res: dict, out: Path) -> str | None:
    """Median and quartiles of refusal vs compliance lengths per checkpoint and cell."""
    items = [(ck, cell, d) for ck, cells in res["length_premise"].items() for cell, d in cells.items()]
    if not items:
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(10, 0.35 * len(items) + 1.2))
    for i, (_, _, d) in enumerate(items):
        for dy, kind, col in ((-0.15, "refusal", "tab:blue"), (0.15, "compliance", "tab:red")):
            q = d[kind]["quantiles_10_25_50_75_90"]
            if q:
                ax.plot([q[0], q[4]], [i + dy] * 2, color=col, lw=1)
                ax.plot([q[1], q[3]], [i + dy] * 2, color=col, lw=5, alpha=0.6)
                ax.plot(q[2], i + dy, "k|", ms=8)
    ax.set_yticks(range(len(items)), [f"{ck.split('-instruct')[0]}: {c}" for ck, c, _ in items], fontsize=7)
    ax.axvline(res["config"]["gen_length"], color="grey", ls="--", lw=0.8)
    ax.set(xlabel="response length in tokens (at the dashed cap: still going, truncated)",
           title="Refusals (blue) vs compliances (red): 10/25/50/75/90% quantiles")
    return save_figure(fig, out, "real_ar_length_premise.png")


def fig_recovery(res: dict, out: Path) -> str | None:
    """ASR and refusal against prefill length and against the step of an injected refusal opener."""
    rec = {ck: r for ck, r in res["recovery"].items() if len(r["prefill"]) > 1 or r["inject"]}  # a curve, not a point
    if not rec:
        return None
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for ck, r in rec.items():
        for ax, key, pts in ((axes[0], "prefill_tokens", r["prefill"]), (axes[1], "inject_step", r["inject"])):
            if not pts:
                continue
            x = [p[key] for p in pts]
            for m, ls in (("asr", "-"), ("refusal_rate", "--")):
                y = [np.nan if p[m] is None else p[m] for p in pts]
                ax.plot(x, y, ls, marker="o", label=f"{ck.split('-instruct')[0]} {m}")
    axes[0].set(xlabel="tokens of a compliance opener prefilled", ylabel="rate", title="Prefill")
    axes[1].set(xlabel="step t of an injected refusal opener", ylabel="rate",
                title="Refusal injected into own compliance")
    axes[0].legend(fontsize=7)
    return save_figure(fig, out, "real_ar_recovery.png")


def fig_stepwise(res: dict, out: Path) -> str | None:
    """P(refusal committed by step t) per attack (the AR side of the study's Figure 3)."""
    sw = res["stepwise"]
    if not sw:
        return None
    plt = pyplot()
    fig, axes = plt.subplots(1, len(sw), figsize=(5 * len(sw), 3.6), squeeze=False)
    for ax, (ck, per) in zip(axes[0], sw.items()):
        for attack, row in per.items():
            ax.plot(np.arange(1, len(row["refusal_by_step"]) + 1), row["refusal_by_step"], label=attack)
        ax.set(xlabel="step t (tokens committed)", ylabel="P(refusal committed by t)", title=ck)
        ax.legend(fontsize=6)
    return save_figure(fig, out, "real_ar_stepwise.png")


def write_figures(res: dict, out: Path) -> list[str]:
    """Every figure the results allow, by file name."""
    return [f for f in (fig_length_test(res, out), fig_premise(res, out), fig_recovery(res, out),
                        fig_stepwise(res, out)) if f]
