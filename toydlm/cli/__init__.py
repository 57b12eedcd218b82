"""The `toydlm` command line: a thin layer over the library.

User mistakes (bad options, bad configs, missing files) raise `toydlm.errors.UserError`: one
line, exit status 2, no traceback. Anything else is a bug in toydlm: the CLI says so, writes the
traceback to a file and exits with status 1 (`TOYDLM_DEBUG=1` re-raises instead). Each
subcommand lives in its own module with a `register(subparsers)` function.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

from toydlm.errors import UserError
from toydlm.hostdevices import split_host_cpu

# modules under toydlm.cli that register subcommands, in help order
COMMANDS = ["grammar_cmd", "train_cmd", "sample_cmd", "run_cmd", "bridge_cmd", "audit_cmd", "weights_cmd", "bench_cmd",
            "lm_eval_cmd", "lm_eval_report_cmd"]

__all__ = ["COMMANDS", "UserError", "build_parser", "main"]


class Parser(argparse.ArgumentParser):
    """argparse that lists the valid options when given an unknown one."""

    def error(self, message: str) -> None:  # noqa: D401
        opts = sorted({o for a in self._actions for o in a.option_strings if o.startswith("--")})
        hint = f" (valid options: {', '.join(opts)})" if "unrecognized arguments" in message and opts else ""
        self.exit(2, f"{self.prog}: error: {message}{hint}\n")


def build_parser() -> Parser:
    p = Parser(prog="toydlm", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    for name in COMMANDS:
        importlib.import_module(f"toydlm.cli.{name}").register(sub)
    _mark_leaves(p)
    return p


def _mark_leaves(parser: argparse.ArgumentParser) -> None:
    """Remember each leaf parser, so unknown options are reported against the right command."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        parser.set_defaults(_leaf=parser)
    for a in subs:
        for child in a.choices.values():
            _mark_leaves(child)


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        split_host_cpu()  # before anything starts JAX
    except UserError as e:
        print(f"toydlm: error: {e}", file=sys.stderr)
        return 2
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["lm-eval"]:  # lm-eval parses its own arguments, unchanged
        return _run_lm_eval(argv[1:])
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        getattr(args, "_leaf", parser).error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return int(args.func(args) or 0)
    except UserError as e:
        if os.environ.get("TOYDLM_DEBUG"):
            raise
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        print(f"toydlm {args.command}: error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"toydlm {args.command}: interrupted (finished work was saved)", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - every other failure is a bug, reported as one
        if os.environ.get("TOYDLM_DEBUG"):
            raise
        report_bug(args.command, e, argv)
        return 1


def _run_lm_eval(argv: list[str]) -> int:
    from toydlm.cli.lm_eval_cmd import run_lm_eval

    try:
        return run_lm_eval(argv)
    except UserError as e:
        print(f"toydlm lm-eval: error: {str(e).splitlines()[0]}", file=sys.stderr)
        return 2


def report_bug(command: str, exc: BaseException, argv: list[str]) -> Path:
    """Say that toydlm failed (not the user), and where the full traceback went."""
    path = Path(tempfile.gettempdir()) / f"toydlm-bug-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.txt"
    text = "".join(traceback.format_exception(exc))
    try:
        path.write_text(f"toydlm {' '.join(argv)}\n\n{text}")
        where = f"traceback written to {path}"
    except OSError:
        where = "the traceback could not be written; rerun with TOYDLM_DEBUG=1 to see it"
    first = (str(exc).splitlines() or [""])[0]
    print(f"toydlm {command}: internal error (a bug in toydlm, not a mistake in your input): "
          f"{type(exc).__name__}: {first}\n  {where}; please report it", file=sys.stderr)
    return path


if __name__ == "__main__":
    sys.exit(main())
