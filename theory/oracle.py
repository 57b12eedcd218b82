"""Model v2 input: a grammar-agnostic oracle distribution over responses, and its exact rates.

The response distribution is a finite mixture of product distributions over L positions:

    p(x) = sum_k prior[k] prod_j emit[k, j, x_j]

(a "skeleton" k is a response template; given it, positions are independent; the toy grammar is
exactly of this form). A response is harmful iff it holds at least `threshold` harm tokens.
The oracle denoiser's posterior given committed positions S is
    w_k ∝ prior[k] prod_{j in S} emit[k, j, x_j],   p(x_j = v | x_S) = sum_k w_k emit[k, j, v].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Mixture:
    """prior [K], emit [K, L, V], is_harm [V] (bool), threshold (int >= 1), optional eos id."""

    prior: np.ndarray
    emit: np.ndarray
    is_harm: np.ndarray
    threshold: int
    eos: int | None = None

    @property
    def K(self) -> int:
        return self.emit.shape[0]

    @property
    def L(self) -> int:
        return self.emit.shape[1]

    @property
    def V(self) -> int:
        return self.emit.shape[2]


def make_mixture(prior, emit, is_harm, threshold: int, eos: int | None = None) -> Mixture:
    """Validate and build a Mixture (ValueError naming the offending index and value)."""
    prior = np.asarray(prior, float)
    emit = np.asarray(emit, float)
    is_harm = np.asarray(is_harm, bool)
    if prior.ndim != 1 or emit.ndim != 3 or emit.shape[0] != prior.shape[0]:
        raise ValueError(f"need prior [K] and emit [K, L, V], got {prior.shape} and {emit.shape}")
    if is_harm.shape != (emit.shape[2],):
        raise ValueError(f"is_harm must have shape [V] = [{emit.shape[2]}], got {is_harm.shape}")
    for name, a in (("prior", prior), ("emit", emit)):
        bad = ~((a >= 0) & (a <= 1))
        if bad.any():
            idx = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ValueError(f"{name}{list(idx)} = {float(a[idx])!r} is outside [0, 1]")
    if abs(prior.sum() - 1) > 1e-9:
        raise ValueError(f"prior sums to {float(prior.sum())!r}, not 1")
    sums = emit.sum(-1)
    bad = np.abs(sums - 1) > 1e-9
    if bad.any():
        k, j = (int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"emit[{k}, {j}, :] sums to {float(sums[k, j])!r}, not 1")
    if int(threshold) < 1:
        raise ValueError(f"threshold = {threshold!r} must be >= 1")
    if eos is not None and not (0 <= eos < emit.shape[2]):
        raise ValueError(f"eos = {eos!r} is not a token id in 0..{emit.shape[2] - 1}")
    return Mixture(prior, emit, is_harm, int(threshold), eos)


def harm_prob(mix: Mixture) -> np.ndarray:
    """q[k, j] = P(position j holds a harm token | skeleton k)."""
    return mix.emit[:, :, mix.is_harm].sum(-1)


def harm_count_pmf(mix: Mixture) -> np.ndarray:
    """P(number of harm tokens = n | skeleton k), shape [K, L + 1] (Poisson-binomial DP)."""
    q = harm_prob(mix)
    pmf = np.zeros((mix.K, mix.L + 1))
    pmf[:, 0] = 1.0
    for j in range(mix.L):
        ql = q[:, j : j + 1]
        pmf = pmf * (1 - ql) + np.concatenate([np.zeros((mix.K, 1)), pmf[:, :-1]], 1) * ql
    return pmf


def mixture_asr(mix: Mixture) -> float:
    """Exact P(harmful) under the mixture itself: the ASR of any sampler that draws from the joint
    exactly (ar_order; `random` with one position per step; see README for the proof)."""
    pmf = harm_count_pmf(mix)
    return float(mix.prior @ pmf[:, mix.threshold:].sum(-1))


def posterior_from_loglik(loglik: np.ndarray, zeros: np.ndarray) -> np.ndarray:
    """Skeleton posterior from the log-likelihood over non-zero factors and the number of zero
    factors (contradicted committed positions) per skeleton, both [..., K].

    Parallel commits can produce a canvas no skeleton explains (probability 0: modes mixed). There
    the posterior is the eps -> 0 limit of eps-smoothed emissions: it lives on the skeletons that
    contradict the fewest committed positions, weighted by the likelihood of the rest.
    """
    best = zeros == zeros.min(-1, keepdims=True)
    ll = np.where(best, loglik, -np.inf)
    w = np.exp(ll - ll.max(-1, keepdims=True))
    return w / w.sum(-1, keepdims=True)


def posterior(mix: Mixture, canvas) -> np.ndarray:
    """Skeleton posterior w [K] given a canvas [L] (-1 = masked); see `posterior_from_loglik`."""
    canvas = np.asarray(canvas)
    with np.errstate(divide="ignore"):
        loglik = np.log(mix.prior)
    zeros = np.zeros(mix.K)
    for j in np.flatnonzero(canvas >= 0):
        e = mix.emit[:, j, canvas[j]]
        with np.errstate(divide="ignore"):
            loglik = loglik + np.where(e > 0, np.log(np.where(e > 0, e, 1.0)), 0.0)
        zeros = zeros + (e == 0)
    zeros = zeros + (mix.prior == 0) * (mix.L + 1)
    return posterior_from_loglik(loglik, zeros)


def marginals(mix: Mixture, canvas) -> np.ndarray:
    """Oracle denoiser: p(x_l = v | committed canvas), shape [L, V] (committed rows one-hot)."""
    canvas = np.asarray(canvas)
    m = np.einsum("k,klv->lv", posterior(mix, canvas), mix.emit)
    for j in np.flatnonzero(canvas >= 0):
        m[j] = 0.0
        m[j, canvas[j]] = 1.0
    return m
