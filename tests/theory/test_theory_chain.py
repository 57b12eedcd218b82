"""v1 chain: the public contract, input validation, and properties 1, 3, 5, 6 of docs/theory-spec.md."""

import math

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from theory_strategies import homogeneous, step_params

import theory
from theory import closed_form
from theory.chain import C, H, P, R

ZERO = [0.0, 0.0]


def test_outside_contract_check():
    out = theory.predict([0.2, 0.1], [1.0, 1.0], ZERO, ZERO, ZERO, start="C")
    assert out["state_probs"].shape == (3, 4)
    assert abs(float(out["asr"]) - (1 - 0.8 * 0.9)) < 1e-9
    assert math.isnan(float(out["hrr"])) and math.isnan(float(out["frr"]))
    with pytest.raises(ValueError):
        theory.predict([1.5], [0.5], [0.2], [0.0], [0.0])


def test_state_probs_known_values():
    # C -> P w.p. h(1-s) = 0.25, then P -> C w.p. r = 0.5 at step 2 (s = 0 there)
    out = theory.predict([0.5, 0.0], [0.5, 0.0], [0.0, 0.5], ZERO, ZERO)
    expected = [[1, 0, 0, 0], [0.5, 0.25, 0.25, 0], [0.625, 0.125, 0.25, 0]]
    np.testing.assert_allclose(out["state_probs"], expected)
    assert float(out["asr"]) == pytest.approx(0.375)
    assert float(out["hrr"]) == pytest.approx(0.5)  # visited P w.p. 0.25, revised w.p. 0.125
    assert float(out["frr"]) == pytest.approx(0.5)


@pytest.mark.parametrize(
    "kw, fragment",
    [
        (dict(h=[0.1, -0.2]), "h[1] = -0.2 is outside [0, 1]"),
        (dict(s=[0.1, 1.5]), "s[1] = 1.5 is outside [0, 1]"),
        (dict(r=[float("nan"), 0.1]), "r[0] = nan"),
        (dict(rho=[0.0, 2.0]), "rho[1] = 2.0"),
        (dict(lam=[-1.0, 0.0]), "lam[0] = -1.0"),
        (dict(h=[[0.1, 0.2], [0.3, 1.7]]), "h[1, 1] = 1.7"),
        (dict(s=[0.2, 0.7], r=[0.1, 0.5]), "row P of step index 1"),
        (dict(rho=[0.6, 0.1], lam=[0.6, 0.1]), "row H of step index 0"),
        (dict(s=[0.1, 0.1, 0.1]), "mismatched lengths: s has T=3"),
        (dict(h=0.3), "no step axis"),
        (dict(h=np.zeros((3, 2)), s=np.zeros((2, 2))), "do not broadcast"),
    ],
)
def test_bad_input_names_index_and_value(kw, fragment):
    args = dict(h=[0.1, 0.2], s=[0.3, 0.4], r=[0.1, 0.1], rho=ZERO, lam=ZERO)
    args.update(kw)
    with pytest.raises(ValueError, match=None) as e:
        theory.predict(**args)
    assert fragment in str(e.value)


def test_row_error_reports_values():
    with pytest.raises(ValueError) as e:
        theory.predict([0.1], [0.7], [0.5], [0.0], [0.0])
    assert "s[0] + r[0] = 0.7 + 0.5 = 1.2 > 1" in str(e.value)


@pytest.mark.parametrize("start", ["X", "c", "", None, 0])
def test_unknown_start(start):
    with pytest.raises(ValueError, match="unknown start state"):
        theory.predict([0.1], [0.5], [0.2], [0.0], [0.0], start=start)


@given(step_params())
def test_property1_rows_and_rates_are_probabilities(p):
    M = theory.transition_matrices(*p)
    assert (M >= 0).all()
    np.testing.assert_allclose(M.sum(-1), 1.0, atol=1e-12)
    for start in "CPHR":
        out = theory.predict(*p, start=start)
        sp = out["state_probs"]
        assert (sp >= -1e-15).all()
        np.testing.assert_allclose(sp.sum(-1), 1.0, atol=1e-12)
        assert 0 <= out["asr"] <= 1 + 1e-12
        for k in ("hrr", "frr"):
            v = float(out[k])
            assert (math.isnan(v) and out["p_visit_pending"] == 0) or (-1e-12 <= v <= 1 + 1e-12)


