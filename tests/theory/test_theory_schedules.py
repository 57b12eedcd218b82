"""Position-level companion: commit counts, per-position s_t, harm-commit laws, ReMDM schedules."""

import itertools
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from theory import schedules


@given(st.integers(0, 64), st.integers(1, 16))
def test_llada_counts(N, S):
    k = schedules.llada_counts(N, S)
    assert k.sum() == N and k.max() - k.min() <= 1 and (np.diff(k) <= 0).all()


@pytest.mark.parametrize("L,T,bl", [(8, 4, None), (8, 8, 4), (12, 6, 4), (6, 4, 3)])
def test_random_position_s_is_a_decode_time_law(L, T, bl):
    s = schedules.random_position_s(L, T, bl)
    alive = np.cumprod(np.concatenate([np.ones((L, 1)), 1 - s[:, :-1]], 1), 1)
    decode = alive * s
    np.testing.assert_allclose(decode.sum(1), 1.0)  # every position is committed exactly once
    blocks, k = schedules.block_plan(L, T, bl)
    size = L if bl is None else bl
    for t in range(T):  # in the active block, P(commit at t) = k_t / block size (uniform order)
        inside = np.arange(L) // size == blocks[t]
        np.testing.assert_allclose(decode[inside, t], k[t] / size)
        np.testing.assert_allclose(decode[~inside, t], 0.0)


@given(st.integers(1, 40))
def test_mdlm_decode_time_is_uniform(T):
    s = schedules.chain_s(10, T, "mdlm")
    alive = np.concatenate([[1.0], np.cumprod(1 - s)[:-1]])
    np.testing.assert_allclose(alive * s, 1.0 / T)
    np.testing.assert_allclose(schedules.remdm_schedule(T, "mdlm")["s"], s)


def _brute_random(pos, L, T, bl):
    """Enumerate LLaDA random selection: per block, every commit order is equally likely."""
    blocks, k = schedules.block_plan(L, T, bl)
    size = L if bl is None else bl
    out = np.zeros((T + 1, len(pos) + 1))
    for t in range(T + 1):
        done = [int(k[:t][blocks[:t] == b].sum()) for b in range(L // size)]
        per_block = []
        for b in range(L // size):
            members = range(b * size, (b + 1) * size)
            subsets = list(itertools.combinations(members, done[b]))
            per_block.append([(sum(1 for x in sub if x in pos), 1 / len(subsets)) for sub in subsets])
        for combo in itertools.product(*per_block):
            out[t, sum(j for j, _ in combo)] += math.prod(p for _, p in combo)
    return out


@pytest.mark.parametrize("pos,L,T,bl", [((0, 2, 5), 6, 3, None), ((1, 4, 5), 6, 4, 3), ((0, 1), 4, 4, 2)])
def test_committed_harm_pmf_random_matches_enumeration(pos, L, T, bl):
    exact = schedules.committed_harm_pmf(pos, L, T, "random", bl)
    np.testing.assert_allclose(exact, _brute_random(set(pos), L, T, bl), atol=1e-12)


def test_committed_harm_pmf_other_samplers():
    ar = schedules.committed_harm_pmf([1, 3], 4, 4, "ar_order")
    np.testing.assert_array_equal(ar.argmax(1), [0, 0, 1, 1, 2])
    md = schedules.committed_harm_pmf([0, 1, 2], 8, 4, "mdlm")
    np.testing.assert_allclose(md @ np.arange(4), 3 * np.arange(5) / 4)
    with pytest.raises(ValueError, match="positions"):
        schedules.committed_harm_pmf([9], 4, 4, "random")


@pytest.mark.parametrize("schedule", ["cap", "rescale", "loop", "mdlm"])
@pytest.mark.parametrize("T", [8, 20, 64])
def test_remdm_preserves_mdlm_marginals(schedule, T):
    """The ReMDM kernel keeps P(masked) = 1 - alpha: m' = m (1 - s) + (1 - m) sigma = 1 - alpha_s."""
    sch = schedules.remdm_schedule(T, schedule, eta=0.05)
    m = 1.0
    for t in range(T):
        assert 0 <= sch["sigma"][t] <= 1 and 0 <= sch["s"][t] <= 1
        m = m * (1 - sch["s"][t]) + (1 - m) * sch["sigma"][t]
        assert m == pytest.approx(1 - sch["alpha_s"][t], abs=1e-12)
    assert m == pytest.approx(0.0, abs=1e-12)
    if schedule == "loop":
        assert (sch["sigma"] > 0).any()


def test_block_plan_validation():
    with pytest.raises(ValueError, match="divide"):
        schedules.block_plan(10, 4, 3)
    with pytest.raises(ValueError, match="multiple"):
        schedules.block_plan(8, 3, 4)


def test_chain_s_random_single_block_is_k_over_m():
    L, T = 12, 4
    k = schedules.llada_counts(L, T)
    m = L - np.concatenate([[0], np.cumsum(k)[:-1]])
    np.testing.assert_allclose(schedules.chain_s(L, T, "random"), k / m)
    np.testing.assert_allclose(schedules.committed_fraction(L, T, "random"), 1 - m / L)
