"""Binomial confidence intervals from the Beta posterior (Jeffreys by default).

The Beta quantile is found by bisection on the regularised incomplete beta function
(`jax.scipy.special.betainc`, float32: quantiles good to ~1e-6, ample for intervals).
"""

from __future__ import annotations

import numpy as np


def beta_cdf(x, a, b) -> np.ndarray:
    """Regularised incomplete beta I_x(a, b), elementwise."""
    import jax.scipy.special as jsp  # lazy: importing jax costs a second

    x, a, b = np.broadcast_arrays(*(np.asarray(v, np.float32) for v in (x, a, b)))
    return np.asarray(jsp.betainc(a, b, x), np.float64)


def beta_ppf(q, a, b, iters: int = 40) -> np.ndarray:
    """Quantile of Beta(a, b) by bisection (vectorised)."""
    q, a, b = np.broadcast_arrays(*(np.asarray(v, np.float64) for v in (q, a, b)))
    lo, hi = np.zeros(q.shape), np.ones(q.shape)
    for _ in range(iters):
        mid = (lo + hi) / 2
        below = beta_cdf(mid, a, b) < q
        lo = np.where(below, mid, lo)
        hi = np.where(below, hi, mid)
    return (lo + hi) / 2


def beta_interval(k, n, conf: float = 0.95, prior: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Equal-tailed interval of the Beta(k + prior, n - k + prior) posterior (Jeffreys: 0.5).

    As is usual for the Jeffreys interval, the lower end is 0 when k = 0 and the upper 1 when k = n.
    NaN where n = 0.
    """
    k, n = np.broadcast_arrays(np.asarray(k, float), np.asarray(n, float))
    a, b = k + prior, n - k + prior
    alpha = (1 - conf) / 2
    ok = n > 0
    aa, bb = np.where(ok, a, 1.0), np.where(ok, b, 1.0)
    q = beta_ppf(np.array([alpha, 1 - alpha]).reshape((2,) + (1,) * aa.ndim), aa, bb)
    lo = np.where(k > 0, q[0], 0.0)
    hi = np.where(k < n, q[1], 1.0)
    return np.where(ok, lo, np.nan), np.where(ok, hi, np.nan)

