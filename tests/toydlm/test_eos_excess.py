"""The EOS-first excess: 0 in expectation for a random commit order, 1 for end tokens first, < 0 left to right."""

import itertools
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from toydlm.trace import (
    eos_first_excess,
    eos_first_excess_from_lengths,
    eos_first_share,
    eos_first_terms,
    excess_of_terms,
)

EOS, TOK, MASK = 0, 7, 99


def arrays(final: np.ndarray, step: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`committed`, `canvas` `[T, B, L]` of rows whose position l is committed at step `step[b, l]` with its
    final token `final[b, l]` (step -1: pinned, in the canvas from the start and never committed)."""
    T = int(step.max()) + 1
    t = np.arange(T)[:, None, None]
    committed = step[None] == t
    shown = (step[None] <= t) | (step[None] < 0)
    return committed, np.where(shown, final[None], MASK)


def canvas_of(lengths, L: int) -> np.ndarray:
    """Final canvases `[B, L]`: content up to each length, EOS from there on."""
    return np.where(np.arange(L)[None] < np.asarray(lengths)[:, None], TOK, EOS)


def end_first_steps(final: np.ndarray, rng: np.random.Generator, pinned: np.ndarray | None = None) -> np.ndarray:
    """One commit per step, every EOS before any content token (random order within each group)."""
    B, L = final.shape
    pinned = np.zeros((B, L), bool) if pinned is None else pinned
    step = np.full((B, L), -1)
    for b in range(B):
        free = np.flatnonzero(~pinned[b])
        e, c = free[final[b, free] == EOS], free[final[b, free] != EOS]
        order = np.concatenate([rng.permutation(e), rng.permutation(c)])
        step[b, order] = np.arange(len(order))
    return step


rows = st.lists(st.integers(0, 1), min_size=2, max_size=12)


@given(st.lists(rows, min_size=1, max_size=6), st.integers(0, 2**32 - 1), st.data())
def test_all_end_tokens_first_gives_exactly_one(tokens, seed, data):
    L = min(len(r) for r in tokens)
    final = np.array([r[:L] for r in tokens]) * TOK  # 0 = EOS anywhere, not only at the end
    rng = np.random.default_rng(seed)
    pinned = rng.random(final.shape) < 0.25
    final[:, 0], final[:, 1], pinned[:, :2] = EOS, TOK, False  # every row has a committed EOS and content
    n_first = data.draw(st.integers(1, max(1, int((~pinned).sum(1).max()) - 1)))
    committed, canvas = arrays(final, end_first_steps(final, rng, pinned))
    s, e, m, _ = eos_first_terms(committed, canvas, EOS, n_first)
    np.testing.assert_allclose(s, m, rtol=0, atol=1e-12)
    v = eos_first_excess(committed, canvas, EOS, n_first)
    assert v == pytest.approx(1.0, abs=1e-12) or (math.isnan(v) and np.allclose(m, e))


def test_end_first_over_several_commits_per_step_gives_exactly_one():
    # L = 8, K = 3 EOS; steps commit 2, 1, 3, 2 positions; EOS only in the first two steps
    final = np.array([[TOK, TOK, TOK, TOK, TOK, EOS, EOS, EOS]])
    step = np.array([[2, 2, 2, 3, 3, 0, 0, 1]])
    committed, canvas = arrays(final, step)
    for n_first in (1, 2, 3, 4, 7):
        assert eos_first_excess(committed, canvas, EOS, n_first) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("schedule", [(1,) * 6, (2, 1, 3), (3, 3), (1, 4, 1)])
@given(tokens=st.lists(st.integers(0, 1), min_size=6, max_size=6), n_first=st.integers(1, 6))
def test_the_share_averaged_over_every_order_is_the_random_order_value(schedule, tokens, n_first):
    """E = K / C is the exact mean of the share over all L! commit orders (also with several commits per
    step and a fractional boundary), so the excess numerator has expectation exactly 0."""
    L = 6
    final_row = np.array(tokens) * TOK
    perms = np.array(list(itertools.permutations(range(L))))  # [720, L]: perms[p, j] = j-th committed position
    step_of_slot = np.repeat(np.arange(len(schedule)), schedule)
    step = np.empty_like(perms)
    np.put_along_axis(step, perms, np.broadcast_to(step_of_slot, perms.shape), axis=1)
    final = np.broadcast_to(final_row, perms.shape)
    committed, canvas = arrays(final, step)
    s, e, m, _ = eos_first_terms(committed, canvas, EOS, n_first)
    k = int((final_row == EOS).sum())
    assert np.all(e == k / L) and np.all(m == min(k, min(L, n_first)) / min(L, n_first))
    assert s.mean() == pytest.approx(k / L, abs=1e-12)  # mean(s - E) = 0 exactly
    assert s.max() <= m[0] + 1e-12  # M bounds the share of any order (and is reached with one commit a step)
    if set(schedule) == {1}:
        assert s.max() == pytest.approx(m[0], abs=1e-12)
    assert np.mean(s - e) == pytest.approx(0.0, abs=1e-12)


def test_random_orders_on_the_14_of_96_example():
    """A value-blind random order on a response of 14 of 96 tokens: share about 82/96, excess about 0."""
    rng = np.random.default_rng(0)
    B, L = 800, 96
    final = canvas_of(np.full(B, 14), L)
    step = np.argsort(rng.random((B, L)), axis=1)  # a uniformly random permutation per row
    committed, canvas = arrays(final.astype(np.int8), step.astype(np.int16))
    s, e, m, _ = eos_first_terms(committed, canvas, EOS, L // 2)
    se = s.std(ddof=1) / math.sqrt(B)
    assert e[0] == pytest.approx(82 / 96) and abs(s.mean() - 82 / 96) < 4 * se
    assert s.mean() > 0.8  # the raw share is high although the order ignores the tokens
    v = eos_first_excess(committed, canvas, EOS, L // 2)
    assert abs(v) < 4 * se / (m.mean() - e.mean())
    left_to_right = np.broadcast_to(np.arange(L), (B, L))
    assert eos_first_excess(*arrays(final, left_to_right), EOS, L // 2) == pytest.approx(-1.0)


@given(st.integers(2, 16), st.data())
def test_left_to_right_on_shorter_responses_is_negative(L, data):
    lengths = data.draw(st.lists(st.integers(1, L - 1), min_size=1, max_size=5))
    n_first = data.draw(st.integers(1, L - 1))
    final = canvas_of(lengths, L)
    committed, canvas = arrays(final, np.broadcast_to(np.arange(L), final.shape))
    assert eos_first_excess(committed, canvas, EOS, n_first) < 0
    assert eos_first_excess_from_lengths(eos_first_share(committed, canvas, EOS, n_first).mean(), lengths, L,
                                         n_first) < 0


@given(st.integers(1, 8), st.integers(0, 2**32 - 1), st.data())
def test_with_half_the_canvas_as_n_first_the_value_lies_in_minus_one_to_one(half, seed, data):
    L = 2 * half
    tokens = data.draw(st.lists(st.lists(st.integers(0, 1), min_size=L, max_size=L), min_size=1, max_size=5))
    rng = np.random.default_rng(seed)
    final = np.array(tokens) * TOK  # EOS anywhere, any order, several commits per step
    step = np.argsort(rng.random(final.shape), axis=1) // data.draw(st.integers(1, 3))
    v = eos_first_excess(*arrays(final, step), EOS, half)
    assert math.isnan(v) or -1 - 1e-12 <= v <= 1 + 1e-12


@given(st.integers(1, 16), st.integers(0, 2**32 - 1), st.data())
def test_from_lengths_agrees_with_the_exact_value_on_eos_padded_canvases(L, seed, data):
    lengths = data.draw(st.lists(st.integers(0, L), min_size=1, max_size=6))
    n_first = data.draw(st.integers(1, L + 2))
    rng = np.random.default_rng(seed)
    per_step = data.draw(st.integers(1, 3))
    step = np.argsort(rng.random((len(lengths), L)), axis=1) // per_step  # random order, several per step
    final = canvas_of(lengths, L)
    committed, canvas = arrays(final, step)
    exact = eos_first_excess(committed, canvas, EOS, n_first)
    share = eos_first_share(committed, canvas, EOS, n_first)
    approx = eos_first_excess_from_lengths(float(share.mean()), lengths, L, n_first)
    assert (math.isnan(exact) and math.isnan(approx)) or approx == pytest.approx(exact, abs=1e-9)


def test_from_lengths_differs_where_content_follows_the_first_eos():
    # the assumption matters: K = L - length undercounts EOS after content that follows the first EOS
    final = np.array([[TOK, EOS, TOK, EOS, EOS, EOS]])
    committed, canvas = arrays(final, end_first_steps(final, np.random.default_rng(0)))
    exact = eos_first_excess(committed, canvas, EOS, 5)
    approx = eos_first_excess_from_lengths(eos_first_share(committed, canvas, EOS, 5).mean(), [1], 6, 5)
    assert exact == pytest.approx(1.0) and approx != pytest.approx(exact)


@pytest.mark.parametrize("final_row, n_first", [([EOS] * 4, 2), ([TOK] * 4, 2), ([TOK, EOS, EOS, EOS], 4),
                                                ([TOK, EOS, EOS, EOS], 9)])
def test_no_room_for_a_preference_is_nan(final_row, n_first):
    final = np.array([final_row])
    committed, canvas = arrays(final, np.array([[2, 0, 3, 1]]))
    assert math.isnan(eos_first_excess(committed, canvas, EOS, n_first))
    length = int(np.argmax(final[0] == EOS)) if (final[0] == EOS).any() else 4
    share = float(eos_first_share(committed, canvas, EOS, n_first)[0])
    assert math.isnan(eos_first_excess_from_lengths(share, [length], 4, n_first))


def test_degenerate_inputs_give_nan_not_an_error():
    final = np.array([[TOK, EOS, EOS]])
    committed, canvas = arrays(np.vstack([final, final]), np.vstack([np.full(3, -1), [0, 1, 2]]))
    s, e, m, _ = eos_first_terms(committed, canvas, EOS, 1)
    assert np.isnan(s[0]) and np.isnan(e[0]) and np.isnan(m[0])  # row 0: everything pinned, no commit
    assert eos_first_excess(committed, canvas, EOS, 1) == pytest.approx(-1.0)  # row 1 alone: (0 - 2/3) / (2/3 - 0)
    assert math.isnan(eos_first_excess(committed[:, :1], canvas[:, :1], EOS, 1))
    assert math.isnan(excess_of_terms(*(np.array([]),) * 4))
    assert math.isnan(eos_first_excess_from_lengths(None, [1, 2], 3, 1))
    assert math.isnan(eos_first_excess_from_lengths(float("nan"), [1, 2], 3, 1))
    assert math.isnan(eos_first_excess_from_lengths(0.5, [], 3, 1))
    assert math.isnan(eos_first_excess_from_lengths(0.5, [1], 0, 1))
    assert math.isnan(eos_first_excess_from_lengths(0.5, [1], 3, 0))


def test_pooled_cells_average_the_excess_over_training_seeds_like_the_share():
    from toydlm.experiment.pooling import pool_row

    rows = [{"model": "mdlm", "model_seed": s, "key": f"g__mdlm-s{s}__x", "asr": 0.1, "asr_se": 0.01,
             "eos_first_share": share, "eos_first_excess": ex}
            for s, share, ex in ((0, 0.8, 0.5), (1, 0.9, 0.7), (2, 0.7, float("nan")))]
    p = pool_row(rows)
    assert p["eos_first_share"] == pytest.approx(0.8) and p["eos_first_excess"] == pytest.approx(0.6)
