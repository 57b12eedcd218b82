"""Parametric model-side hazards as functions of the committed clean fraction c in [0, 1].

Condition (2) of the paper says the proposal hazard falls as committed clean content grows, so the
model-side hazards are indexed by c, not by the step index; then they transfer across step counts
and samplers. Each is logistic-linear, fitted by maximum likelihood (Newton / IRLS):

    h(c)      = sigmoid(a_h + b_h c)        P(leave C | in C)
    r'(c)     = sigmoid(a_r + b_r c)        P(P -> C | in P, not committed)     r = (1 - s) r'
    lam'(c)   = sigmoid(a_l + b_l c)        P(H -> R | in H, not re-masked)     lam = (1 - rho) lam'

The sampler-side s and rho never enter the model-side fit (r', lam' are conditional on them).
Standard errors come from the observed Fisher information.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from theory.chain import C, H, P, R
from theory.fit import check_states


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


@dataclass(frozen=True)
class Logistic:
    """p(c) = sigmoid(coef[0] + coef[1] c), with covariance `cov` of coef and data size `n`."""

    coef: np.ndarray
    cov: np.ndarray
    n: float

    def __call__(self, c) -> np.ndarray:
        c = np.asarray(c, float)
        return sigmoid(self.coef[0] + self.coef[1] * c)

    def band(self, c, conf_z: float = 1.96) -> tuple[np.ndarray, np.ndarray]:
        """Pointwise Wald band on the logit scale, mapped back to probabilities."""
        c = np.asarray(c, float)
        eta = self.coef[0] + self.coef[1] * c
        var = self.cov[0, 0] + 2 * c * self.cov[0, 1] + c**2 * self.cov[1, 1]
        sd = np.sqrt(np.maximum(var, 0))
        return sigmoid(eta - conf_z * sd), sigmoid(eta + conf_z * sd)

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """n coefficient vectors from the Gaussian approximation of the posterior, [n, 2]."""
        return rng.multivariate_normal(self.coef, self.cov, size=n, method="eigh")


def fit_logistic(x, k, n, ridge: float = 1e-6, iters: int = 100) -> Logistic:
    """ML fit of k ~ Binomial(n, sigmoid(a + b x)) on aggregated data (Newton with a tiny ridge,
    which keeps separable data, e.g. all-zero events, finite)."""
    x, k, n = (np.asarray(v, float).ravel() for v in (x, k, n))
    if not (len(x) == len(k) == len(n)):
        raise ValueError(f"x, k, n lengths differ: {len(x)}, {len(k)}, {len(n)}")
    bad = (k < 0) | (k > n)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"k[{i}] = {k[i]} is outside [0, n[{i}] = {n[i]}]")
    X = np.stack([np.ones_like(x), x], 1)
    tot = n.sum()
    p0 = (k.sum() + 0.5) / (tot + 1.0)
    beta = np.array([np.log(p0 / (1 - p0)), 0.0])
    for _ in range(iters):
        p = sigmoid(X @ beta)
        w = n * p * (1 - p)
        grad = X.T @ (k - n * p) - ridge * beta
        hess = (X * w[:, None]).T @ X + ridge * np.eye(2)
        step = np.linalg.solve(hess, grad)
        beta = beta + step
        if np.max(np.abs(step)) < 1e-10:
            break
    p = sigmoid(X @ beta)
    hess = (X * (n * p * (1 - p))[:, None]).T @ X + ridge * np.eye(2)
    return Logistic(beta, np.linalg.inv(hess), float(tot))


def _aggregate(c: np.ndarray, event: np.ndarray, at_risk: np.ndarray):
    x = c[at_risk]
    e = event[at_risk].astype(float)
    if x.size == 0:
        return np.zeros(0), np.zeros(0), np.zeros(0)
    u, inv = np.unique(np.round(x, 12), return_inverse=True)
    return u, np.bincount(inv, e, len(u)), np.bincount(inv, None, len(u)).astype(float)


@dataclass(frozen=True)
class HazardModel:
    """Fitted model-side hazards h(c), r'(c), lam'(c) (see module docstring)."""

    h: Logistic
    r_cond: Logistic
    lam_cond: Logistic

    def hazards(self, c, s, rho) -> dict[str, np.ndarray]:
        """Per-step h, r, lam for committed fractions c [..., T] (before each step) and a
        sampler's s, rho [..., T]: r = (1 - s) r'(c), lam = (1 - rho) lam'(c)."""
        s, rho = np.asarray(s, float), np.asarray(rho, float)
        return {"h": self.h(c), "r": (1 - s) * self.r_cond(c), "lam": (1 - rho) * self.lam_cond(c)}


def fit_hazard_model(states, committed_fraction) -> HazardModel:
    """Fit h(c), r'(c), lam'(c) from per-trajectory states [N, T + 1] and the committed clean
    fraction [N, T + 1] (value at column t = fraction committed after step t, so it is the
    covariate of the transition at step t + 1)."""
    a = check_states(states)
    c = np.asarray(committed_fraction, float)
    if c.shape != a.shape:
        raise ValueError(f"committed_fraction shape {c.shape} must equal states shape {a.shape}")
    x0, x1, cc = a[:, :-1], a[:, 1:], c[:, :-1]
    h = fit_logistic(*_aggregate(cc, x1 != C, x0 == C))
    r = fit_logistic(*_aggregate(cc, x1 == C, (x0 == P) & (x1 != H)))
    lam = fit_logistic(*_aggregate(cc, x1 == R, (x0 == H) & (x1 != C)))
    return HazardModel(h, r, lam)