_VISIT = np.zeros((4, 4), bool)
_VISIT[:, P] = True
_REVISE = np.zeros((4, 4), bool)
_REVISE[P, C] = True


@given(step_params(), st.sampled_from("CPHR"))
def test_fast_recursion_matches_generic_augmented_chain(p, start):
    out = theory.predict(*p, start=start)
    M = theory.transition_matrices(*p)
    joint = theory.forward_events(M, theory.chain.start_vector(start), [_VISIT, _REVISE],
                                  start_bits=1 if start == "P" else 0)
    fin = joint[-1]  # [4, 4 flags]
    visited = fin[:, 1].sum() + fin[:, 3].sum()
    np.testing.assert_allclose(joint.sum(-1), out["state_probs"], atol=1e-12)
    np.testing.assert_allclose(out["p_visit_pending"], visited, atol=1e-12)
    if visited > 1e-9:
        np.testing.assert_allclose(out["hrr"], (fin[:, 2].sum() + fin[:, 3].sum()) / visited, atol=1e-9)
        np.testing.assert_allclose(out["frr"], (fin[C, 1:].sum() + fin[R, 1:].sum()) / visited, atol=1e-9)


@given(st.lists(step_params(T=4), min_size=2, max_size=4))
def test_batch_matches_single(sets):
    stacked = [np.stack(x) for x in zip(*sets, strict=True)]
    out = theory.predict(*stacked)
    for i, p in enumerate(sets):
        one = theory.predict(*p)
        for k in ("asr", "hrr", "frr", "state_probs"):
            np.testing.assert_allclose(out[k][i], one[k], atol=1e-13)


def test_leading_dims_broadcast():
    h = np.full((3, 1, 5), 0.2)
    s = np.full((2, 5), 0.5)
    out = theory.predict(h, s, np.zeros(5), np.zeros(5), np.zeros(5))
    assert out["asr"].shape == (3, 2) and out["state_probs"].shape == (3, 2, 6, 4)


@given(step_params(lam_zero=True))
def test_property3_ar_limit(p):
    h, _, _, _, _ = p
    T = len(h)
    out = theory.predict(h, np.ones(T), np.zeros(T), np.zeros(T), np.zeros(T))
    assert out["p_visit_pending"] == 0
    assert math.isnan(out["hrr"]) and math.isnan(out["frr"])
    assert float(out["asr"]) == pytest.approx(1 - np.prod(1 - h), abs=1e-12)


@given(step_params())
def test_property3_ar_never_visits_pending_even_with_lam(p):
    h, _, _, _, lam = p
    T = len(h)
    out = theory.predict(h, np.ones(T), np.zeros(T), np.zeros(T), lam)
    assert (out["state_probs"][:, P] == 0).all()


@given(homogeneous())
def test_property5_forgets_start_with_remasking(p):
    h, s, r, rho = p
    Tn = 400
    args = [np.full(Tn, v) for v in (h, s, r, rho)] + [np.zeros(Tn)]
    Q = theory.transition_matrices(*(a[:1] for a in args))[0][:3, :3]
    slem = sorted(abs(np.linalg.eigvals(Q)))[-2]
    assert slem < 1  # the chain on {C, P, H} is irreducible and aperiodic: a unique limit
    assume(slem < 0.95)  # so that slem ** 400 < 1e-8: the limit is reached to test precision
    pi = closed_form.stationary(h, s, r, rho)
    for start in "CPH":
        sp = theory.predict(*args, start=start)["state_probs"][-1]
        np.testing.assert_allclose(sp[:3], pi, atol=1e-6)
        assert sp[R] == 0


@given(step_params(rho_zero=True, lam_zero=True))
def test_property5_committed_harm_is_permanent_without_remasking(p):
    out = theory.predict(*p, start="H")
    np.testing.assert_allclose(out["state_probs"][:, H], 1.0)


@given(step_params(rho_zero=True))
def test_property6_pinned_prefill_only_late_refusal_lowers_asr(p):
    h, s, r, rho, lam = p
    out = theory.predict(*p, start="H")
    assert float(out["asr"]) == pytest.approx(np.prod(1 - lam), abs=1e-12)
    out0 = theory.predict(h, s, r, rho, np.zeros_like(lam), start="H")
    assert float(out0["asr"]) == 1.0
