"""Experiment 7: the length hypothesis — default vs length-matched grammar, global vs block decoding."""

from pathlib import Path

from _common import load_run, write
from _figures import length_panels

COLUMNS = ("grammar", "model", "sampler", "attack", "asr", "asr_se", "refusal_rate", "mean_length", "eos_first_share",
           "eos_first_excess", "valid_rate", "exact_harmful_rate", "asr_seed_sd")
ATTACKS = ("none", "wrapper:hypothetical", "wrapper:prefix", "benign")


def main() -> None:
    s, args = load_run()
    rows = [{k: c.get(k) for k in COLUMNS} for c in s["cells"]
            if c["temperature"] == 1.0 and c["model"] in ("oracle", "mdlm") and c["attack"] in ATTACKS]
    fig = length_panels(rows, Path(args.out) / "exp7_length_hypothesis.png")
    write("exp7_length_hypothesis", {"figure": fig.name, "rows": rows,
          "question": "does diffusion's apparent safety come from EOS-first commitment and short refusals?"}, s, args)


if __name__ == "__main__":
    main()
