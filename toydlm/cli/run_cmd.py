"""`toydlm run`: the main job — every sampler x attack cell, theory predictions, report."""

from __future__ import annotations


def register(sub) -> None:
    from toydlm.experiment.presets import PRESETS, expected_duration

    r = sub.add_parser("run", help="train/reuse models, measure every sampler x attack cell, predict, report")
    r.add_argument("--preset", default="default",
                   help=", ".join(f"{name} ({expected_duration(p)})" for name, p in PRESETS.items()))
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--out", default=None, help="output folder (default: runs/<preset>-s<seed>)")
    r.set_defaults(func=cmd_run)


def cmd_run(args) -> int:
    from toydlm.cli.paths import check_output_dir
    from toydlm.experiment.presets import get_preset
    from toydlm.experiment.runner import run

    p = get_preset(args.preset)
    out = args.out or f"runs/{p.name}-s{args.seed}"
    check_output_dir(out)
    s = run(p, seed=args.seed, out=out)
    c = s["calibration"]
    print(f"{len(s['cells'])} cells in {s['timings']['total_s']:.0f} s; held-out calibration: "
          f"MAE {c['mean_abs_err_asr']:.3f}, within 2 SE {c['frac_within_2se']:.2f} (n={c['n_heldout']}); "
          f"non-trivial MAE {c['nontrivial_mae'] if c['nontrivial_mae'] is not None else float('nan'):.3f}")
    print(f"wrote {out}/summary.json and {out}/report.md")
    return 0
