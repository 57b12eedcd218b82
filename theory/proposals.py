"""Proposals of Model v2's Monte Carlo: the token x0_l each masked position would take, and its confidence.

Temperature 1 samples the oracle marginal, temperature tau samples p^(1/tau), temperature 0 is
argmax (ties: `argmax_ties`). `eos_inf` removes EOS and renormalises (proposals *and*
confidences); a position whose marginal is all EOS then proposes uniformly among the tokens other
than EOS and `mask_id` (what softmax does to the lab oracle's all-equal -1e9 logits).

At temperature 1 no [n, L, V] marginal is formed (`SkeletonSampler`); the full proposal law is
computed, position by position, only where a step needs it (`masked_marginals`).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from theory.oracle import Mixture
from theory.sampler_spec import SamplerSpec
from theory.selection_rules import TIE_DECIMALS


class Proposals(NamedTuple):
    """Drawn tokens of m trajectories and what selection reads from them."""

    x0: np.ndarray  # [m, L] drawn tokens (meaningful at masked positions)
    confidence: np.ndarray  # [m, L] untempered (EOS-suppressed) probability of x0
    rows: np.ndarray | None = None  # [N] (row, position) pairs where the full law was formed,
    positions: np.ndarray | None = None  # sorted by position
    probs: np.ndarray | None = None  # [N, V] the proposal law there


def proposal_probs(marg: np.ndarray, spec: SamplerSpec, eos: int | None, inplace: bool = False) -> np.ndarray:
    """Untempered proposal law after EOS suppression ([..., V]): what the lab's confidences use."""
    if not spec.eos_inf:
        return marg
    if eos is None:
        raise ValueError("eos_inf needs the mixture's eos id (make_mixture(..., eos=...))")
    cp = marg if inplace else marg.copy()
    cp[..., eos] = 0.0
    tot = cp.sum(-1)
    dead = tot <= 0
    cp /= np.where(dead, 1.0, tot)[..., None]
    if dead.any():
        allowed = np.ones(cp.shape[-1])
        allowed[eos] = 0.0
        if spec.mask_id is not None:
            allowed[spec.mask_id] = 0.0
        cp[dead] = allowed / allowed.sum()
    return cp


def tempered(cp: np.ndarray, temperature: float) -> np.ndarray:
    """p^(1/tau), renormalised (tau > 0); zeros stay zero."""
    if temperature == 1:
        return cp
    with np.errstate(divide="ignore"):
        lg = np.log(cp) / temperature
    lg = lg - lg.max(-1, keepdims=True)
    q = np.exp(lg)
    return q / q.sum(-1, keepdims=True)


def argmax_set(cp: np.ndarray) -> np.ndarray:
    """Boolean [..., V]: the maximisers of cp (within 1e-12: mathematical ties are ties)."""
    return cp >= cp.max(-1, keepdims=True) - 10.0 ** -TIE_DECIMALS


def draw_proposals(cp: np.ndarray, spec: SamplerSpec, rng: np.random.Generator) -> np.ndarray:
    """x0 [...] from the proposal law of `cp` (temperature, argmax ties)."""
    if spec.temperature == 0:
        best = argmax_set(cp)
        if spec.argmax_ties == "lowest":
            return best.argmax(-1)
        q = best / best.sum(-1, keepdims=True)
    else:
        q = tempered(cp, spec.temperature)
    cdf = np.cumsum(q, -1)
    u = rng.random(q.shape[:-1] + (1,)) * cdf[..., -1:]
    return np.minimum((u >= cdf).sum(-1), q.shape[-1] - 1)


def masked_marginals(w: np.ndarray, need: np.ndarray, emit: np.ndarray) -> tuple[np.ndarray, ...]:
    """(rows, positions, marginals [N, V]) at the (row, position) pairs of `need` [m, L], grouped
    by position so that each position costs one matrix product."""
    L, V = emit.shape[1], emit.shape[2]
    positions, rows = np.nonzero(need.T)  # (position, row) pairs sorted by position
    bounds = np.searchsorted(positions, np.arange(L + 1))
    marg = np.empty((positions.size, V))
    for j in range(L):
        a, b = bounds[j], bounds[j + 1]
        if b > a:
            marg[a:b] = w[rows[a:b]] @ emit[:, j, :]
    return rows, positions, marg


