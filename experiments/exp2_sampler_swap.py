"""Experiment 2: the fixed-weights sampler swap (Table 2 analogue): Δ vs ar_order, same weights."""

import math
from pathlib import Path

from _common import cells, load_run, write
from _figures import swap_forest


def swap_row(c: dict, base: dict, grammar: str, weights: str) -> dict:
    """A cell's ASR and refusal differences from the `ar_order` cell of the same weights and attack, 95% CIs."""
    se = math.sqrt(c["asr_se"] ** 2 + base["asr_se"] ** 2)
    rse = math.sqrt(c["refusal_rate_se"] ** 2 + base["refusal_rate_se"] ** 2)
    d, dr = c["asr"] - base["asr"], c["refusal_rate"] - base["refusal_rate"]
    return {"grammar": grammar, "weights": weights, "sampler": c["sampler"], "attack": c["attack"],
            "delta_asr": d, "delta_asr_ci95": [d - 1.96 * se, d + 1.96 * se],
            "delta_refusal": dr, "delta_refusal_ci95": [dr - 1.96 * rse, dr + 1.96 * rse],
            "mean_length": c["mean_length"], "eos_first_share": c["eos_first_share"], "valid_rate": c["valid_rate"]}


def main() -> None:
    s, args = load_run()
    rows = []
    for g in ("default", "length_matched"):
        for m in ("mdlm", "oracle"):
            for c in cells(s, grammar=g, model=m, temperature=1.0):
                base = cells(s, grammar=g, model=m, temperature=1.0, attack=c["attack"], sampler="ar_order")
                if base and c["sampler"] != "ar_order":
                    rows.append(swap_row(c, base[0], g, m))
    fig = swap_forest(rows, Path(args.out) / "exp2_sampler_swap.png")
    write("exp2_sampler_swap", {"figure": fig.name, "rows": rows,
          "sign": "delta = sampler - ar_order; negative delta_asr = safer"}, s, args)


if __name__ == "__main__":
    main()
