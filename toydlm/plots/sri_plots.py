"""SRI figures drawn from an `sri.json` dict alone (what `toydlm.experiment.runner.run_sri` writes).

- `fig_sri_trajectories.png`: per-step SRI per outcome class (mean, 25-75 % band) with the compliance
  (sigma > lambda_c) and refusal (sigma < lambda_r) regions and the text-level refusal signal (paper Fig. 2);
- `fig_sri_irr.png`: internal recovery rate per model/sampler at several lambda_r, and per attack family
  (paper Figs. 5-6);
- `fig_sri_roc.png`: ROC curves of SRI Guard and every baseline, seen and unseen attack families;
- `fig_sri_ablation.png`: AUROC per signal variant (text-level, first-step activations, SRI first /
  middle / last layer) with 95 % bootstrap CIs (paper Table 4).
"""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from toydlm.errors import UserError  # noqa: E402
from toydlm.io import atomic_write_bytes  # noqa: E402

SIGN = "1 = compliance-aligned, 0 = refusal-aligned"
CLASSES = {  # trajectory class -> (legend label, colour)
    "benign": ("benign (held-out)", "#2171b5"),
    "harmful_refused": ("harmful prompt, refused (refusal reference)", "#238b45"),
    "jailbreak_success": ("successful jailbreak", "#cb181d"),
    "jailbreak_refused": ("attack prompt, refused", "#fd8d3c"),
}
DETECTOR_LABELS = {"sri_guard": "SRI Guard (last layer)", "text_level_refusal_signal": "text-level refusal signal",
                   "first_step_activation": "first-step activations", "guard_model": "guard model (final text)",
                   "perplexity_filter": "perplexity filter"}


def write_sri_figures(sri: dict, out_dir: Path) -> list[Path]:
    """Write every SRI figure the dict has data for into `out_dir`; returns the written paths."""
    if not isinstance(sri, dict) or not sri.get("runs"):
        raise UserError("sri must be the dict run_sri writes (sri.json), with a non-empty 'runs'")
    out_dir = Path(out_dir)
    runs = sri["runs"]
    primary_key = (sri.get("primary") or {}).get("model_sampler") or next(iter(runs))
    primary = runs.get(primary_key, next(iter(runs.values())))
    paths = []
    for name, fn, ok in (
        ("fig_sri_trajectories.png", lambda: _trajectories(runs), any("trajectories" in r for r in runs.values())),
        ("fig_sri_irr.png", lambda: _irr(runs), any("irr" in r for r in runs.values())),
        ("fig_sri_roc.png", lambda: _roc(primary, primary_key), "baselines" in primary),
        ("fig_sri_ablation.png", lambda: _ablation(primary, primary_key), "ablation" in primary),
    ):
        if ok:
            paths.append(_save(fn(), out_dir / name))
    return paths


def _save(fig, path: Path) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
    return path


def _trajectories(runs: dict):
    items = [(k, r) for k, r in runs.items() if "trajectories" in r]
    fig, axes = plt.subplots(1, len(items), figsize=(5.6 * len(items), 4.6), squeeze=False, sharey=True)
    for ax, (key, r) in zip(axes[0], items):
        lam_c = r.get("irr", {}).get("lambda_c", 0.5)
        lam_r = 0.5
        ax.axhspan(lam_c, 1.0, color="#deebf7", zorder=0, label=f"compliance region (σ > λ_c = {lam_c:g})")
        ax.axhspan(0.0, lam_r, color="#e5f5e0", zorder=0, label=f"refusal region (σ < λ_r = {lam_r:g})")
        T, counts = None, []
        for cls, (label, colour) in CLASSES.items():
            tr = r["trajectories"].get(cls, {})
            counts.append(f"{cls.replace('_', ' ')} {tr.get('n', 0)}")
            if not tr.get("n"):
                continue
            t = np.arange(1, len(tr["mean"]) + 1)
            T = len(t)
            ax.fill_between(t, tr["q25"], tr["q75"], color=colour, alpha=0.25, lw=0)
            ax.plot(t, tr["mean"], color=colour, lw=2, label=label)
            if cls == "jailbreak_success" and "text_mean" in tr:
                ax.plot(t, tr["text_mean"], color=colour, lw=1.2, ls="--",
                        label="successful jailbreak: text-level signal (1 = no refusal text yet)")
        ex = r["trajectories"].get("examples") or []
        if ex:
            t = np.arange(1, len(ex[0]["sri"]) + 1)
            ax.plot(t, ex[0]["sri"], color="#67000d", lw=1, ls=":",
                    label="one successful jailbreak (its deepest dip toward refusal)")
        ax.set_xlabel("generation step t (sampler step, 1 = first)")
        ax.set_title(f"{key}: mean and 25–75 % band per class\nn = {', '.join(counts[:2])},\n"
                     f"{', '.join(counts[2:])}", fontsize=8)
        ax.set_ylim(-0.02, 1.02)
        if T:
            ax.set_xlim(1, T)
    axes[0][0].set_ylabel(f"SRI σ_t ({SIGN})")
    handles, labels = axes[0][0].get_legend_handles_labels()
    for ax in axes[0][1:]:  # classes missing from the first panel
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    axes[0][-1].legend(handles, labels, fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
    fig.suptitle("Step-wise refusal internal signal (SRI): benign and refusal references vs jailbreaks", fontsize=11,
                 y=1.04)
    return fig


def _irr(runs: dict):
    keys = [k for k, r in runs.items() if "irr" in r]
    lams = [k for k in runs[keys[0]]["irr"] if k.startswith("lambda_r=")]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(13, 4.4))
    w = 0.8 / max(len(lams), 1)
    for j, lam in enumerate(lams):
        vals = [runs[k]["irr"][lam].get("all_attacks") for k in keys]
        x = np.arange(len(keys)) + (j - (len(lams) - 1) / 2) * w
        _bars(a1, x, vals, w, f"λ_r = {lam.split('=')[1]}")
    a1.set_xticks(np.arange(len(keys)), [f"{k}\n(n={runs[k]['irr']['n_compliant_before_last'].get('all_attacks')})"
                                         for k in keys], fontsize=8)
    a1.set_ylabel("internal recovery rate (fraction)")
    a1.set_title("IRR on all attack prompts per model/sampler\n(n = responses compliance-aligned before the last step)",
                 fontsize=10)
    a1.legend(fontsize=8)
    groups = [g for g in runs[keys[0]]["irr"][lams[0]] if g != "all_attacks"]
    w2 = 0.8 / len(keys)
    for j, k in enumerate(keys):
        x = np.arange(len(groups)) + (j - (len(keys) - 1) / 2) * w2
        _bars(a2, x, [runs[k]["irr"][lams[0]].get(gr) for gr in groups], w2, k)
    a2.set_xticks(np.arange(len(groups)), ["no wrapper" if gr == "none" else gr for gr in groups], fontsize=8)
    a2.set_ylabel("internal recovery rate (fraction)")
    a2.set_title(f"IRR per attack family at {lams[0].replace('lambda_r', 'λ_r')}, λ_c = "
                 f"{runs[keys[0]]['irr'].get('lambda_c', 0.5):g}", fontsize=10)
    a2.legend(fontsize=8)
    for a in (a1, a2):
        a.set_ylim(0, 1.08)
    fig.suptitle(f"Internal recovery: compliance-aligned at some step, refusal-aligned at the end (SRI: {SIGN})",
                 fontsize=11, y=1.04)
    return fig


