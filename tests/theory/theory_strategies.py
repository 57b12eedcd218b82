"""Hypothesis strategies for v1 parameter sets (shared by the theory tests)."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

unit = st.one_of(st.floats(0.0, 1.0), st.sampled_from([0.0, 1.0, 0.5]))


@st.composite
def step_params(draw, T=None, rho_zero=False, lam_zero=False, max_T=6):
    """(h, s, r, rho, lam) arrays of one length T with valid rows (s + r <= 1, rho + lam <= 1)."""
    T = T if T is not None else draw(st.integers(1, max_T))
    vec = lambda: np.array(draw(st.lists(unit, min_size=T, max_size=T)))
    h, s = vec(), vec()
    r = (1 - s) * vec()
    rho = np.zeros(T) if rho_zero else vec()
    lam = np.zeros(T) if lam_zero else (1 - rho) * vec()
    return h, s, r, rho, lam


@st.composite
def homogeneous(draw, lo=0.05, hi=0.95):
    """Scalars (h, s, r, rho) bounded away from 0 and 1, with s + r <= 1."""
    f = st.floats(lo, hi)
    h, s, rho = draw(f), draw(f), draw(f)
    r = (1 - s) * draw(st.floats(0.0, 1.0))
    return h, s, r, rho
