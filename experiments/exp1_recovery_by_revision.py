"""Experiment 1: recovery by revision — HRR / FRR per sampler, learned vs oracle (Table 1 analogue)."""

from pathlib import Path

from _common import cells, load_run, write
from _figures import hrr_bars

COLUMNS = ("model", "sampler", "attack", "asr", "asr_se", "hrr", "hrr_se", "frr", "frr_se", "n_ever_pending",
           "hrr_sampled_draft", "frr_sampled_draft", "pred_hrr", "pred_frr", "asr_seed_sd")


def main() -> None:
    s, args = load_run()
    rows = [{k: c.get(k) for k in COLUMNS} for c in cells(s, grammar="default", temperature=1.0)
            if c["attack"].startswith("wrapper:") or c["attack"] == "none"]
    fig = hrr_bars(rows, Path(args.out) / "exp1_recovery_by_revision.png")
    write("exp1_recovery_by_revision", {"figure": fig.name, "rows": rows,
          "note": "HRR/FRR on the argmax draft; the *_sampled_draft columns use per-position samples "
                  "(see docs/prior-evidence.md)"}, s, args)


if __name__ == "__main__":
    main()
