"""The `toydlm` command line: a thin layer over the library.

User mistakes (bad options, bad configs, missing files) print one line and exit 2; no
traceback. Each subcommand lives in its own module with a `register(subparsers)` function.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from toydlm.hostdevices import split_host_cpu

# modules under toydlm.cli that register subcommands, in help order
COMMANDS = ["grammar_cmd", "train_cmd", "sample_cmd", "run_cmd", "bridge_cmd", "bench_cmd"]


class UserError(Exception):
    """A mistake in the user's input: reported in one line, exit status 2."""


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
        try:
            mod = importlib.import_module(f"toydlm.cli.{name}")
        except ModuleNotFoundError as e:
            if e.name == f"toydlm.cli.{name}":
                continue  # not built yet
            raise
        mod.register(sub)
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
    except ValueError as e:
        print(f"toydlm: error: {e}", file=sys.stderr)
        return 2
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        getattr(args, "_leaf", parser).error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return int(args.func(args) or 0)
    except (UserError, ValueError, FileNotFoundError) as e:
        if os.environ.get("TOYDLM_DEBUG"):
            raise
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        print(f"toydlm {args.command}: error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"toydlm {args.command}: interrupted (finished work was saved)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
