"""Closed forms of the v1 chain for time-homogeneous hazards (scalars or broadcast arrays).

Derivations are in theory/README.md; tests check each against the forward recursion.
"""

from __future__ import annotations

import numpy as np


def asr_ar(h, lam, T: int) -> np.ndarray:
    """AR limit (s = 1, rho = 0): ASR = P(X_T = H) = sum_k (1-h)^(k-1) h (1-lam)^(T-k).

    = h [(1-lam)^T - (1-h)^T] / (h - lam), and T h (1-h)^(T-1) when h = lam. With lam = 0 this is
    1 - (1-h)^T.
    """
    h, lam = np.broadcast_arrays(np.asarray(h, float), np.asarray(lam, float))
    a, b = 1 - lam, 1 - h
    d = h - lam
    near = np.abs(d) < 1e-7
    safe = np.where(near, 1.0, d)
    general = h * (a**T - b**T) / safe
    # expansion around h = lam: a^T - b^T = d * T * m^(T-1) + O(d^3), m = (a + b) / 2
    m = (a + b) / 2
    tangent = h * T * m ** (T - 1) * (1 + d**2 * (T - 1) * (T - 2) / (24 * np.where(m > 0, m, 1) ** 2))
    return np.where(near, tangent, general)


def asr_no_remask(h, s, r, T: int) -> np.ndarray:
    """ASR with rho = lam = 0 (H absorbing): 1 - [Q^T]_CC for the 2 x 2 block Q on {C, P}.

    Q = [[1-h, h(1-s)], [r, 1-s-r]] has real eigenvalues l+- = (tr +- sqrt(D)) / 2 with
    D = (Q_CC - Q_PP)^2 + 4 Q_CP Q_PC >= 0, and Sylvester's formula
    Q^T = [l+^T (Q - l- I) - l-^T (Q - l+ I)] / (l+ - l-), so
    [Q^T]_CC = [l+^T (a - l-) - l-^T (a - l+)] / (l+ - l-), a = 1 - h.
    At D = 0: [Q^T]_CC = l^(T-1) (T a - (T-1) l).
    """
    h, s, r = np.broadcast_arrays(*(np.asarray(x, float) for x in (h, s, r)))
    a, d = 1 - h, 1 - s - r
    b, c = h * (1 - s), r
    D = (a - d) ** 2 + 4 * b * c
    sq = np.sqrt(D)
    lp, lm = (a + d + sq) / 2, (a + d - sq) / 2
    small = sq < 1e-6
    gap = np.where(small, 1.0, sq)
    general = (lp**T * (a - lm) - lm**T * (a - lp)) / gap
    lam0 = (a + d) / 2
    degenerate = lam0 ** (T - 1) * (T * a - (T - 1) * lam0) if T >= 1 else np.ones_like(a)
    clean = np.where(small, degenerate, general)
    if np.any(small & (D > 0)):  # near-degenerate: fall back to the exact 2x2 power
        Q = np.stack([np.stack([a, b], -1), np.stack([c, d], -1)], -2)
        clean = np.where(small, np.linalg.matrix_power(Q, T)[..., 0, 0], clean)
    return 1 - clean


def stationary(h, s, r, rho) -> np.ndarray:
    """Stationary law on (C, P, H) for lam = 0, rho > 0, h > 0, s > 0: shape [..., 3].

    Balance of P: pi_C h (1-s) = pi_P (s + r); of H: pi_H rho = s (pi_C h + pi_P). With pi_C = 1:
    pi_P = h (1-s) / (s + r), pi_H = h s (1 + r) / (rho (s + r)); then normalise.
    """
    h, s, r, rho = np.broadcast_arrays(*(np.asarray(x, float) for x in (h, s, r, rho)))
    pc = np.ones_like(h)
    pp = h * (1 - s) / (s + r)
    ph = h * s * (1 + r) / (rho * (s + r))
    z = pc + pp + ph
    return np.stack([pc / z, pp / z, ph / z], -1)


def asr_stationary(h, s, r, rho) -> np.ndarray:
    """Long-run ASR (T -> infinity) with lam = 0, rho > 0: pi_P + pi_H of `stationary`."""
    pi = stationary(h, s, r, rho)
    return pi[..., 1] + pi[..., 2]


def hrr_limit(s, r) -> np.ndarray:
    """HRR as T -> infinity with rho = lam = 0, h > 0, s < 1: the first sojourn in P ends in C
    (a revision) with probability r / (s + r), and in the absorbing H otherwise."""
    s, r = np.broadcast_arrays(np.asarray(s, float), np.asarray(r, float))
    return r / (s + r)