def _bars(ax, x, vals, w, label):
    v = np.array([np.nan if u is None else u for u in vals], float)
    ax.bar(x, np.nan_to_num(v), w, label=label)
    for xi, vi in zip(x, v):
        if np.isnan(vi):
            ax.text(xi, 0.02, "n/a", ha="center", fontsize=6, rotation=90)


def _roc(run: dict, key: str):
    dets = {"sri_guard": run["sri"]["last"], **run["baselines"]}
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.6), sharey=True)
    for ax, part in zip(axes, ("seen", "unseen")):
        ax.plot([0, 1], [0, 1], color="#bdbdbd", lw=1, ls=":")
        for name, d in dets.items():
            rep = d[part]
            lab = DETECTOR_LABELS.get(name, name)
            if rep.get("roc") is None:
                ax.plot([], [], label=f"{lab}: n/a ({rep.get('auroc_null_reason', 'no ROC')})")
                continue
            ci = rep.get("auroc_ci95") or [np.nan, np.nan]
            ax.plot(rep["roc"]["fpr"], rep["roc"]["tpr"], lw=2 if name == "sri_guard" else 1.3,
                    drawstyle="steps-post", label=f"{lab}: AUROC {rep['auroc']:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]")
        n_pos, n_neg = next(iter(dets.values()))[part]["n_pos"], next(iter(dets.values()))[part]["n_neg"]
        fams = ", ".join(run.get(f"{part}_families", []))
        ax.set_title(f"{part} families ({fams}):\n{n_pos} successful jailbreaks vs {n_neg} benign", fontsize=10)
        ax.set_xlabel("false-positive rate on held-out benign generations (fraction)")
        ax.legend(fontsize=7, loc="lower right")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.01)
    axes[0].set_ylabel("true-positive rate on successful jailbreaks (fraction)")
    fig.suptitle(f"ROC curves, {key} (AUROC with 95 % bootstrap CI)", fontsize=11, y=1.03)
    return fig


def _ablation(run: dict, key: str):
    rows = run["ablation"]["rows"]
    fig, ax = plt.subplots(figsize=(8, 4.2))
    w = 0.38
    for j, part in enumerate(("seen", "unseen")):
        v = np.array([np.nan if r[f"auroc_{part}"] is None else r[f"auroc_{part}"] for r in rows], float)
        lo = [v[i] - r[f"auroc_ci95_{part}"][0] if r[f"auroc_ci95_{part}"] else 0 for i, r in enumerate(rows)]
        hi = [r[f"auroc_ci95_{part}"][1] - v[i] if r[f"auroc_ci95_{part}"] else 0 for i, r in enumerate(rows)]
        x = np.arange(len(rows)) + (j - 0.5) * w
        ax.bar(x, np.nan_to_num(v), w, yerr=[lo, hi], capsize=3, label=f"{part} families")
        for xi, vi in zip(x, v):
            if np.isnan(vi):
                ax.text(xi, 0.02, "n/a", ha="center", fontsize=7, rotation=90)
    li = run["ablation"].get("layer_indices") or {}
    labels = [r["variant"].replace("_", " ") for r in rows]
    ax.set_xticks(np.arange(len(rows)), labels, fontsize=8, rotation=15)
    ax.axhline(0.5, color="#969696", lw=1, ls=":")
    ax.set_ylabel("AUROC, jailbreak vs benign (95 % CI)")
    ax.set_ylim(0, 1.05)
    ax.set_title(f"Signal ablation (paper Table 4), {key}; layers {li}", fontsize=10)
    ax.legend(fontsize=8)
    return fig