def propose(mix: Mixture, spec: SamplerSpec, sampler: SkeletonSampler, w: np.ndarray, need: np.ndarray | None,
            rng: np.random.Generator) -> Proposals:
    """Draw x0 at every position from the posterior w [m, K]; form the full proposal law where `need`
    (None: nowhere). At temperature != 1 `need` must cover every masked position."""
    if need is None:
        x0 = sampler.draw(w, rng)
        return Proposals(x0, sampler.prob(w, x0))
    rows, positions, probs = masked_marginals(w, need, mix.emit)
    probs = proposal_probs(probs, spec, mix.eos, inplace=True)
    if spec.temperature == 1:
        x0 = sampler.draw(w, rng)
        return Proposals(x0, sampler.prob(w, x0), rows, positions, probs)
    m, L = need.shape
    x0 = np.zeros((m, L), np.int64)
    x0[rows, positions] = draw_proposals(probs, spec, rng)
    confidence = np.zeros((m, L))
    confidence[rows, positions] = probs[np.arange(positions.size), x0[rows, positions]]
    return Proposals(x0, confidence, rows, positions, probs)


class SkeletonSampler:
    """Temperature-1 proposals without the [n, L, V] marginals: x0_l ~ sum_k w_k emit[k, l, .] is
    drawn as a skeleton k_l ~ w per position, then x0_l ~ emit[k_l, l, .] (exact in law; positions
    independent given w). With eos_inf the law is the marginal conditioned on x0_l != EOS: the
    skeleton is drawn from w_k (1 - emit[k, l, EOS]) (renormalised per position), the token from
    emit[k_l, l, .] without EOS; positions with no non-EOS mass propose uniformly (see module doc)."""

    def __init__(self, mix: Mixture, spec: SamplerSpec):
        K, L, V = mix.emit.shape
        self.K, self.L, self.V = K, L, V
        self.emit_T = mix.emit.transpose(1, 2, 0).copy()  # [L, V, K]
        self.offset = 2.0 * np.arange(K * L).reshape(K, L)
        self.eos_inf = spec.eos_inf
        table = mix.emit
        if spec.eos_inf:
            if mix.eos is None:
                raise ValueError("eos_inf needs the mixture's eos id (make_mixture(..., eos=...))")
            self.eos = mix.eos
            self.non_eos = (1.0 - mix.emit[:, :, mix.eos]).T.copy()  # [L, K]
            table = mix.emit.copy()
            table[:, :, mix.eos] = 0.0
            table[table.sum(-1) == 0, 0] = 1.0  # all-EOS rows: never drawn (weight 0)
            allowed = np.ones(V, bool)
            allowed[mix.eos] = False
            if spec.mask_id is not None:
                allowed[spec.mask_id] = False
            self.allowed = np.flatnonzero(allowed)
        cdf = np.cumsum(table, -1)
        cdf /= cdf[..., -1:]
        self.flat = (cdf + self.offset[..., None]).ravel()

    def draw(self, w: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """x0 [m, L] given the skeleton posteriors w [m, K]."""
        m, L, K = w.shape[0], self.L, self.K
        if self.eos_inf:
            wl = w[:, None, :] * self.non_eos[None]  # [m, L, K]
            cw = np.cumsum(wl, -1)
            u = rng.random((m, L, 1)) * cw[..., -1:]
            k = np.minimum((u >= cw).sum(-1), K - 1)
            dead = cw[..., -1] <= 0
        else:
            cw = np.cumsum(w, -1)
            u = rng.random((m, L, 1)) * cw[:, None, -1:]
            k = np.minimum((u >= cw[:, None, :]).sum(-1), K - 1)  # [m, L]
        q = self.offset[k, np.arange(L)] + rng.random((m, L))
        v = np.searchsorted(self.flat, q, side="right") - (k * L + np.arange(L)) * self.V
        x0 = np.clip(v, 0, self.V - 1)
        if self.eos_inf and dead.any():
            di, dl = np.nonzero(dead)
            x0[di, dl] = self.allowed[rng.integers(0, self.allowed.size, di.size)]
        return x0

    def prob(self, w: np.ndarray, x0: np.ndarray) -> np.ndarray:
        """Confidence: the (EOS-suppressed, renormalised) marginal probability of x0 [m, L]."""
        L = self.L
        p = np.einsum("mlk,mk->ml", self.emit_T[np.arange(L), x0], w)
        if not self.eos_inf:
            return p
        mass = w @ self.non_eos.T
        return np.where(mass > 0, p / np.where(mass > 0, mass, 1.0), 1.0 / self.allowed.size)
