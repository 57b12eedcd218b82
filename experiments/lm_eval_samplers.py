"""The sampler swap inside lm-evaluation-harness: one MDLM twin student (fixed weights) through `--model toydlm`
under three samplers, each on the refusal tasks and the offline capability tasks.

Refusal: `toydlm_refusal_raw` and `_harmless` on the twins' held-out prompts (the first N of each set; the
student never trained on them), 4 samples each at temperature 1 on the student's 96-token canvas. Capability:
`toydlm_capability` (greedy, 64 positions): a short answer (arithmetic) and a long one (counting). The student has
3.5M parameters, so its capability is expected near zero; the point is the path and the side-by-side columns.

    python experiments/lm_eval_samplers.py run      # resumable per sampler; writes runs/lm_eval_samplers
    python experiments/lm_eval_samplers.py report   # results/lm_eval_samplers.json and its figure
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

OFFLINE = {"HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_EVALUATE_OFFLINE": "1"}
TASKS = "toydlm_refusal_raw,toydlm_refusal_harmless,toydlm_capability"
TEACHER = "qwen2.5-coder-0.5b-instruct"


def args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("stage", choices=["run", "report"])
    ap.add_argument("--runs", default="runs/twins", help="the twins' run folder")
    ap.add_argument("--corpus", default=f"results/twins_cells/{TEACHER}", help="the twins' corpus (students.json)")
    ap.add_argument("--student", default="mdlm_s0")
    ap.add_argument("--samplers", default="ar_order,low_confidence,random")
    ap.add_argument("--n", type=int, default=25, help="first N held-out prompts of each set")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--work", default="runs/lm_eval_samplers")
    ap.add_argument("--out", default="results/lm_eval_samplers.json")
    return ap.parse_args(argv)


def prompt_files(work: Path, n: int) -> tuple[Path, Path]:
    """The first n held-out harmful and harmless instructions of the twins, as prompt files."""
    from toydlm.io import atomic_write_json
    from toydlm.real.twins.corpus import holdout_prompts

    h = holdout_prompts()
    paths = work / f"holdout_harmful_{n}.json", work / f"holdout_harmless_{n}.json"
    for path, key in zip(paths, ("harmful", "harmless")):
        atomic_write_json(path, [{"instruction": x} for x in h[key][:n]])
    return paths


def student_folder(a: argparse.Namespace) -> Path:
    rec = json.loads((Path(a.corpus) / "students.json").read_text()).get(a.student)
    if rec is None or rec["arch"] != "mdlm":
        raise SystemExit(f"error: {a.student} is not an MDLM student of {a.corpus}/students.json")
    return Path(a.runs) / rec["out_dir"] / "best"


def harness_args(student: Path, sampler: str, harmful: Path, harmless: Path, out: Path, a) -> list[str]:
    return ["lm-eval", "--model", "toydlm", "--model_args",
            f"pretrained={student},kind=dlm,sampler={sampler},seed={a.seed}", "--tasks", TASKS,
            "--metadata", json.dumps({"prompts": str(harmful), "harmless": str(harmless)}),
            "--batch_size", str(a.batch_size), "--seed", str(a.seed), "--output_path", str(out), "--log_samples"]


def run(a: argparse.Namespace) -> None:
    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    harmful, harmless = prompt_files(work, a.n)
    student = student_folder(a)
    for sampler in a.samplers.split(","):
        out = work / sampler
        if list(out.rglob("results_*.json")):
            print(f"{sampler}: done, kept", flush=True)
            continue
        cmd = [sys.executable, "-m", "toydlm", *harness_args(student, sampler, harmful, harmless, out, a)]
        print(" ".join(cmd), flush=True)
        subprocess.run(cmd, env={**os.environ, **OFFLINE}, check=True)


def report(a: argparse.Namespace) -> None:
    raise SystemExit("report: not written yet")


def main(argv: list[str] | None = None) -> int:
    a = args(argv)
    run(a) if a.stage == "run" else report(a)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
