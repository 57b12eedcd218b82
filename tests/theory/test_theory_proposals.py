"""Model v2's fast paths (support-restricted marginals, vectorised searches, incremental zero counts)
against the direct computations they replace."""

import numpy as np
import pytest

import theory
from theory.oracle_sim import Chunk, Tables, add_rows
from theory.proposals import (
    SkeletonSampler,
    argmax_set,
    count_at_most,
    marginal_argmax,
    masked_marginals,
    single_thread_matmul,
    support_of,
)
from theory.sampler_spec import SamplerSpec


def _sparse_mix(K=6, L=5, V=9, seed=0):
    """A mixture whose emissions put mass on a few tokens per (skeleton, position), some deterministic,
    with exact ties between tokens (the argmax's lowest-id rule matters)."""
    rng = np.random.default_rng(seed)
    emit = np.zeros((K, L, V))
    for k in range(K):
        for j in range(L):
            toks = rng.choice(V, rng.integers(1, 4), replace=False)
            emit[k, j, toks] = 1.0 if toks.size == 1 else rng.dirichlet(np.ones(toks.size))
    emit[0, 0] = 0.0
    emit[0, 0, [2, 5]] = 0.5  # a tie
    harm = np.arange(V) % 3 == 0
    return theory.make_mixture(np.full(K, 1.0 / K), emit, harm, 2, eos=V - 1)


def _posteriors(m, K, seed=1):
    rng = np.random.default_rng(seed)
    w = rng.random((m, K)) ** 4 * (rng.random((m, K)) < 0.7)
    w[:, 0] += 1e-3
    w[: m // 4] = 1.0 / K  # rows with the uniform posterior: ties in the marginals
    return w / w.sum(1, keepdims=True)


def test_support_marginals_equal_the_dense_marginals():
    mix = _sparse_mix()
    w = _posteriors(40, mix.K)
    need = np.random.default_rng(2).random((40, mix.L)) < 0.6
    rows, positions, marg = masked_marginals(w, need, mix.emit)
    assert np.array_equal(rows, np.nonzero(need.T)[1]) and np.array_equal(positions, np.nonzero(need.T)[0])
    dense = np.einsum("nk,nkv->nv", w[rows], mix.emit[:, positions].transpose(1, 0, 2))
    np.testing.assert_allclose(marg, dense, rtol=0, atol=1e-15)
    off = ~(mix.emit > 0).any(0)[positions]  # columns no skeleton emits at that position: exactly 0
    assert (marg[off] == 0).all()
    s = support_of(mix.emit)
    assert s.bounds[-1] == s.tokens.size == s.emit.shape[1] and (np.diff(s.bounds) > 0).all()


def test_marginal_argmax_is_argmax_set_of_the_marginals():
    mix = _sparse_mix()
    w = _posteriors(60, mix.K)
    need = np.ones((60, mix.L), bool)
    rows, positions, marg = masked_marginals(w, need, mix.emit)
    expect = np.zeros((60, mix.L), np.int64)
    expect[rows, positions] = argmax_set(marg).argmax(-1)
    assert np.array_equal(marginal_argmax(w, support_of(mix.emit)), expect)


@pytest.mark.parametrize("K", [1, 2, 3, 8, 49, 65])
def test_count_at_most_is_the_comparison_count(K):
    rng = np.random.default_rng(K)
    cw = np.cumsum(rng.random((30, K)) * (rng.random((30, K)) < 0.5), -1)
    q = rng.random((30, 7)) * cw[:, -1:]
    q[:, 0], q[:, 1], q[:, 2] = cw[:, 0], cw[:, -1], 0.0  # on the entries themselves, and below all
    assert np.array_equal(count_at_most(cw, q), (q[..., None] >= cw[:, None, :]).sum(-1))
    rows = rng.integers(0, 30, 50)
    qr = rng.random(50) * cw[rows, -1]
    assert np.array_equal(count_at_most(cw, qr, rows), (qr[:, None] >= cw[rows]).sum(-1))


def test_single_thread_matmul_is_the_product():
    rng = np.random.default_rng(3)
    for m, k, n in ((3, 4, 5), (5000, 49, 100)):
        a, b = rng.random((m, k)), rng.random((k, n))
        np.testing.assert_allclose(single_thread_matmul(a, b), a @ b, rtol=1e-13)


def _dense_draw(mix, w, seed):
    """The full-table inverse-CDF draw the compressed table replaces (non-eos_inf)."""
    K, L, V = mix.emit.shape
    rng = np.random.default_rng(seed)
    offset = 2.0 * np.arange(K * L).reshape(K, L)
    cdf = np.cumsum(mix.emit, -1)
    cdf /= cdf[..., -1:]
    flat = (cdf + offset[..., None]).ravel()
    cw = np.cumsum(w, -1)
    u = rng.random((w.shape[0], L, 1)) * cw[:, None, -1:]
    k = np.minimum((u >= cw[:, None, :]).sum(-1), K - 1)
    q = offset[k, np.arange(L)] + rng.random((w.shape[0], L))
    return np.clip(np.searchsorted(flat, q, side="right") - (k * L + np.arange(L)) * V, 0, V - 1)


def test_skeleton_draws_equal_the_dense_table_draws_and_where_keeps_the_stream():
    mix = _sparse_mix()
    sampler = SkeletonSampler(mix, SamplerSpec("random", 5))
    w = _posteriors(300, mix.K)
    full = sampler.draw(w, np.random.default_rng(7))
    assert np.array_equal(full, _dense_draw(mix, w, 7))
    where = np.random.default_rng(8).random(full.shape) < 0.5
    rng = np.random.default_rng(7)
    part = sampler.draw(w, rng, where)
    assert np.array_equal(part[where], full[where]) and (part[~where] == 0).all()
    check = np.random.default_rng(7)
    check.random((300, mix.L, 1)), check.random((300, mix.L))
    assert rng.random() == check.random()  # the same number of uniforms was drawn


def test_add_rows_accumulates_repeated_unsorted_rows():
    acc = np.zeros((4, 2), np.int64)
    add_rows(acc, np.array([2, 0, 2, 3, 0]), np.arange(10).reshape(5, 2))
    assert acc.tolist() == [[10, 12], [0, 0], [4, 6], [6, 7]]


def test_chunk_zero_counts_follow_writes_and_remasks():
    mix = _sparse_mix()
    tables = Tables.of(mix)
    rng = np.random.default_rng(4)
    canvas = np.where(rng.random((20, mix.L)) < 0.4, rng.integers(0, mix.V, (20, mix.L)), -1)
    ch = Chunk.start(canvas.copy(), canvas >= 0, tables)
    for _ in range(5):
        rows, pos = np.nonzero(rng.random((20, mix.L)) < 0.3)
        ch.write(tables, rows, pos, rng.integers(-1, mix.V, rows.size))
        c = ch.canvas
        brute = ((c >= 0)[:, :, None] & (mix.emit[:, np.arange(mix.L), np.maximum(c, 0)].transpose(1, 2, 0) == 0)
                 ).sum(1) + tables.zero_prior
        assert np.array_equal(ch.zero_factors(tables), brute)
