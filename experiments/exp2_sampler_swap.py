"""Experiment 2: the fixed-weights sampler swap (Table 2 analogue): Δ vs ar_order, same weights."""

import math
from pathlib import Path

from _common import cells, load_run, write
from _figures import swap_forest

s, args = load_run()
rows = []
for g in ("default", "length_matched"):
    for m in ("mdlm", "oracle"):
        for c in cells(s, grammar=g, model=m, temperature=1.0):
            base = cells(s, grammar=g, model=m, temperature=1.0, attack=c["attack"], sampler="ar_order")
            if not base or c["sampler"] == "ar_order":
                continue
            b = base[0]
            se = math.sqrt(c["asr_se"] ** 2 + b["asr_se"] ** 2)
            rse = math.sqrt(c["refusal_rate_se"] ** 2 + b["refusal_rate_se"] ** 2)
            d, dr = c["asr"] - b["asr"], c["refusal_rate"] - b["refusal_rate"]
            rows.append({"grammar": g, "weights": m, "sampler": c["sampler"], "attack": c["attack"],
                         "delta_asr": d, "delta_asr_ci95": [d - 1.96 * se, d + 1.96 * se],
                         "delta_refusal": dr, "delta_refusal_ci95": [dr - 1.96 * rse, dr + 1.96 * rse],
                         "mean_length": c["mean_length"], "eos_first_share": c["eos_first_share"],
                         "valid_rate": c["valid_rate"]})
fig = swap_forest(rows, Path(args.out) / "exp2_sampler_swap.png")
write("exp2_sampler_swap", {"figure": fig.name, "rows": rows,
      "sign": "delta = sampler - ar_order; negative delta_asr = safer"}, s, args)
