"""The Monte-Carlo ELBO: exact for a one-token continuation, unbiased for the sum of per-token log-probabilities
when they do not depend on the canvas, with a standard error that shrinks as 1/sqrt(draws); and a request's
draws depend on its text and the seed only."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from toydlm.real.harness.elbo import elbo_estimate, mask_draws, request_rng


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 12), st.integers(1, 40), st.integers(0, 2**31 - 1))
def test_each_draw_masks_l_positions_with_weight_n_over_l(n, draws, seed):
    masks, w = mask_draws(n, draws, np.random.default_rng(seed))
    counts = masks.sum(1)
    assert masks.shape == (draws, n) and (counts >= 1).all() and (counts <= n).all()
    np.testing.assert_allclose(w, n / counts)


def test_the_number_masked_is_uniform_on_1_to_n():
    from scipy.stats import chisquare

    n, draws = 6, 6000
    masks, _ = mask_draws(n, draws, np.random.default_rng(3))
    counts = np.bincount(masks.sum(1), minlength=n + 1)[1:]
    assert chisquare(counts).pvalue > 1e-3
    assert (masks.mean(0) > 0.5 * masks.mean()).all()  # every position gets masked, none favoured much


def test_one_token_is_scored_exactly_with_no_variance():
    masks, w = mask_draws(1, 16, np.random.default_rng(0))
    est, se = elbo_estimate(np.full((16, 1), -2.5), masks, w)
    assert est == -2.5 and se == 0.0


@pytest.mark.parametrize("n", [2, 5, 9])
def test_the_estimate_is_unbiased_for_canvas_independent_log_probs(n):
    v = -np.random.default_rng(n).uniform(0.1, 5.0, n)  # log p_i that ignore which positions are masked
    masks, w = mask_draws(n, 20000, np.random.default_rng(1))
    est, se = elbo_estimate(np.broadcast_to(v, masks.shape), masks, w)
    assert abs(est - v.sum()) < 5 * se
    _, se_small = elbo_estimate(np.broadcast_to(v, (400, n)), *mask_draws(n, 400, np.random.default_rng(2)))
    assert se < se_small  # more draws, a smaller standard error


def test_a_requests_draws_depend_only_on_its_text_and_the_seed():
    a = request_rng(0, "ctx", "cont").integers(0, 2**32, 4)
    assert (a == request_rng(0, "ctx", "cont").integers(0, 2**32, 4)).all()
    assert not (a == request_rng(1, "ctx", "cont").integers(0, 2**32, 4)).all()
    assert not (a == request_rng(0, "ctx", "cont2").integers(0, 2**32, 4)).all()
