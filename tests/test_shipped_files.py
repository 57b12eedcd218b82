"""Shipped text (results, docs, README, paper) carries no machine paths and no work-log wording.

A clone of the project must not name one machine's folders (`/root/.cache/...`, `/work/...`) and must
read as a project, not as a log of how it was built ("issue 17", "our brief", "this session").
Model-written and data-set text inside stored JSON (the values of `"text"`, `"users"`, ... keys) is
quoted material, not the project's own words, and is not scanned.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
TEXT_SUFFIXES = (".json", ".md", ".txt", ".csv")
SINGLE_FILES = ("README.md", "paper/paper.md", "paper/paper.template.md")

# An absolute path: a machine root folder starting a path (not inside a URL or a relative path: the
# character before the slash is not a word character, `.`, `/`, `~` or `-`), or a Windows drive.
MACHINE_PATH = re.compile(
    r"(?<![\w.:/~-])/(?:root|home/[\w.-]+|work|tmp|Users|opt|mnt|var/folders|private/var)/"
    r"|(?<![\w\\])[A-Z]:\\{1,2}[\w$ .-]{2,}\\"
)
# Work-log wording; each names what it catches. An issue number is a citation (kept) when a project or
# repository names its tracker just before it: "Dream issue #51", "LLaDA issues #46", "lm-eval issue 1234".
WORK_LOG = {
    "issue number": re.compile(r"\bissues? #?\d+\b", re.IGNORECASE),
    "the issue's": re.compile(r"\bthe issue's\b", re.IGNORECASE),
    "brief": re.compile(r"\bour brief\b|\bthe brief (?:said|says|asked|asks)\b", re.IGNORECASE),
    "session": re.compile(r"\bthis session\b|\bthe session had\b", re.IGNORECASE),
    "time left": re.compile(r"\btime left\b", re.IGNORECASE),
    "tool corpus": re.compile(r"\bissues[- ]corpus\b", re.IGNORECASE),
}
CITED_TRACKER = re.compile(r"(?:Dream|LLaDA|lm-eval|lm-evaluation-harness|transformers|MDLM|ReMDM|[\w.-]+/[\w.-]+)\s*$",
                           re.IGNORECASE)
# JSON keys whose values a model wrote or a data set supplied (responses, user turns, prefills): quoted
# material, not scanned (a model's answer may well contain "/tmp/virus.exe").
QUOTED_KEYS = frozenset({"text", "users", "prefills", "instruction", "response", "responses", "completion"})


def machine_paths(line: str) -> list[str]:
    """The absolute machine paths on one line (each match's start), empty when none."""
    return [m.group(0) for m in MACHINE_PATH.finditer(line)]


def work_log_words(line: str, before: str = "") -> list[str]:
    """The work-log phrases on one line, as `<rule>: <match>`. An issue number cited with its project is kept;
    `before` (the previous line) lets a citation wrapped across two lines count as one."""
    hits = []
    for rule, pat in WORK_LOG.items():
        for m in pat.finditer(line):
            if rule == "issue number" and CITED_TRACKER.search(f"{before} {line[: m.start()]}"):
                continue
            hits.append(f"{rule}: {m.group(0)}")
    return hits


def json_strings(obj: Any) -> Iterator[str]:
    """Every key and string value of parsed JSON, except the values under a quoted key (`QUOTED_KEYS`)."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield k
            if k not in QUOTED_KEYS:
                yield from json_strings(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from json_strings(v)
    elif isinstance(obj, str):
        yield obj


def line_of(text: str, s: str) -> int:
    """The line of a JSON file's text where the string `s` first appears (as JSON writes it), 0 if not found."""
    for ascii_only in (False, True):
        i = text.find(json.dumps(s, ensure_ascii=ascii_only)[1:-1])
        if i >= 0:
            return text.count("\n", 0, i) + 1
    return 0


def shipped_files(root: Path = ROOT) -> list[Path]:
    """Every shipped text file the scan covers: results/ and docs/ (json, md, txt, csv), README, the paper."""
    found = [p for d in ("results", "docs") for p in sorted((root / d).rglob("*"))
             if p.is_file() and p.suffix in TEXT_SUFFIXES]
    return found + [root / f for f in SINGLE_FILES if (root / f).is_file()]


def scan(path: Path, root: Path = ROOT) -> Iterator[str]:
    """`file:line: what` for every machine path and work-log phrase in one file (in a JSON file, in its keys and
    string values outside quoted material)."""
    rel, text = path.relative_to(root).as_posix(), path.read_text(encoding="utf-8", errors="replace")
    if path.suffix == ".json":
        units = [(s, "") for s in dict.fromkeys(json_strings(json.loads(text)))]
    else:
        lines = text.splitlines()
        units = list(zip(lines, [""] + lines[:-1]))
    for i, (s, before) in enumerate(units, 1):
        hits = [f"machine path {h!r}" for h in machine_paths(s)] + [repr(h) for h in work_log_words(s, before)]
        if hits:
            line = line_of(text, s) if path.suffix == ".json" else i
            yield from (f"{rel}:{line}: {h}" for h in hits)


@pytest.mark.parametrize("line", [
    '    "path": "/root/.cache/toydlm/weights/x",',
    '"judge": "/root/.cache/toydlm/weights/x"',
    "snapshots under `/work/.mirror`",
    "out_dir /home/alice/runs/a",
    "(/tmp/toydlm-x/cell.json)",
    '"C:\\\\Users\\\\bob\\\\weights"',
    "/Users/bob/code",
])
def test_machine_paths_are_flagged(line):
    assert machine_paths(line)


@pytest.mark.parametrize("line", [
    "see docs/design.md", "https://github.com/x/y", "https://example.org/tmp/work/", "runs/work/x.json",
    "`results/real_ar_cells/qwen/judged/x.json`", "~/.cache/toydlm", "and/or its sha256", "a:\\n b",
    "$TOYDLM_CACHE/weights/<name>",
])
def test_relative_paths_and_urls_are_not_flagged(line):
    assert not machine_paths(line)


@pytest.mark.parametrize("line", [
    "# SRI on real AR checkpoints (issue 17)", "see issue #3", "misses the issue's goal", "Differs from our brief.",
    "more than this session had left", "the time left was short", "via issues corpus",
])
def test_work_log_words_are_flagged(line):
    assert work_log_words(line)


@pytest.mark.parametrize("line", [
    "as quoted in Dream issue #51", "## 3. LLaDA issues #46 and #137", "LLaDA issue #72).",
    "https://github.com/DreamLM/Dream/issues/51", "ML-GSAI/LLaDA issue 72", "the issue author",
    "a brief refusal", "the project's goal (AUROC >= 0.90)",
])
def test_citations_and_plain_words_are_not_flagged(line):
    assert not work_log_words(line)


def test_model_text_in_a_cell_is_not_scanned_but_the_rest_is(tmp_path):
    cell = {"spec": {"prefills": ["C:\\Users\\x\\"]}, "judge": {"path": "/root/x/y"},
            "samples": [{"text": "temp_file = \"/tmp/virus.exe\"", "length": 3}]}
    (tmp_path / "cell.json").write_text(json.dumps(cell, indent=2) + "\n")
    assert list(scan(tmp_path / "cell.json", tmp_path)) == ["cell.json:8: machine path '/root/'"]


def test_a_citation_wrapped_over_two_lines_is_kept(tmp_path):
    (tmp_path / "a.md").write_text("decoding (Dream\nissue #72). Then\nsee issue 17.\n")
    assert list(scan(tmp_path / "a.md", tmp_path)) == ["a.md:3: 'issue number: issue 17'"]


def test_shipped_files_carry_no_machine_paths_or_work_log_words():
    files = shipped_files()
    assert any(p.name == "real_ar.json" for p in files) and any(p.parent.name == "docs" for p in files)
    hits = [h for p in files for h in scan(p)]
    assert not hits, f"{len(hits)} hits in shipped files:\n" + "\n".join(hits)
