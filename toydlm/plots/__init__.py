"""Figures (matplotlib, Agg backend)."""

from __future__ import annotations

import io
from pathlib import Path


def save_png(fig, path: str | Path, dpi: int = 110, tight: bool = False) -> Path:
    """Write a figure as PNG atomically (a crash never leaves half a file) and close it."""
    import matplotlib.pyplot as plt

    from toydlm.io import atomic_write_bytes

    buf = io.BytesIO()
    if not tight:
        fig.tight_layout()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight" if tight else None)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
    return Path(path)
