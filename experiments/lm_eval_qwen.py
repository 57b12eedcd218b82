"""Qwen2.5-Coder-0.5B-Instruct through lm-evaluation-harness (`--model hf`) on `toydlm_refusal_raw`, set beside
the stored length test of `results/real_ar.json`.

The harness decodes the shipped HarmBench prompts, chat-templated, 4 samples each at temperature 1 over the full
distribution (top_k=0, top_p=1), at most 96 new tokens as `real_ar.json`'s length cells; `toydlm lm-eval-report`
counts lengths in the model's tokens and runs the audit's length test with prompt-bootstrap intervals.

Agreement rule, fixed before the run: at each k of the grid both reports share, the harness's
P(refusal | length <= k) and `real_ar.json`'s agree when their 95% intervals overlap; the overall refusal rates
are set side by side with their intervals. `real_ar.json` used other prompts (half HarmBench, half AdvBench), so
the comparison is of the premise's shape, not of one prompt set.

    python experiments/lm_eval_qwen.py run      # about an hour on 2 cores; writes runs/lm_eval_qwen
    python experiments/lm_eval_qwen.py report   # results/lm_eval/qwen0.5b/ and results/lm_eval_qwen.json
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CHECKPOINT = "qwen2.5-coder-0.5b-instruct"
GGUF = "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
GEN_KWARGS = "max_gen_toks=96,top_k=0,top_p=1.0"
OFFLINE = {"HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_EVALUATE_OFFLINE": "1"}


def lm_eval_args(model_dir: str, out: Path, seed: int, batch_size: int) -> list[str]:
    """The harness command line (after `toydlm lm-eval`)."""
    return ["--model", "hf", "--model_args", f"pretrained={model_dir},gguf_file={GGUF},dtype=float32",
            "--tasks", "toydlm_refusal_raw", "--apply_chat_template", "--gen_kwargs", GEN_KWARGS,
            "--batch_size", str(batch_size), "--device", "cpu", "--seed", str(seed), "--output_path", str(out),
            "--log_samples"]


def run(work: Path, seed: int, batch_size: int) -> None:
    """Decode in `work`, where the checkpoint is linked under its name, so the harness records no machine path."""
    from toydlm.weights import resolve_model

    work.mkdir(parents=True, exist_ok=True)
    link = work / CHECKPOINT
    if not link.exists():
        link.symlink_to(resolve_model(CHECKPOINT).resolve())
    cmd = [sys.executable, "-m", "toydlm", "lm-eval", *lm_eval_args(CHECKPOINT, Path("out"), seed, batch_size)]
    print(" ".join(cmd), flush=True)
    subprocess.run(cmd, cwd=work, env={**os.environ, **OFFLINE}, check=True)


def report(work: Path) -> None:
    raise SystemExit("report: not written yet")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("stage", choices=["run", "report"])
    ap.add_argument("--work", default="runs/lm_eval_qwen", help="where the harness writes its run")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch-size", type=int, default=64)
    a = ap.parse_args(argv)
    if a.stage == "run":
        run(Path(a.work), a.seed, a.batch_size)
    else:
        report(Path(a.work))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
