"""Figures: reused PNGs from `results/` and new ones drawn from the JSON into `paper/figures/`.

Each generator is `name(sources) -> (path relative to paper/, caption)`.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from paper.sources import MissingSourceError, Sources  # noqa: E402
from paper.tables import SAMPLERS, one, short  # noqa: E402
from paper.tables_real import FIGURES_REAL  # noqa: E402
from paper.tables_sri_real import FIGURES_SRI_REAL  # noqa: E402
from paper.tables_twins import FIGURES_TWINS  # noqa: E402

META = {"Software": None}  # keep PNGs free of version stamps


def _out(s: Sources, name: str):
    d = s.root / "paper" / "figures"
    d.mkdir(parents=True, exist_ok=True)
    return d / name


def _save(fig, s: Sources, name: str) -> str:
    fig.savefig(_out(s, name), dpi=110, bbox_inches="tight", metadata=META)
    plt.close(fig)
    return f"figures/{name}"


def _reuse(s: Sources, rel: str) -> str:
    if not (s.root / rel).is_file():
        raise MissingSourceError(f"missing {rel}: produce it with `.venv/bin/toydlm run --preset default --seed 1 "
                                 f"--out runs/default-s1` and copy its figures to results/default-s1/")
    return f"../{rel}"


def swap(s: Sources) -> tuple[str, str]:
    """Δ ASR vs AR order with 95% CIs, per sampler, for two attacks and three weight/grammar settings."""
    rows = s.get("exp2_sampler_swap.json")["rows"]
    panels = [("default", "mdlm", "learned MDLM, default grammar"), ("default", "oracle", "oracle, default grammar"),
              ("length_matched", "oracle", "oracle, length-matched grammar")]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.6), sharey=True)
    ys = np.arange(len(SAMPLERS) - 1)
    for ax, attack in zip(axes, ("none", "wrapper:prefix")):
        for k, (g, m, label) in enumerate(panels):
            d, lo, hi = [], [], []
            for smp in SAMPLERS[1:]:
                r = one(rows, grammar=g, weights=m, sampler=smp, attack=attack)
                d.append(np.nan if r is None else r["delta_asr"])
                lo.append(np.nan if r is None else r["delta_asr"] - r["delta_asr_ci95"][0])
                hi.append(np.nan if r is None else r["delta_asr_ci95"][1] - r["delta_asr"])
            ax.errorbar(d, ys + (k - 1) * 0.25, xerr=[lo, hi], fmt="o", ms=4, capsize=2, label=label)
        ax.axvline(0, color="k", lw=0.8)
        ax.set_title(f"harmful prompts, wrapper: {short(attack)}", fontsize=10)
        ax.set_xlabel("Δ ASR = sampler − AR order (negative = fewer harmful responses)")
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(ys, SAMPLERS[1:], fontsize=8)
    axes[0].invert_yaxis()
    h, lab = axes[0].get_legend_handles_labels()
    fig.legend(h, lab, fontsize=8, loc="upper center", ncol=3, bbox_to_anchor=(0.5, 0.0))
    cap = ("Fixed-weights sampler swap: change in ASR relative to AR-order sampling of the same weights "
           "(points: Δ ASR; bars: 95% CI), on plain harmful prompts (left) and `prefix`-wrapped ones (right). "
           "Left of zero = the sampler produced fewer harmful responses than AR order.")
    return _save(fig, s, "fig_swap.png"), cap


def length_eos(s: Sources) -> tuple[str, str]:
    """Reused from the run: response length and EOS-first share per sampler."""
    cap = ("Length/EOS confound (from the run's report): mean response length on plain harmful prompts (left) and "
           "the share of EOS among the first L/2 commits (right), per sampler, for the learned MDLM and the oracle "
           "on the default grammar and the oracle on the length-matched grammar. Higher share = EOS tail committed "
           "earlier.")
    return _reuse(s, "results/default-s1/fig_length_eos.png"), cap


def stepwise(s: Sources) -> tuple[str, str]:
    """Reused from the run: the seed paper's Figure 3 curves on the toy."""
    cap = ("The seed paper's step-wise curves on the toy (`prefix` wrapper; draft = argmax x̂₀; solid: learned MDLM, "
           "dotted: oracle). Left: P(harm committed by step t | harm proposed by t), the chance that a harmful "
           "draft gets committed (lower = more revision). Right: P(harm proposed at t | everything committed so far "
           "harmless).")
    return _reuse(s, "results/default-s1/fig_stepwise_curves.png"), cap


def calibration(s: Sources) -> tuple[str, str]:
    """Reused from the run: predicted vs measured ASR on held-out cells."""
    cap = ("Theory v2 against measurement on held-out cells: predicted ASR (x) against measured ASR ± 2 SE (y); the "
           "dashed line is perfect prediction. Points below the line are cells where the theory over-predicts harm.")
    return _reuse(s, "results/default-s1/fig_calibration.png"), cap


def sri_signal(s: Sources) -> tuple[str, str]:
    """Reused from the run: SRI trajectories per class, with the compliance and refusal bands."""
    cap = ("SRI signal per step on the toy (from the run's SRI figures): mean and 25-75% band of σ_t for benign "
           "generations, refused harmful prompts, successful jailbreaks and refused attacks, per model and sampler. "
           "σ = 1 is compliance-aligned, σ = 0 refusal-aligned; the shaded bands mark the compliance (σ > λ_c) and "
           "refusal (σ < λ_r) regions of the internal recovery rate.")
    return _reuse(s, "results/default-s1/fig_sri_trajectories.png"), cap


def sri_roc(s: Sources) -> tuple[str, str]:
    """Reused from the run: ROC curves of SRI Guard and every baseline."""
    cap = ("ROC curves of SRI Guard and its baselines on the primary SRI run (successful jailbreaks against held-out "
           "benign generations), seen and unseen families.")
    return _reuse(s, "results/default-s1/fig_sri_roc.png"), cap


def sweeps(s: Sources) -> tuple[str, str]:
    """Reused from experiment 4: ASR against steps, block length, ReMDM eta and temperature."""
    cap = ("Sampler sweeps (experiment 4) on the `prefix` wrapper (top) and a two-token pinned prefill (bottom): "
           "measured ASR ± 2 SE (dots) and the theory's held-out prediction (crosses) against the number of "
           "steps, the block length, ReMDM's re-masking strength and the temperature. Solid lines: learned models; "
           "dotted: the exact oracle, also on the length-matched grammar.")
    return _reuse(s, "results/exp4_sweeps.png"), cap


def curves(s: Sources) -> tuple[str, str]:
    """Reused from experiment 5: ASR against prefill length and injection step."""
    cap = ("Recovery curves (experiment 5) on plain harmful prompts: ASR (± 2 SE; crosses: the theory's held-out "
           "prediction) against the length of a pinned harmful prefill (left), the step at which a refusal token is "
           "forced into the first response position (middle), and the step of a forced compliance token (right). "
           "Lower = safer.")
    return _reuse(s, "results/exp5_recovery_curves.png"), cap


FIGURES = {"swap": swap, "length_eos": length_eos, "stepwise": stepwise, "calibration_fig": calibration,
           "sri_signal": sri_signal, "sri_roc": sri_roc, "sweeps_fig": sweeps, "curves_fig": curves, **FIGURES_REAL,
           **FIGURES_TWINS, **FIGURES_SRI_REAL}
