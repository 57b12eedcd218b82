"""The length mechanism's prediction and fidelity, on teacher samples of a known distribution."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from toydlm.real.twins.compare import agrees, length_matched_refusal, predicted_refusal


def teacher(n_ref: int, n_comp: int, n_trunc: int, ref_len=(3, 9), comp_len=(40, 61), cap=96, seed=0):
    """Refusals of length in ref_len, ended compliances in comp_len, and truncated compliances at the cap."""
    rng = np.random.default_rng(seed)
    length = np.concatenate([rng.integers(*ref_len, n_ref), rng.integers(*comp_len, n_comp), np.full(n_trunc, cap)])
    return {"prompt": np.arange(len(length)), "length": length,
            "ended": np.r_[np.ones(n_ref + n_comp, bool), np.zeros(n_trunc, bool)],
            "refusal": np.r_[np.ones(n_ref, bool), np.zeros(n_comp + n_trunc, bool)]}


@given(st.integers(5, 60), st.integers(5, 60), st.integers(0, 30))
@settings(max_examples=30, deadline=None)
def test_prediction_follows_the_known_length_distribution(n_ref, n_comp, n_trunc):
    t = teacher(n_ref, n_comp, n_trunc)
    short = predicted_refusal(t, 20.0, 96, n_boot=50)
    assert short["predicted_refusal_rate"] == 1.0 and short["n_teacher_le_k"] == n_ref
    mid = predicted_refusal(t, 70.4, 96, n_boot=50)  # every ended sample, none truncated
    assert mid["k"] == 70 and mid["predicted_refusal_rate"] == pytest.approx(n_ref / (n_ref + n_comp))
    full = predicted_refusal(t, 96.0, 96, n_boot=50)  # nothing forced: the plain refusal rate
    assert full["predicted_refusal_rate"] == pytest.approx(n_ref / (n_ref + n_comp + n_trunc))
    lo, hi = mid["predicted_ci95"]
    assert lo <= mid["predicted_refusal_rate"] <= hi


def test_below_every_teacher_length_there_is_no_prediction():
    p = predicted_refusal(teacher(10, 10, 0, ref_len=(5, 6)), 3.0, 96, n_boot=20)
    assert p["predicted_refusal_rate"] is None and p["n_teacher_le_k"] == 0


def test_agreement_uses_both_uncertainties():
    assert agrees(0.9, [0.88, 0.92], 0.83, 0.04)  # 0.07 apart, two combined SEs about 0.083
    assert not agrees(0.9, [0.88, 0.92], 0.8, 0.04)  # 0.10 apart
    assert not agrees(0.9, [0.89, 0.91], 0.7, 0.04)
    assert not agrees(1.0, None, 0.8, 0.05) and agrees(1.0, None, 0.95, 0.05)
    assert agrees(None, None, 0.5, 0.05) is None


@given(st.integers(5, 60), st.integers(5, 60), st.integers(1, 30))
@settings(max_examples=30, deadline=None)
def test_the_teachers_own_lengths_give_back_its_refusal_rate(n_ref, n_comp, n_trunc):
    t = teacher(n_ref, n_comp, n_trunc)
    m = length_matched_refusal(t, t["length"], 96, n_boot=20)
    assert m["predicted_refusal_rate_length_dist"] == pytest.approx(n_ref / (n_ref + n_comp + n_trunc))


def test_length_distribution_prediction_weights_each_bin_by_the_student():
    t = teacher(40, 40, 20)  # refusals at 3-8 tokens, compliances at 40-60 or truncated
    short = length_matched_refusal(t, np.full(50, 5), 96, n_boot=20)
    capped = length_matched_refusal(t, np.full(50, 96), 96, n_boot=20)
    half = length_matched_refusal(t, np.r_[np.full(30, 5), np.full(30, 96)], 96, n_boot=20)
    assert short["predicted_refusal_rate_length_dist"] == 1.0 and capped["predicted_refusal_rate_length_dist"] == 0.0
    assert half["predicted_refusal_rate_length_dist"] == pytest.approx(0.5)
    gap = length_matched_refusal(t, np.full(10, 36), 96, n_boot=20)  # no teacher sample at 32-39: nearest bin (40s)
    assert gap["predicted_refusal_rate_length_dist"] == 0.0
    lo, hi = half["predicted_length_dist_ci95"]
    assert lo <= 0.5 <= hi


def test_a_shorter_canvas_matches_unended_rows_to_teacher_samples_longer_than_it():
    """At a 32-token canvas, a student row that did not end stands for a teacher sample that had not ended
    by 32 tokens: here every compliance (40-60 tokens, or truncated), never a refusal (3-8 tokens)."""
    t = teacher(40, 40, 20)
    cut = length_matched_refusal(t, np.full(20, 32), 32, n_boot=20, student_ended=np.zeros(20, bool))
    assert cut["predicted_refusal_rate_length_dist"] == 0.0
    mixed = length_matched_refusal(t, np.r_[np.full(10, 5), np.full(10, 32)], 32, n_boot=20,
                                   student_ended=np.r_[np.ones(10, bool), np.zeros(10, bool)])
    assert mixed["predicted_refusal_rate_length_dist"] == pytest.approx(0.5)
    # by default a row ended when it is shorter than the canvas
    assert length_matched_refusal(t, np.full(20, 32), 32, n_boot=20)["predicted_refusal_rate_length_dist"] == 0.0
