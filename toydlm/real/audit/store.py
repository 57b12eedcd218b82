"""Finished batches and cells of an audit on disk, so an interrupted run resumes where it stopped.

A batch of rows is written atomically once decoded; a cell is written once every batch exists, and
its batch files are then removed. Keys hash the cell's whole specification (weights sha256, sampler,
prompts, seed, batch size, device and dtype), so a changed setting never reuses old samples. Rows
draw keys by their index in the cell, so a resumed cell has the same samples as an unbroken one.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from toydlm.io import atomic_write_text
from toydlm.real.kit.store import CellStore, cell_key, safe_name


class AuditStore:
    """`cell(spec)`: a finished cell's record or None; `batches(spec)`: the finished batches by first row."""

    def __init__(self, root: str | Path):
        self.cells = CellStore(Path(root) / "cells")
        self.partial = Path(root) / "cells" / "partial"

    def cell(self, spec: dict) -> dict | None:
        return self.cells.get(spec)

    def _dir(self, spec: dict) -> Path:
        return self.partial / f"{safe_name(spec['name'])}-{cell_key(spec)}"

    def batches(self, spec: dict) -> dict[int, dict]:
        """Finished batches by first row: `{samples, seconds}`."""
        out = {}
        d = self._dir(spec)
        for p in sorted(d.glob("batch_*.json")) if d.is_dir() else []:
            rec = json.loads(p.read_text())
            if rec.get("spec") == spec:
                out[int(rec["start"])] = {"samples": rec["samples"], "seconds": rec["seconds"]}
        return out

    def put_batch(self, spec: dict, start: int, samples: list[dict], seconds: float) -> None:
        rec = {"spec": spec, "start": start, "samples": samples, "seconds": seconds}
        atomic_write_text(self._dir(spec) / f"batch_{start:07d}.json", json.dumps(rec, ensure_ascii=False) + "\n")

    def finish(self, spec: dict, samples: list[dict], extra: dict) -> dict:
        rec = self.cells.put(spec, samples, extra)
        shutil.rmtree(self._dir(spec), ignore_errors=True)
        return rec
