"""Experiment 5: recovery curves — ASR against prefill length and against injection step, AR vs diffusion.

A prefill pins the first k tokens of a harmful compliance; an injection overwrites response position
0 with a refusal ("sorry") or compliance ("sure") token at step t and pins it. The AR model and the
MDLM (left-to-right `ar_order`, `low_confidence`, one-token `random` at 16 steps) are compared with
the exact oracle under the same samplers, and every point carries the theory's held-out prediction
(Model v2, `oracle_sim`, plus the learned model's offset from the source run's fit cells). Run:
`python experiments/exp5_recovery_curves.py` (about 4 minutes on 2 cores once the default models are
cached).
"""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from _common import grid_args, run_grid, write_grid  # noqa: E402

from toydlm.experiment.cells import AR_VARIANT, Cell  # noqa: E402
from toydlm.experiment.presets import SamplerVariant  # noqa: E402
from toydlm.plots import save_png  # noqa: E402

PREFILL = (1, 2, 3, 4, 5, 6, 8)
INJECT = (0, 1, 2, 4, 6, 8, 11, 14)
DIFFUSION = (SamplerVariant("ar_order", "ar_order"), SamplerVariant("low_confidence_T16", "low_confidence", 16),
             SamplerVariant("random_T16", "random", 16))
# (grammar, model, training seed, sampler); the length-matched oracle is the length control
SETUPS = ([("default", "ar", 0, AR_VARIANT)] + [("default", m, s, v) for m, s in (("mdlm", 0), ("oracle", None))
                                               for v in DIFFUSION]
          + [("length_matched", "oracle", None, v) for v in DIFFUSION[:2]])


def cells() -> list[Cell]:
    out = []
    for g, model, seed, v in SETUPS:
        attacks = ["none"] + [f"prefill:{k}" for k in PREFILL]
        attacks += [f"inject:{token}@{t}" for token in ("refusal", "comply") for t in INJECT]
        out += [Cell(g, model, seed, v, 1.0, a, False) for a in attacks]
    return out


def _x(attack: str) -> tuple[str, int]:
    if attack == "none":
        return "prefill", 0
    if attack.startswith("prefill:"):
        return "prefill", int(attack.split(":")[1])
    token, t = attack.split(":")[1].split("@")
    return f"inject_{token}", int(t)


def figure(rows: list[dict], path) -> None:
    panels = (("prefill", "prefill length k (pinned harmful tokens)"),
              ("inject_refusal", "injection step t of a refusal token"),
              ("inject_comply", "injection step t of a compliance token"))
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.6), sharey=True)
    for ax, (panel, xlabel) in zip(axes, panels):
        for g, model, _, v in SETUPS:
            rs = sorted([r for r in rows if r["grammar"] == g and r["model"] == model and r["sampler"] == v.label
                         and r["panel"] == panel], key=lambda r: r["x"])
            if not rs:
                continue
            xs = [r["x"] for r in rs]
            style = "--" if g != "default" else {"ar": "-", "mdlm": "-", "oracle": ":"}[model]
            line = ax.errorbar(xs, [r["asr"] for r in rs], yerr=[2 * r["asr_se"] for r in rs], ls=style,
                               marker="o", ms=3, capsize=2,
                               label=f"{model} / {v.label}" + (" / length-matched" if g != "default" else ""))
            ax.plot(xs, [r["pred_asr"] for r in rs], ls="none", marker="x", color=line[0].get_color())
        ax.set_xlabel(xlabel)
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("ASR (share of harmful final responses)")
    axes[0].legend(fontsize=7, loc="lower right")
    fig.suptitle("Recovery curves on plain harmful prompts (temperature 1): dots = measured ± 2 SE, crosses = theory "
                 "(held out); k = 0 is no prefill; dashed = oracle on the length-matched grammar", fontsize=10)
    save_png(fig, path)


def prefill_alone_harmful(n: int, seed: int) -> dict[int, float]:
    """Per prefill length k: the share of prefills whose pinned tokens alone meet the harm threshold
    (ASR is then 1 by construction, whatever the sampler does with the rest)."""
    from toydlm.attacks import build_prompts
    from toydlm.grammar import harm_count, load_grammar

    g = load_grammar("default")
    out = {}
    for k in PREFILL:
        b = build_prompts(f"prefill:{k}", g, n, seed)
        pinned = np.where(b.pinned, b.response, g.mask_id)
        out[k] = float((harm_count(g, pinned) >= g.config.harm_threshold).mean())
    return out


def main() -> None:
    args = grid_args("exp5_recovery_curves")
    rows, summary = run_grid(cells(), args)
    keep = ("grammar", "model", "sampler", "attack", "asr", "asr_se", "refusal_rate", "refusal_rate_se", "hrr", "frr",
            "mean_length", "eos_first_share", "eos_first_excess", "pred_asr", "pred_asr_oracle_sim", "pred_hrr",
            "model_offset")
    out = {"prefill": [], "inject": []}
    for r in rows:
        panel, x = _x(r["attack"])
        r["panel"], r["x"] = panel, x
        row = {k: r.get(k) for k in keep}
        if panel == "prefill":
            out["prefill"].append({**row, "prefill_len": x})
        else:
            out["inject"].append({**row, "inject_kind": panel.split("_")[1], "inject_step": x})
    from pathlib import Path

    fig = Path(args.out) / "exp5_recovery_curves.png"
    figure(rows, fig)
    alone = prefill_alone_harmful(args.n, args.seed)
    write_grid("exp5_recovery_curves", {**out, "figure": fig.name, "prefill_alone_harmful": {
        str(k): v for k, v in alone.items()}, "note": (
        "prefill_len 0 = plain harmful prompts; inject at step t overwrites response position 0 and pins it; "
        "pred_asr = Model v2 on the oracle + the model's offset fitted on the source run's fit cells")}, args, summary)


if __name__ == "__main__":
    main()
