"""Experiment 3: theory against measurement on held-out cells (calibration)."""

from _common import load_run, write

COLUMNS = ("grammar", "model", "sampler", "attack", "temperature", "asr", "asr_se", "pred_asr", "pred_asr_oracle_sim",
           "pred_asr_mc_se", "model_offset", "asr_seed_sd", "per_seed")


def main() -> None:
    s, args = load_run()
    held = [{k: c.get(k) for k in COLUMNS} for c in s["cells"] if c["heldout"]]
    write("exp3_theory_calibration", {"calibration": s["calibration"], "model_offsets": s["model_offsets"],
                                      "heldout_cells": held}, s, args)


if __name__ == "__main__":
    main()
