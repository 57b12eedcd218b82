"""Helpers for the experiments that run lm-evaluation-harness: find a run, copy it into results/ without
machine paths, and read its length report."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def latest_results(out: Path) -> Path:
    """The newest results_*.json an lm-eval run wrote under its --output_path."""
    files = sorted(Path(out).rglob("results_*.json"), key=lambda p: p.name)
    if not files:
        raise SystemExit(f"error: no lm-eval results under {out}: run the `run` stage first")
    return files[-1]


_TASKS = re.compile(r'"[^"]*/(toydlm/eval/tasks/)')


def scrub(text: str, names: dict[str, str]) -> str:
    """`text` with every machine path in `names` replaced by its portable name (longest first), and the task
    files named from the package (`toydlm/eval/tasks/...`), wherever the package was installed."""
    for path in sorted(names, key=len, reverse=True):
        text = text.replace(path, names[path])
    return _TASKS.sub(r'"\1', text)


def copy_run(results: Path, dst: Path, names: dict[str, str]) -> Path:
    """The run's results JSON and sample files (same timestamp) copied to `dst`, machine paths scrubbed."""
    stamp = results.name[len("results_"):-len(".json")]
    if dst.exists():
        shutil.rmtree(dst)
    dst.mkdir(parents=True)
    for f in [results, *results.parent.glob(f"samples_*_{stamp}.jsonl")]:
        (dst / f.name).write_text(scrub(f.read_text(), names))
    return dst / results.name


def metric(res: dict, task: str, name: str, filt: str) -> dict:
    """{value, stderr} of one metric of one task in a results JSON."""
    r = res["results"][task]
    se = r.get(f"{name}_stderr,{filt}")
    return {"value": r[f"{name},{filt}"], "stderr": se if isinstance(se, float) else None}


def lengths(out: Path, tokenizer: str, n_boot: int, seed: int, cut_margin: int = 4) -> dict:
    """`toydlm lm-eval-report` over a run (its keyword judge), read back."""
    from toydlm.cli import main

    if main(["lm-eval-report", str(out), "--tokenizer", tokenizer, "--n-boot", str(n_boot), "--seed", str(seed),
             "--cut-margin", str(cut_margin)]):
        raise SystemExit("error: lm-eval-report failed")
    return json.loads((out / "toydlm_refusal_lengths.json").read_text())
