"""Layering of the library, read from the source (AST): no argparse below the CLI, and the real-model
wing's import rule.

- Library code never takes an argparse namespace: nothing under `toydlm/` outside `toydlm/cli/` imports
  argparse or has a parameter annotated `argparse.Namespace` (each stage takes its own frozen config).
- The wing (`toydlm/real/`): `kit` imports none of the analyses; `ar`, `sri` and `twins` import only the
  kit of the wing; `audit` may import `kit`, `ar`, `sri` and `twins` (it opens twins students); `harness`
  (the lm-eval model) may import `kit`, `audit` (whose decode path it runs) and `twins` (it opens
  students); nothing in
  the wing imports the CLI or the
  benchmarks, or another package's private (underscore) names; below the wing, only the CLI and the
  benchmarks import it.

Each checker runs on a source string, so the tests also show that it catches a planted violation.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
PACKAGE = ROOT / "toydlm"
WING = "toydlm.real"
ALLOWED = {"kit": set(), "ar": {"kit"}, "sri": {"kit"}, "twins": {"kit"}, "audit": {"kit", "ar", "sri", "twins"},
           "harness": {"kit", "audit", "twins"}}
NEVER = ("toydlm.cli", "toydlm.bench")  # the top layers: nothing in the wing imports them


def module_name(path: Path) -> str:
    """`toydlm/real/kit/store.py` -> `toydlm.real.kit.store`; a package's `__init__.py` is the package."""
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_package(module: str) -> bool:
    return (ROOT / module.replace(".", "/") / "__init__.py").is_file()


def package_of(module: str, is_pkg: bool = False) -> str:
    """The package a module lives in (a package's `__init__` lives in the package itself)."""
    return module if is_pkg else module.rpartition(".")[0]


def imports(source: str, module: str, is_pkg: bool = False) -> list[tuple[int, str, str | None]]:
    """(line, imported module, imported name or None) of every import anywhere in the source, lazy ones
    included; relative imports are resolved against `module`."""
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name, None) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                pkg = package_of(module, is_pkg).split(".")
                head = pkg[: len(pkg) - node.level + 1]
                base = ".".join(head + ([base] if base else []))
            out += [(node.lineno, base, a.name) for a in node.names]
    return out


NAMESPACE_NAMES = ("a", "args", "ns", "namespace", "opts", "options")  # how parsed arguments get passed on


def argparse_violations(source: str) -> list[str]:
    """Lines that import argparse or declare a parameter annotated as an argparse namespace, or an unannotated
    parameter named like one (`a`, `args`, ...) whose attributes the function reads (`a.work`, `a.model`)."""
    bad = [f"line {ln}: imports argparse" for ln, mod, _ in imports(source, "x")
           if mod == "argparse" or mod.startswith("argparse.")]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            a = node.args
            for arg in [*a.posonlyargs, *a.args, *a.kwonlyargs, a.vararg, a.kwarg]:
                if arg is None:
                    continue
                if arg.annotation is not None and "Namespace" in ast.unparse(arg.annotation):
                    bad.append(f"line {node.lineno}: parameter {arg.arg!r} is an argparse namespace")
                elif arg.annotation is None and arg.arg in NAMESPACE_NAMES and _reads_attributes(node, arg.arg):
                    bad.append(f"line {node.lineno}: parameter {arg.arg!r} is used as a namespace")
    return bad


def _reads_attributes(fn: ast.AST, name: str) -> bool:
    return any(isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id == name
               for n in ast.walk(fn))


def wing_part(module: str) -> str | None:
    """`toydlm.real.sri.plan` -> `sri`; None outside the wing's packages."""
    parts = module.split(".")
    return parts[2] if len(parts) > 2 and module.startswith(WING + ".") else None


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def wing_violations(source: str, module: str, is_pkg: bool = False) -> list[str]:
    """Breaches of the wing's import rule by one module of the wing."""
    me, home, bad = wing_part(module), package_of(module, is_pkg), []
    for ln, mod, name in imports(source, module, is_pkg):
        targets = [mod] + ([f"{mod}.{name}"] if name and mod == WING else [])
        for t in targets:
            part = wing_part(t)
            if part is not None and part != me and part not in ALLOWED.get(me, set()):
                bad.append(f"line {ln}: {me} imports {t} ({part})")
            if any(t == n or t.startswith(n + ".") for n in NEVER):
                bad.append(f"line {ln}: imports {t}")
        if mod.startswith("toydlm") and home not in (mod, package_of(mod)):
            private = [p for p in mod.split(".") if _private(p)] + ([name] if name and _private(name) else [])
            if private:
                bad.append(f"line {ln}: imports private {', '.join(private)} from {mod}")
    return bad


