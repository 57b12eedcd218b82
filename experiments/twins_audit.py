"""The real-text twins' MDLM students through `toydlm audit`, on the twins' own held-out prompts.

The twins' tables come from their own swap (`real_text_twins.py`); the audit draws the same rows for the same
prompts, seed and sampler (`tests/toydlm/real/test_twins_audit.py`). This runs the trained students through the
audit's whole analysis (attack table, lengths by verdict, the length test, `eos_first_excess`), so a reader can
set the audit's report of a real twin beside the twins' tables. The held-out prompts are written as prompt files
first, so no prompt the students were trained on is audited.

    python experiments/twins_audit.py --students mdlm_s0 --n 50
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TEACHER = "qwen2.5-coder-0.5b-instruct"


def args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", default="runs/twins", help="the twins' run folder (as `real_text_twins.py --runs`)")
    ap.add_argument("--corpus", default=f"results/twins_cells/{TEACHER}",
                    help="the twins' corpus folder, with students.json")
    ap.add_argument("--students", default="mdlm_s0", help="comma-separated MDLM students of students.json")
    ap.add_argument("--out", default="results/audit/twins", help="one audit folder per student under this")
    ap.add_argument("--n", type=int, default=50, help="first N held-out prompts of each set")
    ap.add_argument("--samples", type=int, default=2)
    ap.add_argument("--samplers", default="ar_order,low_confidence")
    ap.add_argument("--attacks", default="raw,prefix_injection")
    ap.add_argument("--temperature", default="1.0", help="the twins' holdout temperature")
    ap.add_argument("--seed", type=int, default=0)
    return ap.parse_args(argv)


def write_prompt_files(folder: Path) -> tuple[Path, Path]:
    """The twins' held-out harmful and harmless instructions as audit prompt files."""
    from toydlm.io import atomic_write_json
    from toydlm.real.twins.corpus import holdout_prompts

    h = holdout_prompts()
    paths = folder / "holdout_harmful.json", folder / "holdout_harmless.json"
    for path, key in zip(paths, ("harmful", "harmless")):
        atomic_write_json(path, [{"instruction": x} for x in h[key]])
    return paths


def student_folder(runs: Path, corpus: Path, name: str) -> Path:
    """The sampled checkpoint of one MDLM student named in students.json (its `best/`)."""
    rec = json.loads((corpus / "students.json").read_text()).get(name)
    if rec is None or rec["arch"] != "mdlm":
        raise SystemExit(f"error: {name} is not an MDLM student of {corpus / 'students.json'}")
    return runs / rec["out_dir"] / "best"


def main(argv: list[str] | None = None) -> int:
    from toydlm.cli import main as toydlm_main

    a = args(argv)
    out = Path(a.out)
    harmful, harmless = write_prompt_files(out)
    for name in [s.strip() for s in a.students.split(",") if s.strip()]:
        model = student_folder(Path(a.runs), Path(a.corpus), name)
        rc = toydlm_main(["audit", "--model", str(model), "--kind", "dlm", "--out", str(out / name),
                          "--prompts", str(harmful), "--harmless", str(harmless), "--n", str(a.n),
                          "--samples", str(a.samples), "--samplers", a.samplers, "--attacks", a.attacks,
                          "--temperature", a.temperature, "--seed", str(a.seed)])
        if rc:
            return rc
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
