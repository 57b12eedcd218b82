"""`toydlm lm-eval ARGS...`: lm-eval's own command line, with toydlm's tasks on its include path and its `toydlm`
model registered.

ARGS reach lm-eval unchanged (`toydlm lm-eval --model hf --model_args pretrained=DIR --tasks toydlm_refusal`), so
`main` hands them over before argparse sees them; this module only registers the name for `toydlm --help`."""

from __future__ import annotations

import sys

from toydlm.errors import UserError

NAME = "lm-eval"


def register(sub) -> None:
    sub.add_parser(NAME, help="lm-evaluation-harness with the toydlm_refusal tasks registered (extra [eval]); "
                   "every argument after it is lm-eval's", add_help=False)


def run_lm_eval(argv: list[str]) -> int:
    """Run lm-eval's CLI on `argv` with the shipped task folder added to `--include_path` and the `toydlm`
    model registered beside lm-eval's own (whose lazy entries load only when its registry is empty)."""
    try:
        import lm_eval.models  # noqa: F401 - lm-eval's own models (hf, vllm, ...) stay available
        from lm_eval.__main__ import cli_evaluate
    except ImportError:
        raise UserError("lm-eval is not installed: pip install -e '.[eval]'") from None
    import toydlm.real.harness.lm  # noqa: F401 - registers `--model toydlm`
    from toydlm.eval import TASKS_DIR

    saved = sys.argv
    sys.argv = ["lm-eval", *argv, "--include_path", str(TASKS_DIR)]
    try:
        cli_evaluate()
    except SystemExit as e:  # argparse and lm-eval exit through SystemExit; keep its status
        return int(e.code or 0) if not isinstance(e.code, str) else 2
    finally:
        sys.argv = saved
    return 0
