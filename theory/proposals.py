"""Proposals of Model v2's Monte Carlo: the token x0_l each masked position would take, and its confidence.

Temperature 1 samples the oracle marginal, temperature tau samples p^(1/tau), temperature 0 is
argmax (ties: `argmax_ties`). `eos_inf` removes EOS and renormalises (proposals *and*
confidences); a position whose marginal is all EOS then proposes uniformly among the tokens other
than EOS and `mask_id` (what softmax does to the lab oracle's all-equal -1e9 logits).

At temperature 1 no [n, L, V] marginal is formed (`SkeletonSampler`); the full proposal law is
computed only where a step needs it (`masked_marginals`), from one product on the marginals' support
(`support_of`: the few tokens some skeleton emits at each position), which also gives the argmax draft
(`marginal_argmax`).
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


class Support(NamedTuple):
    """The columns of the oracle marginals that can be non-zero: position j's support (the tokens some
    skeleton emits there) is columns bounds[j]:bounds[j + 1], with `emit` restricted to them."""

    tokens: np.ndarray  # [C] token id of each column, position by position (ascending within one)
    bounds: np.ndarray  # [L + 1]
    emit: np.ndarray  # [K, C]


def support_of(emit: np.ndarray) -> Support:
    """The support table of emit [K, L, V]: the grammar's emissions are sparse (a handful of tokens per
    position), so marginals restricted to it cost a small fraction of the dense [K, V] products."""
    cols = [np.flatnonzero((emit[:, j] > 0).any(0)) for j in range(emit.shape[1])]
    bounds = np.cumsum([0] + [c.size for c in cols])
    table = np.concatenate([emit[:, j, c] for j, c in enumerate(cols)], 1)
    return Support(np.concatenate(cols), bounds, np.ascontiguousarray(table))


BLAS_THREAD_WORK = 65536 * 4  # OpenBLAS runs a product of m * n * k above this on several threads


def single_thread_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a @ b ([m, k] @ [k, n]) in row blocks small enough for BLAS to run each on one thread: the
    per-step products are small, and on a busy 2-core machine waking BLAS threads at every step (which
    then spin, waiting for more work) costs several times the product itself."""
    rows = max(1, BLAS_THREAD_WORK // max(1, a.shape[1] * b.shape[1]))
    if a.shape[0] <= rows:
        return a @ b
    out = np.empty((a.shape[0], b.shape[1]), np.result_type(a, b))
    for lo in range(0, a.shape[0], rows):
        np.matmul(a[lo:lo + rows], b, out=out[lo:lo + rows])
    return out


def masked_marginals(w: np.ndarray, need: np.ndarray, emit: np.ndarray,
                     support: Support | None = None) -> tuple[np.ndarray, ...]:
    """(rows, positions, marginals [N, V]) at the (row, position) pairs of `need` [m, L], sorted by
    position. One product w @ support.emit serves every position; columns outside a position's
    support are exactly 0 (what the dense sum of zero terms gives)."""
    support = support_of(emit) if support is None else support
    L, V = emit.shape[1], emit.shape[2]
    positions, rows = np.nonzero(need.T)  # (position, row) pairs sorted by position
    bounds = np.searchsorted(positions, np.arange(L + 1))
    on_support = single_thread_matmul(w, support.emit)  # [m, C]
    marg = np.zeros((positions.size, V))
    for j in range(L):
        a, b = bounds[j], bounds[j + 1]
        c0, c1 = support.bounds[j], support.bounds[j + 1]
        if b > a and c1 > c0:
            marg[a:b, support.tokens[c0:c1]] = on_support[rows[a:b], c0:c1]
    return rows, positions, marg


def marginal_argmax(w: np.ndarray, support: Support) -> np.ndarray:
    """[m, L] the lowest-id maximiser (within 1e-12, as `argmax_set`) of the oracle marginal at every
    position, read off the support: all of a marginal's mass is there, so its maximum (at least one
    over the support's size) is there too, and the support's columns are in ascending token order."""
    on_support = single_thread_matmul(w, support.emit)  # [m, C]
    starts = support.bounds[:-1]
    top = np.maximum.reduceat(on_support, starts, axis=1)  # [m, L]
    best = on_support >= np.repeat(top, np.diff(support.bounds), axis=1) - 10.0 ** -TIE_DECIMALS
    column = np.where(best, np.arange(support.tokens.size), support.tokens.size)
    return support.tokens[np.minimum.reduceat(column, starts, axis=1)]


def propose(mix: Mixture, spec: SamplerSpec, sampler: SkeletonSampler, w: np.ndarray, need: np.ndarray | None,
            rng: np.random.Generator, where: np.ndarray | None = None) -> Proposals:
    """Draw x0 from the posterior w [m, K] at every position, or only `where` ([m, L] bool: the masked
    positions; x0 = 0 elsewhere, the random stream unchanged); form the full proposal law where `need`
    (None: nowhere). At temperature != 1 `need` must cover every masked position."""
    if need is None:
        x0 = sampler.draw(w, rng, where)
        return Proposals(x0, sampler.prob(w, x0))
    rows, positions, probs = masked_marginals(w, need, mix.emit, sampler.support)
    probs = proposal_probs(probs, spec, mix.eos, inplace=True)
    if spec.temperature == 1:
        x0 = sampler.draw(w, rng, where)
        return Proposals(x0, sampler.prob(w, x0), rows, positions, probs)
    m, L = need.shape
    x0 = np.zeros((m, L), np.int64)
    x0[rows, positions] = draw_proposals(probs, spec, rng)
    confidence = np.zeros((m, L))
    confidence[rows, positions] = probs[np.arange(positions.size), x0[rows, positions]]
    return Proposals(x0, confidence, rows, positions, probs)


def count_at_most(cw: np.ndarray, q: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
    """How many entries of the nondecreasing row cw[rows] ([R, K]) are <= q (rows: [R, 1], i.e. each
    query row against its own cw row, unless given with q's shape): a vectorised binary search, equal to
    (q[..., None] >= cw[rows]).sum(-1) without the [..., K] comparison."""
    R, K = cw.shape
    flat = cw.ravel()
    base = (np.arange(R)[:, None] if rows is None else rows) * K
    count = np.zeros(q.shape, np.int64)
    step = 1 << (K.bit_length() - 1)  # the largest power of two <= K
    while step:
        cand = count + step
        count = np.where((cand <= K) & (flat[base + np.minimum(cand, K) - 1] <= q), cand, count)
        step >>= 1
    return count


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
        self.support = support_of(mix.emit)
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
        # the inverse-CDF table of every (skeleton, position), offset so that one search serves all; only
        # the entries of drawable tokens are kept (a zero entry repeats its predecessor: never the first
        # entry above a query), which makes the search table a small fraction of [K, L, V]
        drawable = (table > 0).ravel()
        self.flat = (cdf + self.offset[..., None]).ravel()[drawable]
        self.token = np.flatnonzero(drawable) % V
        self.block_end = np.cumsum(drawable.reshape(K * L, V).sum(-1))  # [K * L] end of each table in flat

    def draw(self, w: np.ndarray, rng: np.random.Generator, where: np.ndarray | None = None) -> np.ndarray:
        """x0 [m, L] given the skeleton posteriors w [m, K], drawn only `where` ([m, L] bool, None:
        everywhere; 0 elsewhere). The uniforms are drawn for every position either way: one stream."""
        m, L, K = w.shape[0], self.L, self.K
        rows, pos = np.nonzero(np.ones((m, L), bool) if where is None else where)
        if self.eos_inf:
            wl = w[:, None, :] * self.non_eos[None]  # [m, L, K]
            cw = np.cumsum(wl, -1)
            u = rng.random((m, L, 1)) * cw[..., -1:]
            k = np.minimum(count_at_most(cw.reshape(m * L, K), u[rows, pos, 0], rows * L + pos), K - 1)
            dead = cw[..., -1] <= 0
        else:
            cw = np.cumsum(w, -1)
            u = rng.random((m, L, 1)) * cw[:, None, -1:]
            k = np.minimum(count_at_most(cw, u[rows, pos, 0], rows), K - 1)
        q = self.offset[k, pos] + rng.random((m, L))[rows, pos]
        i = np.searchsorted(self.flat, q, side="right")
        x0 = np.zeros((m, L), np.int64)
        # a query rounded up onto the next table's start is the last token id (what clipping gave)
        x0[rows, pos] = np.where(i < self.block_end[k * L + pos], self.token[np.minimum(i, self.token.size - 1)],
                                 self.V - 1)
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
