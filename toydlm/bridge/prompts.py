"""Prompt files for real-checkpoint runs: JSON list, JSONL or CSV rows with an `instruction`.

The prompt sets shipped in `toydlm/data/prompts/` (sources and licences in its README) are
selected by name; any other value is a file path.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from toydlm.errors import UserError

PROMPT_DIR = Path(__file__).resolve().parent.parent / "data" / "prompts"
PROMPT_SETS = {  # name -> file in PROMPT_DIR
    "advbench": "advbench.json",
    "harmbench": "harmbench_test.json",
    "jailbreakbench": "jailbreakbench.json",
    "strongreject": "strongreject.json",
    "harmless": "harmless_val.json",
}


def prompt_set_path(name_or_path: str | Path) -> Path:
    """The shipped file of a named prompt set, or the given path unchanged."""
    key = str(name_or_path)
    return PROMPT_DIR / PROMPT_SETS[key] if key in PROMPT_SETS else Path(name_or_path)


def _row(obj, where: str) -> str:
    if not isinstance(obj, dict):
        raise UserError(f"{where}: expected an object with an 'instruction' field, got {type(obj).__name__}")
    ins = obj.get("instruction")
    if not isinstance(ins, str) or not ins.strip():
        raise UserError(f"{where}: missing or empty 'instruction' field")
    return ins


def load_prompts(path: str | Path, limit: int | None = None) -> list[str]:
    """All instructions of a prompt set (a shipped name or a file), in order; a malformed row
    raises naming its line."""
    p = prompt_set_path(path)
    if not p.is_file():
        raise UserError(f"prompt file not found: {p} (or name a shipped set: {', '.join(PROMPT_SETS)})")
    text = p.read_text(encoding="utf-8")
    suffix = p.suffix.lower()
    out: list[str] = []
    if suffix == ".jsonl":
        for i, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise UserError(f"{p}:{i}: not valid JSON ({e.msg})") from None
            out.append(_row(obj, f"{p}:{i}"))
    elif suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise UserError(f"{p}:{e.lineno}: not valid JSON ({e.msg})") from None
        if not isinstance(data, list):
            raise UserError(f"{p}: expected a JSON list of objects")
        # line numbers of each top-level object: the line where it starts
        starts = _object_lines(text)
        for j, obj in enumerate(data):
            line = starts[j] if j < len(starts) else "?"
            out.append(_row(obj, f"{p}:{line} (item {j})"))
    elif suffix == ".csv":
        reader = csv.DictReader(text.splitlines())
        if reader.fieldnames is None or "instruction" not in reader.fieldnames:
            raise UserError(f"{p}:1: CSV header needs an 'instruction' column, got {reader.fieldnames}")
        for i, row in enumerate(reader, 2):
            out.append(_row(row, f"{p}:{i}"))
    else:
        raise UserError(f"{p}: unsupported prompt file type {suffix!r} (use .json, .jsonl or .csv)")
    if not out:
        raise UserError(f"{p}: no prompts")
    return out[:limit] if limit else out


def _object_lines(text: str) -> list[int]:
    """Line numbers where each top-level object of a JSON list begins."""
    lines, depth, line, in_str, esc = [], 0, 1, False, False
    for ch in text:
        if ch == "\n":
            line += 1
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
            continue
        if ch == '"':
            in_str = True
        elif ch in "[{":
            depth += 1
            if ch == "{" and depth == 2:
                lines.append(line)
        elif ch in "]}":
            depth -= 1
    return lines
