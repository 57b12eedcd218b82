"""The AR-order end hazard: its canvases, its law for causal students, and its summary."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from toydlm.real.twins.end_hazard import ar_order_canvases, hazard_summary, row_hazards
from toydlm.real.twins.swap import end_lengths
from toydlm.real.twins.vocab import EOS_ID, EOT_ID, MASK_ID

P = 3


@given(st.lists(st.integers(6, 40), min_size=1, max_size=12), st.integers(0, 11))
@settings(max_examples=50, deadline=None)
def test_the_jth_canvas_keeps_the_prompt_and_j_response_tokens(resp, upto):
    row = np.array([7, 8, 9, *resp])
    upto = min(upto, len(resp) - 1)
    c = ar_order_canvases(row, P, upto)
    assert c.shape == (upto + 1, len(row))
    for j in range(upto + 1):
        assert (c[j, :P + j] == row[:P + j]).all() and (c[j, P + j:] == MASK_ID).all()


def test_the_end_takes_either_end_token_and_the_canvas_length_without_one():
    lengths, ended = end_lengths(np.array([[9, 9, EOT_ID, EOS_ID], [9, EOS_ID, EOT_ID, 9], [9, 9, 9, 9]]))
    assert lengths.tolist() == [2, 1, 4] and ended.tolist() == [True, True, False]


def test_the_summary_is_its_closed_form():
    """Distinct hazards per position, so reading the wrong position or mixing up the end and the
    positions before it changes the numbers."""
    rows = np.array([[7, 7, 7, 9, 9, EOT_ID, EOS_ID],  # ends at response index 2
                     [7, 7, 7, 9, 9, 9, 9]])           # never ends: survives all 4 positions
    hazards = [np.array([0.1, 0.2, 0.6]), np.array([0.05, 0.1, 0.15, 0.3])]
    s = hazard_summary(rows, hazards, P)
    survive = [math.log(0.9) + math.log(0.8), math.log(0.95) + math.log(0.9) + math.log(0.85) + math.log(0.7)]
    assert s["n_rows"] == 2 and s["n_ended"] == 1
    assert s["end_logprob"] == pytest.approx(math.log(0.6))
    assert s["survival_logprob"] == pytest.approx(sum(survive) / 2)
    assert s["length_nll"] == pytest.approx(-(math.log(0.6) + sum(survive)) / 2)
    assert s["mean_hazard_at_end"] == pytest.approx(0.6)
    assert s["mean_hazard_before_end"] == pytest.approx(np.mean([0.1, 0.2, 0.05, 0.1, 0.15, 0.3]))


@pytest.fixture(scope="module")
def ar_student(tmp_path_factory):
    from tests.toydlm.real.test_twins_students import corpus_task
    from toydlm.train import train
    from toydlm.train.checkpoint import load_denoiser

    task, root = corpus_task(), tmp_path_factory.mktemp("hazard")
    train("ar", "tiny", root / "ar", steps=30, seed=0, grammar=task, progress=False)
    return task, load_denoiser(root / "ar", grammar=task)


def test_a_causal_students_hazard_is_its_next_token_end_probability(ar_student):
    """A causal model cannot see the masked suffix, so the AR-order canvases give the end probabilities
    of one forward pass over the whole row."""
    import jax

    task, den = ar_student
    rows = task.held_out_rows[:4]
    hazards = row_hazards(den, rows, task.prompt_len, batch=5)
    probs = np.asarray(jax.nn.softmax(den(rows).logits, axis=-1))
    for r, h in zip(range(len(rows)), hazards):
        full = probs[r, task.prompt_len:task.prompt_len + len(h)][:, [EOS_ID, EOT_ID]].sum(-1)
        np.testing.assert_allclose(h, full, rtol=1e-4, atol=1e-6)
        assert len(h) == min(end_lengths(rows[r:r + 1, task.prompt_len:])[0][0], task.response_len - 1) + 1
