"""Atomic writes and provenance: results and checkpoints are never left half-written."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np


def cache_dir() -> Path:
    """`$TOYDLM_CACHE`, default `~/.cache/toydlm`: trained models and downloaded weights live under it."""
    return Path(os.environ.get("TOYDLM_CACHE", Path.home() / ".cache" / "toydlm"))


def env_switch(name: str, default: bool) -> bool:
    """An on/off setting from the environment: `$name` is 0 or 1 (unset: `default`); UserError otherwise."""
    from toydlm.errors import UserError

    env = os.environ.get(name, "1" if default else "0")
    if env not in ("0", "1"):
        raise UserError(f"{name}={env!r}: must be 0 or 1")
    return env == "1"


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write to a temp file in the same folder, fsync, then rename over the target."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def file_sha256(path: str | Path) -> str:
    """The sha256 of a file's bytes, read in 4 MiB blocks (a multi-GB checkpoint never sits in memory)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return _jsonable(x.tolist())
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.floating, float)):
        v = float(x)
        return None if v != v else v  # NaN -> null keeps the JSON standard
    if isinstance(x, np.bool_):
        return bool(x)
    if hasattr(x, "shape") and hasattr(x, "dtype"):  # jax arrays
        return _jsonable(np.asarray(x))
    return x


def to_jsonable(x: Any) -> Any:
    """Plain-JSON form of numpy/JAX values (NaN becomes null)."""
    return _jsonable(x)


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(to_jsonable(obj), indent=2, sort_keys=False) + "\n")


def package_versions() -> dict[str, str]:
    out = {}
    for name in ("toydlm", "jax", "jaxlib", "flax", "optax", "numpy", "torch", "transformers"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def git_revision() -> str | None:
    """The checkout's commit (with `+dirty` when uncommitted changes exist), or None."""
    root = Path(__file__).resolve().parent.parent
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                             timeout=5).stdout.strip()
        if not rev:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return rev + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def read_json_or_none(path: str | Path, what: str = "result") -> Any:
    """Parsed JSON at `path`; None when it is absent, or corrupt (deleted with a warning, so it is recomputed)."""
    import warnings

    path = Path(path)
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError, OSError):
        warnings.warn(f"{what} {path} is corrupt; recomputing it", stacklevel=3)
        path.unlink(missing_ok=True)
        return None


def provenance(seed: int | None = None, config: Any = None) -> dict:
    """What every result file records: config, seed, versions, git revision."""
    return {"config": to_jsonable(config), "seed": seed, "versions": package_versions(),
            "git_revision": git_revision()}
