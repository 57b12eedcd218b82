"""Input validation for the v1 chain: probabilities in [0, 1], rows summing to one, equal lengths.

Every error names the offending parameter, its index and its value, so a caller with a batch of
thousands of parameter sets can find the bad one.
"""

from __future__ import annotations

import numpy as np

STATES = ("C", "P", "H", "R")
NAMES = ("h", "s", "r", "rho", "lam")
_TOL = 1e-9


def _first_bad(mask: np.ndarray) -> tuple[int, ...]:
    return tuple(int(i) for i in np.argwhere(mask)[0])


def _fmt(idx: tuple[int, ...]) -> str:
    return "[" + ", ".join(str(i) for i in idx) + "]"


def check_probability(name: str, x: np.ndarray) -> None:
    """Raise ValueError naming the first entry of `x` that is not a probability (NaN included)."""
    bad = ~((x >= 0.0) & (x <= 1.0))
    if bad.any():
        idx = _first_bad(bad)
        raise ValueError(f"{name}{_fmt(idx)} = {float(x[idx])!r} is outside [0, 1]")


def as_step_arrays(**arrays) -> dict[str, np.ndarray]:
    """Convert per-step arrays to float64, check a shared step axis T and broadcast leading dims."""
    out: dict[str, np.ndarray] = {}
    lengths: dict[str, int] = {}
    for name, value in arrays.items():
        try:
            a = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{name} is not a numeric array: {e}") from None
        if a.ndim == 0:
            raise ValueError(f"{name} = {a.item()!r} has no step axis: pass an array of length T")
        if a.shape[-1] == 0:
            raise ValueError(f"{name} has length 0: need at least one step")
        check_probability(name, a)
        out[name] = a
        lengths[name] = a.shape[-1]
    ref_name, ref_T = next(iter(lengths.items()))
    for name, T in lengths.items():
        if T != ref_T:
            raise ValueError(
                f"mismatched lengths: {name} has T={T} steps (axis -1) but {ref_name} has T={ref_T}"
            )
    try:
        shape = np.broadcast_shapes(*(a.shape for a in out.values()))
    except ValueError:
        shapes = ", ".join(f"{n}{tuple(a.shape)}" for n, a in out.items())
        raise ValueError(f"leading batch dimensions do not broadcast: {shapes}") from None
    return {n: np.broadcast_to(a, shape) for n, a in out.items()}


def check_rows(p: dict[str, np.ndarray]) -> None:
    """Rows P (s + r) and H (rho + lam) must not exceed one; row C always sums to one."""
    for a, b, row in (("s", "r", "P"), ("rho", "lam", "H")):
        tot = p[a] + p[b]
        bad = tot > 1.0 + _TOL
        if bad.any():
            idx = _first_bad(bad)
            raise ValueError(
                f"row {row} of step index {idx[-1]} does not sum to one: "
                f"{a}{_fmt(idx)} + {b}{_fmt(idx)} = {float(p[a][idx])!r} + {float(p[b][idx])!r}"
                f" = {float(tot[idx])!r} > 1"
            )


def check_start(start: str) -> int:
    """Index of a start state name; ValueError for anything but C, P, H, R."""
    if not isinstance(start, str) or start not in STATES:
        raise ValueError(f"unknown start state {start!r}: expected one of {', '.join(STATES)}")
    return STATES.index(start)


def validated(h, s, r, rho, lam, start: str = "C") -> tuple[dict[str, np.ndarray], int]:
    """All checks of `theory.predict`'s input; returns broadcast float64 arrays and the start index."""
    i0 = check_start(start)
    p = as_step_arrays(h=h, s=s, r=r, rho=rho, lam=lam)
    check_rows(p)
    return p, i0
