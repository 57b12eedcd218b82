"""toydlm inside lm-evaluation-harness: the `toydlm_refusal` task group (shipped under `tasks/`) and the
`toydlm lm-eval` entry point that registers it (extra [eval]; docs/lm-eval.md)."""

from __future__ import annotations

from pathlib import Path

TASKS_DIR = Path(__file__).resolve().parent / "tasks"
