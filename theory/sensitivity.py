"""Exact sensitivities of v1's ASR and the monotonicity conditions (property 4 of docs/theory-spec.md).

ASR = pi_0 M_1 ... M_T w with w = 1 on {P, H} (end rule) and 0 on {C, R}. Each M_t is affine in
each of s_t, r_t, rho_t, lam_t (and in h_t for fixed s_t), so ASR is affine in each of them and

    dASR/dtheta_t = pi_{t-1}^T (dM_t/dtheta_t) W_t,   W_t = M_{t+1} ... M_T w

is the exact slope (finite differences of any size agree). W_t(x) = P(harmful at T | X_t = x).
Hence, exactly:
  ASR non-decreasing in s_t  <=>  (pi_{t-1}(C) h_t + pi_{t-1}(P)) (W_t(H) - W_t(P)) >= 0
  ASR non-increasing in r_t  <=>  pi_{t-1}(P) (W_t(P) - W_t(C)) >= 0
Sufficient conditions proved in README.md: for s_t, lam_u = 0, rho_u <= r_u and h_u + rho_u <= 1
for all u > t (in particular rho = lam = 0 always); for r_t with rho = lam = 0, h_u + r_u <= 1
for all u > t.
"""

from __future__ import annotations

import numpy as np

from theory._validate import validated
from theory.chain import C, H, P, R, _matrices, forward


def harm_value(h, s, r, rho, lam) -> np.ndarray:
    """W_t(x) = P(X_T in {P, H} | X_t = x) for t = 0..T; shape [..., T + 1, 4]."""
    p, _ = validated(h, s, r, rho, lam)
    M = _matrices(p["h"], p["s"], p["r"], p["rho"], p["lam"])
    T = M.shape[-3]
    W = np.zeros(M.shape[:-3] + (T + 1, 4))
    W[..., T, P] = W[..., T, H] = 1.0
    for t in range(T - 1, -1, -1):
        W[..., t, :] = np.einsum("...ij,...j->...i", M[..., t, :, :], W[..., t + 1, :])
    return W


def asr_gradient(h, s, r, rho, lam, start: str = "C") -> dict[str, np.ndarray]:
    """Exact dASR/dtheta_t for theta in h, s, r, rho, lam (each [..., T]), with the others fixed.

    The r-, rho- and lam-rows are clipped at the boundary s + r = 1 / rho + lam = 1 only in the
    sense that the slope is that of the affine extension.
    """
    p, i0 = validated(h, s, r, rho, lam, start)
    pi = forward(p["h"], p["s"], p["r"], p["rho"], p["lam"], i0)["state_probs"][..., :-1, :]
    W = harm_value(h, s, r, rho, lam)[..., 1:, :]
    pc, pp, ph = pi[..., C], pi[..., P], pi[..., H]
    wc, wp, wh, wr = W[..., C], W[..., P], W[..., H], W[..., R]
    return {
        "h": pc * (-wc + (1 - p["s"]) * wp + p["s"] * wh),
        "s": (pc * p["h"] + pp) * (wh - wp),
        "r": pp * (wc - wp),
        "rho": ph * (wc - wh),
        "lam": ph * (wr - wh),
    }


def monotone_in_s(h, s, r, rho, lam, start: str = "C") -> np.ndarray:
    """[..., T] booleans: ASR is non-decreasing in s_t (exact condition, with 1e-12 slack)."""
    return asr_gradient(h, s, r, rho, lam, start)["s"] >= -1e-12


def monotone_in_r(h, s, r, rho, lam, start: str = "C") -> np.ndarray:
    """[..., T] booleans: ASR is non-increasing in r_t (exact condition, with 1e-12 slack)."""
    return asr_gradient(h, s, r, rho, lam, start)["r"] <= 1e-12


def sufficient_s(h, r, rho, lam) -> np.ndarray:
    """[..., T] booleans: lam_u = 0, rho_u <= r_u and h_u + rho_u <= 1 for every u > t."""
    h, r, rho, lam = (np.asarray(x, float) for x in (h, r, rho, lam))
    ok = (lam == 0) & (rho <= r) & (h + rho <= 1)
    return _all_later(ok)


def sufficient_r(h, r, rho, lam) -> np.ndarray:
    """[..., T] booleans: rho_u = lam_u = 0 and h_u + r_u <= 1 for every u > t."""
    h, r, rho, lam = (np.asarray(x, float) for x in (h, r, rho, lam))
    ok = (rho == 0) & (lam == 0) & (h + r <= 1)
    return _all_later(ok)


def _all_later(ok: np.ndarray) -> np.ndarray:
    """out[..., t] = all(ok[..., u] for u > t) (0-based step index t)."""
    rev = np.flip(ok, -1)
    suffix = np.flip(np.logical_and.accumulate(rev, axis=-1), -1)  # all(ok[u] for u >= t)
    out = np.ones_like(ok)
    out[..., :-1] = suffix[..., 1:]
    return out
