"""Every experiment script at least imports and parses its arguments (`--help`).

A refactor once moved a helper that experiment 8 imported, and nothing noticed until the script
was next run; this catches that class of breakage without running the experiments.
"""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted(p for p in (ROOT / "experiments").glob("*.py") if not p.name.startswith("_"))


def test_the_scripts_are_found():
    assert len(SCRIPTS) >= 8


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_script_runs_only_under_a_main_guard(script):
    """The theory stage spawns worker processes, which re-import the calling script: importing must not run it."""
    body = ast.parse(script.read_text()).body
    guards = [n for n in body if isinstance(n, ast.If) and ast.unparse(n.test) == "__name__ == '__main__'"]
    assert len(guards) == 1, f"{script.name} needs one `if __name__ == \"__main__\":` guard"


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_script_imports_and_shows_its_help(script):
    p = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=300,
                       cwd=ROOT)
    assert p.returncode == 0, p.stderr[-2000:]
    assert "usage" in p.stdout.lower()
