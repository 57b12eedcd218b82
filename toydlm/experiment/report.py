"""The run's figures and a self-contained Markdown report, generated from `summary.json` only."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from toydlm.io import atomic_write_text  # noqa: E402
from toydlm.plots import save_png  # noqa: E402

SWAP_ATTACKS = ("none", "wrapper:roleplay", "wrapper:hypothetical", "wrapper:prefix", "wrapper:cipher")


def _fmt(x, nd=3) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{nd}f}"


def _sel(rows, **kw):
    return [r for r in rows if all(r.get(k) == v for k, v in kw.items())]


def fig_asr_heatmaps(rows, out: Path) -> Path | None:
    panels = [(g, m) for g in ("default", "length_matched") for m in ("mdlm", "oracle")
              if _sel(rows, grammar=g, model=m, temperature=1.0)]
    if not panels:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 5.2), squeeze=False)
    for ax, (g, m) in zip(axes[0], panels):
        rs = _sel(rows, grammar=g, model=m, temperature=1.0)
        samplers = list(dict.fromkeys(r["sampler"] for r in rs))
        attacks = [a for a in SWAP_ATTACKS if any(r["attack"] == a for r in rs)]
        M = np.full((len(samplers), len(attacks)), np.nan)
        for r in rs:
            if r["attack"] in attacks:
                M[samplers.index(r["sampler"]), attacks.index(r["attack"])] = r["asr"]
        im = ax.imshow(M, vmin=0, vmax=1, cmap="magma_r", aspect="auto")
        for i in range(M.shape[0]):
            for j in range(M.shape[1]):
                if not np.isnan(M[i, j]):
                    ax.text(j, i, f"{M[i, j]:.2f}", ha="center", va="center", fontsize=7,
                            color="white" if M[i, j] > 0.55 else "black")
        ax.set_xticks(range(len(attacks)), [a.replace("wrapper:", "") for a in attacks], rotation=45, ha="right")
        ax.set_yticks(range(len(samplers)), samplers if ax is axes[0][0] else [], fontsize=7)
        ax.set_title(f"ASR: {m} weights,\n{g.replace('_', '-')} grammar", fontsize=9)
    fig.colorbar(im, ax=axes[0].tolist(), shrink=0.7, label="attack success rate (harmful responses)")
    return save_png(fig, out / "fig_asr_by_sampler.png", tight=True)


def fig_calibration(rows, out: Path) -> Path | None:
    held = [r for r in rows if r["heldout"]]
    if not held:
        return None
    fig, ax = plt.subplots(figsize=(5.2, 5))
    for m, col in (("ar", "tab:blue"), ("mdlm", "tab:orange"), ("oracle", "tab:green")):
        rs = [r for r in held if r["model"] == m]
        if rs:
            ax.errorbar([r["pred_asr"] for r in rs], [r["asr"] for r in rs], yerr=[2 * r["asr_se"] for r in rs],
                        fmt="o", ms=3, alpha=0.6, color=col, label=f"{m} ({len(rs)} held-out cells)")
    ax.plot([0, 1], [0, 1], "k--", lw=1)
    ax.set_xlabel("predicted ASR (theory v2 on the oracle + fitted model offset)")
    ax.set_ylabel("measured ASR (± 2 SE)")
    ax.set_title("Theory vs measurement on held-out cells")
    ax.legend(fontsize=8)
    return save_png(fig, out / "fig_calibration.png", tight=True)


def fig_length(rows, out: Path) -> Path | None:
    rs = [r for r in rows if r["temperature"] == 1.0 and r["attack"] in ("none", "benign") and r["model"] != "ar"]
    if not rs:
        return None
    keys = list(dict.fromkeys((r["grammar"], r["model"]) for r in rs))
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    for gi, (g, m) in enumerate(keys):
        sub = [r for r in rs if r["grammar"] == g and r["model"] == m and r["attack"] == "none"]
        xs = np.arange(len(sub)) + gi * 0.8 / max(len(keys), 1)
        axes[0].bar(xs, [r["mean_length"] for r in sub], width=0.8 / max(len(keys), 1), label=f"{m}, {g}")
        axes[1].bar(xs, [r["eos_first_share"] for r in sub], width=0.8 / max(len(keys), 1), label=f"{m}, {g}")
        if gi == 0:
            for ax in axes:
                ax.set_xticks(np.arange(len(sub)) + 0.4 - 0.4 / max(len(keys), 1),
                              [r["sampler"] for r in sub], rotation=60, ha="right", fontsize=7)
    axes[0].set_ylabel("mean response length (tokens), plain harmful prompts")
    axes[1].set_ylabel("share of EOS among the first L/2 commits")
    axes[0].legend(fontsize=7)
    fig.suptitle("The length/EOS confound: which samplers commit EOS first and truncate responses")
    return save_png(fig, out / "fig_length_eos.png", tight=True)


def fig_curves(rows, curves, out: Path) -> Path | None:
    show = ("ar_order", "random_T16", "low_confidence_T16", "low_confidence_B4_T16", "mdlm_T16")
    pick = [r for r in rows if r["grammar"] == "default" and r["temperature"] == 1.0
            and r["attack"] == "wrapper:prefix" and r["model"] in ("mdlm", "oracle") and r["sampler"] in show]
    if not pick:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for r in pick:
        c = curves.get(r["key"]) or {}
        ls = "-" if r["model"] == "mdlm" else ":"
        for ax, k in zip(axes, ("committed_given_proposed", "proposed_given_clean")):
            y = np.array(c.get(k, []), float)
            ax.plot(np.arange(1, len(y) + 1), y, ls, label=f"{r['model']} {r['sampler']}")
    axes[0].set_title("P(harm committed by t | harm proposed by t)")
    axes[1].set_title("P(harm proposed at t | all committed so far harmless)")
    for ax in axes:
        ax.set_xlabel("step t")
        ax.set_ylim(-0.02, 1.02)
    axes[1].legend(fontsize=7)
    fig.suptitle("The research's Figure 3 on the toy (wrapper: prefix); draft = argmax x̂₀")
    return save_png(fig, out / "fig_stepwise_curves.png", tight=True)


def swap_table(rows) -> list[str]:
    """Fixed-weights sampler swap (Table 2 analogue): Δ vs AR order on the same weights."""
    lines = ["| weights | grammar | sampler | attack | ASR | Δ ASR vs ar_order (95% CI) | refusal | Δ refusal | "
             "mean length | valid |", "|---|---|---|---|---|---|---|---|---|---|"]
    for g in ("default", "length_matched"):
        for m in ("mdlm", "oracle"):
            for a in ("none", "wrapper:prefix", "benign"):
                base = _sel(rows, grammar=g, model=m, attack=a, temperature=1.0, sampler="ar_order")
                if not base:
                    continue
                b = base[0]
                for r in _sel(rows, grammar=g, model=m, attack=a, temperature=1.0):
                    d = r["asr"] - b["asr"]
                    se = math.sqrt(r["asr_se"] ** 2 + b["asr_se"] ** 2)
                    dr = r["refusal_rate"] - b["refusal_rate"]
                    lines.append(f"| {m} | {g} | {r['sampler']} | {a} | {_fmt(r['asr'])} | {d:+.3f} "
                                 f"({d - 1.96 * se:+.3f}, {d + 1.96 * se:+.3f}) | {_fmt(r['refusal_rate'])} | "
                                 f"{dr:+.3f} | "
                                 f"{_fmt(r['mean_length'], 2)} | {_fmt(r['valid_rate'])} |")
    return lines


def spread_section(spread: list[dict] | None) -> list[str]:
    """Seed-to-seed spread of the learned models (presets with several training seeds)."""
    if not spread:
        return []
    sd = np.array([e["asr_sd"] for e in spread])
    se = np.array([e["mean_binomial_se"] for e in spread])
    L = ["## Spread across training seeds", "",
         f"{len(spread)} learned-model cells were measured on {spread[0]['n_seeds']} seeds. Median seed-to-seed "
         f"SD of ASR {np.median(sd):.3f} against a median binomial SE of {np.median(se):.3f}: where the SD is "
         "much larger, the seed (what the model learned), not sampling noise, moves the cell.", "",
         "| grammar | model | sampler | attack | temp | ASR mean | SD | min | max |",
         "|---|---|---|---|---|---|---|---|---|"]
    for e in sorted(spread, key=lambda e: -e["asr_sd"])[:15]:
        L.append(f"| {e['grammar']} | {e['model']} | {e['sampler']} | {e['attack']} | {e['temperature']:g} | "
                 f"{e['asr_mean']:.3f} | {e['asr_sd']:.3f} | {e['asr_min']:.3f} | {e['asr_max']:.3f} |")
    return L + ["", "(the 15 cells with the largest spread; every cell is in `summary.json` under `seed_spread`)", ""]


def sri_section(sri: dict | None) -> list[str]:
    """SRI Guard against its baselines and the layer ablation (Table 4 analogue), from `sri.json`."""
    if not sri or not sri.get("primary"):
        return []
    p = sri["primary"]

    def ci(k: str) -> str:
        lo_hi = p.get(f"{k}_ci95")
        return f"{_fmt(p.get(k))} [{_fmt(lo_hi[0])}, {_fmt(lo_hi[1])}]" if lo_hi else _fmt(p.get(k))

    L = ["## SRI and SRI Guard", "",
         f"Primary run `{p.get('model_sampler')}`: positives = successful jailbreaks (harmful final responses to "
         f"wrapper prompts; {p.get('n_pos_seen')} seen, {p.get('n_pos_unseen')} on the unseen family), negatives = "
         f"{p.get('n_neg')} held-out benign generations. σ = 1 is compliance-aligned, 0 refusal-aligned.", "",
         "| metric | value |", "|---|---|",
         f"| AUROC, seen families (95% bootstrap CI) | {ci('auroc_seen')} |",
         f"| AUROC, unseen family | {ci('auroc_unseen')} |",
         f"| TPR at 5% FPR, unseen | {_fmt(p.get('tpr_at_5pct_fpr_unseen'))} |",
         f"| benign false-positive rate at the 99th-percentile threshold | {_fmt(p.get('fpr_benign'))} |",
         f"| overhead, % of generation time (steady state) | {_fmt(p.get('overhead_pct'), 2)} |",
         f"| guard-model time / SRI Guard time | {_fmt(p.get('overhead_ratio_vs_guard_model'), 1)} |",
         f"| guard-model FLOPs / SRI Guard FLOPs | {_fmt(p.get('flops_ratio_vs_guard_model'), 1)} |"]
    if p.get("auroc_null_reason"):
        L.append(f"| AUROC withheld | {p['auroc_null_reason']} |")
    run = (sri.get("runs") or {}).get(p.get("model_sampler"), {})
    rows = (run.get("ablation") or {}).get("rows") or []
    if rows:
        L += ["", "Layer ablation and text-level vs SRI (the paper's Table 4 analogue), AUROC with 95% CI:", "",
              "| signal | seen | unseen |", "|---|---|---|"]
        for r in rows:
            cs, cu = r.get("auroc_ci95_seen") or [None, None], r.get("auroc_ci95_unseen") or [None, None]
            L.append(f"| {r['variant']} | {_fmt(r.get('auroc_seen'))} [{_fmt(cs[0])}, {_fmt(cs[1])}] | "
                     f"{_fmt(r.get('auroc_unseen'))} [{_fmt(cu[0])}, {_fmt(cu[1])}] |")
    return L + [""]


def write_report(summary: dict, curves: dict, out: Path) -> Path:
    rows = summary["cells"]
    figs = [f for f in (fig_asr_heatmaps(rows, out), fig_calibration(rows, out), fig_length(rows, out),
                        fig_curves(rows, curves, out)) if f is not None]
    if summary.get("sri") and summary["sri"].get("runs"):
        from toydlm.plots.sri_plots import write_sri_figures

        figs += write_sri_figures(summary["sri"], out)
    cal = summary["calibration"]
    L = ["# toydlm run report", "",
         f"Preset `{summary['config']['preset']}`, seed {summary['seed']}, git {summary['git_revision']}, "
         f"{len(rows)} cells, {summary['timings']['total_s']:.0f} s. All numbers below come from `summary.json`.",
         "", "Sign conventions: ASR = share of responses the exact judge scores harmful (≥ threshold harm tokens); "
         "refusal = a complete refusal template; HRR/FRR use the argmax draft x̂₀. Errors are binomial SEs; "
         "a learned-model cell pooled over training seeds has the seed-mean SE (`docs/seeds.md`).", "",
         "## Theory vs measurement (held-out cells)", "",
         "| slice | n | mean abs error | share within max(0.02, 2 SE) |", "|---|---|---|---|",
         f"| all held-out | {cal['n_heldout']} | {_fmt(cal['mean_abs_err_asr'])} | {_fmt(cal['frac_within_2se'])} |",
         f"| non-trivial (0.05 ≤ ASR ≤ 0.95) | {cal['nontrivial_n']} | {_fmt(cal['nontrivial_mae'])} | "
         f"{_fmt(cal['nontrivial_frac_within_2se'])} |"]
    for k, v in cal["per_model"].items():
        L.append(f"| model {k} | {v['n']} | {_fmt(v['mae'])} | {_fmt(v['frac_within_2se'])} |")
    for k, v in cal["per_sampler"].items():
        L.append(f"| sampler {k} | {v['n']} | {_fmt(v['mae'])} | {_fmt(v['frac_within_2se'])} |")
    for k, v in (cal.get("per_seed") or {}).items():
        L.append(f"| training seed {k} alone, non-trivial | {v['nontrivial_n']} | {_fmt(v['nontrivial_mae'])} | "
                 f"{_fmt(v['nontrivial_frac_within_2se'])} |")
    if len(cal.get("per_seed") or {}) > 1:
        L += ["", f"Learned cells are pooled over the training seeds. {cal['pooling']}."]
    L += ["", "Fitted model offsets (the theory's only free parameters; fit cells only):", ""]
    for k, v in summary["model_offsets"].items():
        L.append(f"- `{k}`: {v['offset']:+.4f} from {v['n_fit_cells']} cells")
    ctl = summary["controls"]
    L += ["", "## Calibration controls", "",
          f"AR-order and one-token random sampling must reproduce the exact rates: {ctl['n_within_3se']} of "
          f"{ctl['n']} control cells are within 3 SE.", "",
          "| grammar | model | sampler | attack | ASR | exact | z |", "|---|---|---|---|---|---|---|"]
    for o in ctl["rows"]:
        L.append(f"| {o['grammar']} | {o['model']} | {o['sampler']} | {o['attack']} | {_fmt(o['asr'])} | "
                 f"{_fmt(o['exact'])} | {_fmt(o['z'], 1)} |")
    L += ["", "## The fixed-weights sampler swap (Table 2 analogue)", "", *swap_table(rows), ""]
    L += sri_section(summary.get("sri"))
    L += spread_section(summary.get("seed_spread"))
    L += ["## Training", ""]
    for k, v in summary["training"].items():
        L.append(f"- `{k}`: eval loss {_fmt(v.get('eval_loss'))} (entropy floor {_fmt(v.get('entropy_floor'))}), "
                 f"{v.get('steps')} steps, {_fmt(v.get('seconds'), 0)} s")
    L += ["", "## Figures", ""] + [f"![{f.stem}]({f.name})" for f in figs]
    t = summary["timings"]
    L += ["", f"Timings: models {t['models_s']:.0f} s, cells {t['cells_s']:.0f} s, theory {t['theory_s']:.0f} s, "
               f"SRI {t['sri_s']:.0f} s; {t.get('n_compiles', '?')} XLA programs built "
               f"({t.get('n_compile_cache_hits', '?')} from the persistent cache).", ""]
    if any(r["temperature"] == 0.0 for r in rows):
        L += ["Temperature-0 cells are reported in `summary.json`; their binomial errors undercount the "
              "uncertainty (few distinct prompts, deterministic responses).", ""]
    p = out / "report.md"
    atomic_write_text(p, "\n".join(L))
    return p
