"""Output paths are checked before any work starts, so a typo never costs a training run."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from toydlm.errors import UserError


def check_output_dir(path: str | Path, flag: str = "--out") -> Path:
    """A folder that exists or can be created, and that we can write into."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise UserError(f"{flag} {str(path)!r} is a file; give a folder")
    try:
        p.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=p, prefix=".toydlm-write-check."):
            pass
    except OSError as e:
        raise UserError(f"cannot write to {flag} {str(path)!r}: {e.strerror or e}") from None
    return p


def check_output_file(path: str | Path, suffix: str | None = None, flag: str = "--out") -> Path:
    """A file path whose folder is writable (the file itself is written later, atomically)."""
    p = Path(path)
    if suffix is not None and p.suffix != suffix:
        raise UserError(f"{flag} must end in {suffix}, got {str(path)!r}")
    if p.is_dir():
        raise UserError(f"{flag} {str(path)!r} is a folder; give a file name")
    check_output_dir(p.parent if str(p.parent) else Path(os.curdir), flag=f"the folder of {flag}")
    return p
