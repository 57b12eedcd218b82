"""A folder of finished cells, one JSON file per cell, keyed by everything that decides its samples.

A cell is written once, atomically, when all its samples exist; an interrupted run loses at most
the cell in progress and a rerun skips every finished one. The key hashes the checkpoint's sha256
(never its name alone), the prompts and prefills, the sampler settings and the seed.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from toydlm.io import atomic_write_text


def cell_key(spec: dict) -> str:
    """A short stable hash of a cell's full specification (a JSON-serialisable dict)."""
    blob = json.dumps(spec, sort_keys=True, ensure_ascii=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def safe_name(name: str) -> str:
    """A cell name as a portable file-name part: letters, digits, `_`, `.` and `-` only."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "cell"


class CellStore:
    """Finished cells under `root`: `get` a cell's stored record or None, `put` a finished one."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, spec: dict) -> Path:
        """`<name>-<key>.json`, the name reduced to a portable file-name alphabet (attacks carry free text)."""
        return self.root / f"{safe_name(spec['name'])}-{cell_key(spec)}.json"

    def get(self, spec: dict) -> dict | None:
        p = self.path(spec)
        if not p.exists():
            return None
        rec = json.loads(p.read_text())
        return rec if rec.get("spec") == spec else None

    def put(self, spec: dict, samples: list[dict], extra: dict | None = None) -> dict:
        rec = {"spec": spec, "samples": samples, **(extra or {})}
        atomic_write_text(self.path(spec), json.dumps(rec, ensure_ascii=False) + "\n")
        return rec
