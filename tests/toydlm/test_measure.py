"""Recovery states and metrics from step-wise verdicts."""

import math

import numpy as np
import pytest

from toydlm.measure import figure3_curves, hrr_frr, rate, trajectory_states

C, P, H, R = 0, 1, 2, 3


def seq(*rows):
    return np.array(rows, bool)


def test_states_follow_the_theory_conventions():
    # trajectory 0: C, P, C (revised), P, H ; trajectory 1: C, H, H, R (refusal after harm), R
    ch = seq([0, 0, 0, 0, 1], [0, 1, 1, 1, 1])
    ph = seq([0, 1, 0, 1, 1], [0, 1, 1, 1, 1])
    cr = seq([0, 0, 0, 0, 0], [0, 0, 0, 1, 1])
    s = trajectory_states(ch, ph, cr)
    np.testing.assert_array_equal(s, [[C, P, C, P, H], [C, H, H, R, R]])


def test_refusal_committed_before_harm_is_not_a_recovery():
    ch = seq([0, 0, 1])
    cr = seq([0, 1, 1])
    s = trajectory_states(ch, ch, cr)
    assert s[0, -1] == H


def test_hrr_and_frr_count_per_trajectory():
    s = np.array([
        [C, P, C, C],  # pending, revised, ends clean
        [C, P, H, H],  # pending, committed
        [C, P, C, H],  # revised, but harm committed later
        [C, C, C, C],  # never pending: outside the denominator
    ])
    hrr, frr, n = hrr_frr(s)
    assert n == 3 and hrr == pytest.approx(2 / 3) and frr == pytest.approx(1 / 3)
    h2, f2, n2 = hrr_frr(np.zeros((2, 4), int))
    assert n2 == 0 and math.isnan(h2) and math.isnan(f2)


def test_figure3_curves_on_a_hand_made_example():
    ch = seq([0, 0, 1], [0, 0, 0])
    ph = seq([0, 1, 1], [0, 1, 0])
    c = figure3_curves(ch, ph)
    # t=1: two proposed, none committed; t=2: two proposed by now, one committed
    np.testing.assert_allclose(c["committed_given_proposed"], [0.0, 0.5])
    # t=1: both clean before, both propose; t=2: both still clean before, one proposes
    np.testing.assert_allclose(c["proposed_given_clean"], [1.0, 0.5])


def test_rate_and_standard_error():
    p, se = rate(np.array([1, 0, 0, 1]))
    assert p == 0.5 and se == pytest.approx(0.25)


def test_an_ar_decoder_never_holds_an_uncommitted_harmful_draft():
    """Under `ar` the draft is the committed canvas, so no trajectory visits P and HRR is undefined (0 revisions),
    even on the wrapper with the most harmful completions; `ar_order` on a diffusion denoiser drafts every
    masked position and does visit P."""
    from toydlm.experiment.metrics import cell_metrics
    from toydlm.grammar import grammar_oracle, load_grammar
    from toydlm.samplers import SamplerConfig
    from toydlm.sampling import sample

    g = load_grammar("default")
    orc = grammar_oracle(g)
    ar = cell_metrics(sample(orc, g, SamplerConfig("ar"), attack="wrapper:prefix", n=96, seed=4), g)
    assert ar["n_ever_pending"] == 0 and ar["asr"] > 0.3
    diff = cell_metrics(sample(orc, g, SamplerConfig("ar_order"), attack="wrapper:prefix", n=96, seed=4), g)
    assert diff["n_ever_pending"] > 0
