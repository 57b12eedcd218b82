"""Experiment 4: sweeps of steps, block length, ReMDM's sigma (eta) and temperature.

Each sweep varies one setting of a diffusion sampler on the same weights (the learned MDLM and
the exact oracle, default grammar; the oracle also on the length-matched grammar, where refusals
are as long as compliances) and records ASR, refusal rate, response length and the EOS share of
the first commits beside the theory's held-out prediction. Run:
`python experiments/exp4_sweeps.py` (about 5 minutes on 2 cores once the default models are cached).
"""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from _common import grid_args, run_grid, write_grid  # noqa: E402

from toydlm.experiment.cells import AR_VARIANT, Cell  # noqa: E402
from toydlm.experiment.presets import SamplerVariant as V  # noqa: E402
from toydlm.plots import save_png  # noqa: E402

ATTACKS = ("wrapper:prefix", "prefill:2")
WEIGHTS = (("default", "mdlm", 0), ("default", "oracle", None), ("length_matched", "oracle", None))
STEPS = (1, 2, 4, 8, 16)
BLOCKS = (1, 2, 4, 8, 16)
SIGMAS = (0.0, 0.02, 0.05, 0.1, 0.2, 0.4)
TEMPS = (0.0, 0.5, 1.0, 1.5)


def sweep_variants() -> dict[str, list[tuple[float, V]]]:
    """sweep name -> [(value, sampler variant)]; the temperature sweep's variants run at each value."""
    return {
        "steps": [(t, V(f"{name}_T{t}", name, t)) for name in ("low_confidence", "random") for t in STEPS],
        "block_length": [(b, V(f"low_confidence_B{b}_T16", "low_confidence", 16, block_length=b)) for b in BLOCKS],
        "sigma": [(s, V(f"remdm_cap_T32_eta{s:g}", "remdm", 32, remdm_schedule="cap", eta=s)) for s in SIGMAS],
        "temperature": [(t, v) for t in TEMPS for v in (V("ar_order", "ar_order"),
                                                        V("low_confidence_T16", "low_confidence", 16))],
    }


def cells() -> list[tuple[str, float, Cell]]:
    out = []
    for sweep, pairs in sweep_variants().items():
        for value, v in pairs:
            temp = value if sweep == "temperature" else 1.0
            for g, model, seed in WEIGHTS:
                out += [(sweep, value, Cell(g, model, seed, v, temp, a, False)) for a in ATTACKS]
        if sweep == "temperature":  # the AR model under the same temperatures
            out += [(sweep, t, Cell("default", "ar", 0, AR_VARIANT, t, a, False)) for t in TEMPS for a in ATTACKS]
    return out


def _family(sampler: str, sweep: str) -> str:
    """The line a row belongs to within its sweep's panel (the sampler without the swept setting)."""
    if sweep == "steps":
        return sampler.rsplit("_T", 1)[0]
    return {"block_length": "low_confidence_T16", "sigma": "remdm_cap_T32"}.get(sweep, sampler)


def figure(rows: list[dict], path: Path) -> None:
    sweeps = (("steps", "denoising steps T (16 = one token per step)", True),
              ("block_length", "block length (16 = global)", True), ("sigma", "ReMDM eta (re-masking strength)", False),
              ("temperature", "sampling temperature", False))
    fig, axes = plt.subplots(len(ATTACKS), 4, figsize=(17, 7.5), sharey=True)
    for i, attack in enumerate(ATTACKS):
        for j, (sweep, xlabel, logx) in enumerate(sweeps):
            ax = axes[i, j]
            sel = [r for r in rows if r["sweep"] == sweep and r["attack"] == attack]
            for key in sorted({(r["grammar"], r["model"], _family(r["sampler"], sweep)) for r in sel}):
                rs = sorted([r for r in sel if (r["grammar"], r["model"], _family(r["sampler"], sweep)) == key],
                            key=lambda r: r["value"])
                g, m, fam = key
                line = ax.errorbar([r["value"] for r in rs], [r["asr"] for r in rs],
                                   yerr=[2 * r["asr_se"] for r in rs], marker="o", ms=3, capsize=2,
                                   ls=":" if m == "oracle" else "-",
                                   label=f"{m} / {fam}" + (" / length-matched" if g != "default" else ""))
                ax.plot([r["value"] for r in rs], [r["pred_asr"] for r in rs], ls="none", marker="x",
                        color=line[0].get_color())
            if logx:
                ax.set_xscale("log", base=2)
            ax.set_ylim(-0.02, 1.02)
            ax.grid(alpha=0.3)
            if i == len(ATTACKS) - 1:
                ax.set_xlabel(xlabel)
            if j == 0:
                ax.set_ylabel(f"ASR, attack = {attack}")
            if i == 0:
                ax.legend(fontsize=6)
    fig.suptitle("Sampler sweeps (temperature 1 unless swept): dots = measured ASR ± 2 SE, crosses = theory "
                 "(held out); solid = learned MDLM / AR, dotted = exact oracle", fontsize=10)
    save_png(fig, path, dpi=105)


def main() -> None:
    args = grid_args("exp4_sweeps")
    spec = cells()
    rows, summary = run_grid([c for _, _, c in spec], args)
    keep = ("grammar", "model", "sampler", "attack", "temperature", "asr", "asr_se", "refusal_rate",
            "refusal_rate_se", "mean_length", "eos_first_share", "valid_rate", "hrr", "frr", "pred_asr",
            "pred_asr_oracle_sim", "model_offset")
    out: dict[str, list] = {}
    full = []
    for (sweep, value, _), r in zip(spec, rows):
        row = {"sweep": sweep, "value": value, **{k: r.get(k) for k in keep}}
        out.setdefault(sweep, []).append(row)
        full.append(row)
    fig = Path(args.out) / "exp4_sweeps.png"
    figure(full, fig)
    write_grid("exp4_sweeps", {"sweeps": out, "figure": fig.name, "note": (
        "each row varies one setting (`value`); temperature 0 has few distinct prompts, so its SE undercounts; "
        "pred_asr = Model v2 on the oracle + the model's offset fitted on the source run's fit cells (none at "
        "temperatures the source run did not fit)")}, args, summary)


if __name__ == "__main__":
    main()
