"""Figure helpers the wing's reports share: pyplot on the Agg backend, and saving through `toydlm.plots`."""

from __future__ import annotations

from pathlib import Path

DPI = 120  # every figure of the real-model reports


def pyplot():
    """`matplotlib.pyplot` on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, out: Path, name: str) -> str:
    """Lay out, write `out/name` atomically and close the figure; its file name."""
    from toydlm.plots import save_png

    save_png(fig, Path(out) / name, dpi=DPI)
    return name
