"""The README's two quickstart commands stay true: CI runs the README's test command verbatim."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def quickstart() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = text.split("## Quickstart", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    return [line.strip() for line in block.strip().splitlines() if line.strip()]


def test_quickstart_is_exactly_two_commands_and_ci_runs_the_test_one():
    cmds = quickstart()
    assert len(cmds) == 2
    assert cmds[0].endswith("toydlm run") and "pytest" in cmds[1]
    assert cmds[1] in (ROOT / ".ci" / "run").read_text()
