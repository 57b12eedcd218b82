"""The default `toydlm run` with other training seeds: new networks and new cells, the out-of-sample test of
the theory's fitted offsets (whose design was settled on the seed-0 networks).

Writes the run folder (`--out`, resumable like any `toydlm run`) and copies its summary.json to
`results/<name>/summary.json`.
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import sys
from pathlib import Path

from _common import ROOT  # also puts the repo root on sys.path; imports no JAX


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model-seed", type=int, default=1, help="training seed of the AR and MDLM models")
    ap.add_argument("--seed", type=int, default=3, help="the run seed (prompts and sampler draws)")
    ap.add_argument("--out", default=None, help="run folder (default runs/default-m<model-seed>-s<seed>)")
    ap.add_argument("--quiet", action="store_true", help="no progress bars")
    args = ap.parse_args()
    if args.model_seed < 0 or args.seed < 0:
        sys.exit("--model-seed and --seed must be >= 0")
    from toydlm.hostdevices import split_host_cpu

    split_host_cpu()
    from toydlm.experiment.presets import get_preset
    from toydlm.experiment.runner import run

    name = f"default-m{args.model_seed}-s{args.seed}"
    out = Path(args.out or f"runs/{name}")
    s = run(dataclasses.replace(get_preset("default"), model_seeds=(args.model_seed,)), seed=args.seed, out=out,
            progress=not args.quiet)
    dest = ROOT / "results" / name
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(out / "summary.json", dest / "summary.json")
    c = s["calibration"]
    print(f"held-out non-trivial within tolerance: {c['nontrivial_frac_within_2se']:.3f} of {c['nontrivial_n']}; "
          f"wrote {dest / 'summary.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