def library_files() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "cli" not in p.relative_to(PACKAGE).parts[:1])


def test_no_library_module_takes_or_imports_argparse():
    bad = [f"{p.relative_to(ROOT)}: {v}" for p in library_files() for v in argparse_violations(p.read_text())]
    assert len(library_files()) > 100 and not bad, "\n".join(bad)


def test_every_wing_package_is_under_the_rule():
    on_disk = {p.parent.name for p in (PACKAGE / "real").glob("*/__init__.py")}
    assert {"kit", "ar", "sri", "twins"} <= on_disk <= set(ALLOWED)


def test_the_wing_keeps_its_import_rule():
    files = sorted((PACKAGE / "real").rglob("*.py"))
    bad = [f"{p.relative_to(ROOT)}: {v}" for p in files
           for v in wing_violations(p.read_text(), module_name(p), p.name == "__init__.py")]
    assert len(files) > 40 and not bad, "\n".join(bad)


def test_below_the_wing_only_the_cli_and_the_benchmarks_import_it():
    below = [p for p in library_files() if p.relative_to(PACKAGE).parts[0] not in ("real", "bench")]
    bad = [f"{p.relative_to(ROOT)}: line {ln} imports {mod}" for p in below
           for ln, mod, name in imports(p.read_text(), module_name(p), p.name == "__init__.py")
           if mod == WING or mod.startswith(WING + ".")]
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("source, n_bad", [
    ("import argparse\n", 1),
    ("from argparse import Namespace\n", 1),
    ("def run(a: argparse.Namespace) -> None: ...\n", 1),
    ("def run(x, *, a: 'argparse.Namespace' = None) -> None: ...\n", 1),
    ("def run(a) -> None:\n    print(a.work, a.model)\n", 1),  # unannotated, used as a namespace
    ("def run(cfg, a, b) -> bool:\n    return cfg.work == a + b\n", 0),
    ("from dataclasses import dataclass\n\ndef run(cfg: 'JudgeConfig') -> None: ...\n", 0),
])
def test_the_argparse_check_catches_a_planted_violation(source, n_bad):
    assert len(argparse_violations(source)) == n_bad


@pytest.mark.parametrize("module, source, n_bad", [
    ("toydlm.real.sri.plan", "from toydlm.real.ar.plan import attacked\n", 1),
    ("toydlm.real.sri.plan", "from toydlm.real.kit.prompts import attacked\n", 0),
    ("toydlm.real.twins.report", "def f():\n    from toydlm.real.ar.figures import _plt\n", 2),  # layer + private
    ("toydlm.real.twins.report", "from toydlm.real import ar\n", 1),
    ("toydlm.real.twins.report", "from ..sri import plan\n", 1),
    ("toydlm.real.twins.report", "from .stages import NATURAL\n", 0),
    ("toydlm.real.twins.swap", "from toydlm.sampling import _rate\n", 1),
    ("toydlm.real.ar.report", "import toydlm.real.twins.report\n", 1),
    ("toydlm.real.ar.report", "from toydlm.real.audit.spec import AuditConfig\n", 1),
    ("toydlm.real.kit.store", "from toydlm.real.ar.plan import TIERS\n", 1),
    ("toydlm.real.kit.store", "from toydlm.bridge.run import load_setup\nfrom toydlm.weights import checkpoint\n", 0),
    ("toydlm.real.audit.plan", "from toydlm.real.ar.plan import INJECT_STEPS\nfrom toydlm.real.sri import plan\n", 0),
    ("toydlm.real.audit.plan", "from toydlm.real.twins.corpus import CorpusMix\n", 0),
    ("toydlm.real.twins.swap", "from toydlm.real.audit.spec import parse_sampler\n", 1),
    ("toydlm.real.audit.plan", "from toydlm.cli.audit_cmd import main\n", 1),
    ("toydlm.real.sri.load", "from toydlm.real.sri.anchors import _cache\n", 0),  # private within its package
    ("toydlm.real.sri.load", "from toydlm.real.kit._helpers import x\n", 1),
])
def test_the_wing_check_catches_a_planted_violation(module, source, n_bad):
    assert len(wing_violations(source, module)) == n_bad, wing_violations(source, module)
