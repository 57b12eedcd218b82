"""Per-step SRI anchors of a real checkpoint, cached with everything that decides them.

An anchor pair (compliance anchor, refusal anchor) is a `[T, D]` mean of pooled states over the
harmless prompts the model answered and the harmful prompts it refused. The cache file is named by
the checkpoint, but holds the full specification: the weights' sha256, the prompts, the sampler
settings and the pooling. Any difference recomputes the anchors and says why; nothing is reused on
a name alone.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from toydlm.io import atomic_write_bytes
from toydlm.real.kit.store import safe_name
from toydlm.sri.signal import compute_centres


def anchor_spec(weights_sha256: str, benign_cell: dict, harmful_cell: dict, pooling: str) -> dict:
    """What decides a checkpoint's anchors: its weights and the two anchor cells' full specs."""
    return {"weights_sha256": weights_sha256, "benign": benign_cell, "harmful": harmful_cell, "pooling": pooling}


def centres_from(benign_states: np.ndarray, benign_refused: np.ndarray, harmful_states: np.ndarray,
                 harmful_refused: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(compliance anchor, refusal anchor), each `[T, D]`: harmless prompts answered, harmful prompts refused."""
    return compute_centres(benign_states, ~np.asarray(benign_refused, bool), harmful_states, harmful_refused)


def _differences(old: dict, new: dict) -> list[str]:
    return sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))


def cached_anchors(path: Path, spec: dict, compute: Callable[[], tuple[np.ndarray, np.ndarray]],
                   log: Callable[[str], None] = print) -> tuple[np.ndarray, np.ndarray, bool]:
    """(compliance anchor, refusal anchor, reused): the stored pair when its spec equals `spec`, else
    `compute()` stored under `spec`, with a line saying what changed."""
    path = Path(path)
    if path.exists():
        with np.load(path) as z:
            old = json.loads(str(z["spec"]))
            if old == spec:
                return z["compliance"], z["refusal"], True
        log(f"anchors at {path} were made for other settings ({', '.join(_differences(old, spec))}): recomputing")
    comp, ref = compute()
    buf = io.BytesIO()
    np.savez(buf, compliance=comp, refusal=ref, spec=json.dumps(spec, sort_keys=True))
    atomic_write_bytes(path, buf.getvalue())
    return comp, ref, False


def anchor_path(root: Path, checkpoint: str) -> Path:
    """Where a checkpoint's anchors live (one file; its contents say what they were made from)."""
    return Path(root) / f"anchors-{safe_name(checkpoint)}.npz"
