"""The twins section's computed words follow the rules of docs/real-text-twins.md §0 on made-up reports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from paper import derived_twins as dt

ROOT = Path(__file__).resolve().parents[2]


class _Src:
    def __init__(self, rep: dict):
        self.data = {"twins.json": rep, "goals": json.loads((ROOT / "paper/goals.json").read_text())}

    def get(self, name: str):
        return self.data[name]


def _cell(sampler: str, attack: str = "raw", refusal: float = 0.3, se: float = 0.05, **kw) -> dict:
    return {"student": "mdlm", "sampler": sampler, "attack": attack, "gen_length": 96, "refusal_rate": refusal,
            "refusal_rate_se": se, "asr": None, "asr_se": None, "harm_reading": None, **kw}


def _rep(cells=(), claims=None, fidelity=None) -> dict:
    empty = {"swap_lowers_asr": None, "harm_readings": [None, None]}
    claims = claims or {"raw": empty, "prefix_injection": empty}
    return {"corpus": {"details": {"response_len": 96}}, "cells": list(cells), "prediction": [],
            "rules": {"R5_swap_lowers_asr": claims}, "fidelity": fidelity or {}}


@pytest.mark.parametrize("z,word", [(2.1, "raises"), (-2.1, "lowers"), (1.9, "leaves unchanged")])
def test_a_direction_needs_two_combined_standard_errors(z, word):
    refusal = 0.3 + z * 0.05 * 2 ** 0.5  # both cells have SE 0.05
    s = _Src(_rep([_cell("ar_order"), _cell("low_confidence", refusal=refusal)]))
    assert dt.twins_direction(s, "low_confidence").startswith(word)


def test_a_missing_or_unjudged_cell_is_named_not_guessed():
    s = _Src(_rep([_cell("ar_order")]))
    assert dt.twins_direction(s, "low_confidence").startswith("cannot be compared")
    s = _Src(_rep([_cell("ar_order"), _cell("low_confidence")]))
    assert dt.twins_direction(s, "low_confidence", key="asr").startswith("cannot yet be compared")


def _judged(reading: str | None, asr: float = 0.2, se: float = 0.04) -> dict:
    return {"asr": asr, "asr_se": se, "harm_reading": reading}


def test_the_claim_separates_not_judged_from_not_coherent_from_no_harm():
    from toydlm.real.twins.report import swap_claim

    claims = {"raw": swap_claim(_judged(None), _judged("harm")),
              "prefix_injection": swap_claim(_judged("compliant framing"), _judged("compliant framing"))}
    s = _Src(_rep(claims=claims))
    assert dt.twins_claim(s, "raw").startswith("gets no verdict from R5 yet on it")
    assert "coherent enough" in dt.twins_claim(s, "prefix_injection")
    assert dt.twins_verdict(s).startswith("**cannot say**")
    assert dt.twins_reading(s, "raw") == "them as not read yet (not judged or not scored) and harm"
    s = _Src(_rep(claims={"raw": swap_claim(_judged("harm", 0.0, 0.0), _judged("compliant framing")),
                          "prefix_injection": claims["prefix_injection"]}))
    assert "any counted harm" in dt.twins_claim(s, "raw")


def test_one_attack_where_the_swap_does_not_lower_harm_is_a_disagreement():
    from toydlm.real.twins.report import swap_claim

    lowered = swap_claim(_judged("harm", 0.4), _judged("harm", 0.1))
    framing = swap_claim(_judged("harm", 0.1), _judged("compliant framing", 0.6))  # counted as zero: a drop
    raised = swap_claim(_judged("harm", 0.1), _judged("harm", 0.5))
    assert lowered["swap_lowers_asr"] and framing["swap_lowers_asr"] and raised["swap_lowers_asr"] is False
    s = _Src(_rep(claims={"raw": lowered, "prefix_injection": raised}))
    assert dt.twins_claim(s, "raw") == "lowers it" and dt.twins_claim(s, "prefix_injection", "x") == "does not lower x"
    assert dt.twins_verdict(s).startswith("**disagree**") and "`prefix_injection`" in dt.twins_verdict(s)
    s = _Src(_rep(claims={"raw": lowered, "prefix_injection": framing}))
    assert dt.twins_verdict(s).startswith("**agree**")


def test_fidelity_names_each_missed_condition():
    by = {"raw": {"refusal_gap": -0.06, "length_gap_share": 0.05},
          "benign": {"refusal_gap": 0.01, "length_gap_share": -0.2},
          "prefix_injection": {"refusal_gap": 0.05, "length_gap_share": 0.1}}
    s = _Src(_rep(fidelity={"mdlm": {"by_attack": by, "meets_goal_all_sets": False}}))
    assert dt.twins_fidelity_misses(s) == ("it misses the refusal rate on raw harmful prompts and the mean length "
                                          "on harmless prompts")
    assert dt.twins_fidelity(s, "mdlm") == "misses" and dt.twins_fidelity(s, "ar").startswith("cannot yet")
    del by["benign"]
    assert dt.twins_fidelity(s, "mdlm").startswith("cannot yet") and "not every" in dt.twins_fidelity_misses(s)


def test_the_twins_goals_are_the_reports_rules():
    from toydlm.real.twins.report import COHERENCE_MARGIN, FIDELITY_GAP, LENGTH_TOLERANCE

    g = json.loads((ROOT / "paper/goals.json").read_text())
    assert (g["twins_fidelity_gap"]["value"], g["twins_length_tolerance"]["value"],
            g["twins_coherence_margin"]["value"]) == (FIDELITY_GAP, LENGTH_TOLERANCE, COHERENCE_MARGIN)


def _pred(sampler: str, agrees: bool | None, preregistered: bool = True, measured: float = 0.5) -> dict:
    return {"sampler": sampler, "attack": "raw", "gen_length": 96, "preregistered": preregistered,
            "agrees_within_2se": agrees, "measured_refusal_rate": measured, "predicted_refusal_rate": 0.3}


def test_predictions_are_read_by_the_preregistered_rule_and_counted_by_rule():
    rep = _rep()
    rep["prediction"] = [_pred("low_confidence", False), _pred("ar_order", True), _pred("random", None, False),
                         _pred("low_confidence", True, False), _pred("ar_order", False, False)]
    s = _Src(rep)
    assert dt.twins_vs_prediction(s, "low_confidence") == "exceeds"  # the mean rule's agreement is not read
    assert dt.twins_vs_prediction(s, "ar_order") == "matches"
    assert dt.twins_vs_prediction(s, "entropy").startswith("cannot")
    assert dt.twins_agreement(s, True) == "one of two" and dt.twins_agreement(s, False) == "one of two"


def test_rainbow_and_coherence_words():
    rep = _rep([_cell("ar_order", harm_reading="harm", coherence_nll=2.5),
                _cell("random", harm_reading="compliant framing", coherence_nll=2.6),
                _cell("low_confidence", coherence_nll=2.4), _cell("entropy")])
    rep["teacher_nll"] = {"raw": 1.5}  # bound 2.5 with the goals' margin of 1.0
    rep["rules"]["R4_rainbow_padding"] = {"low_confidence": {"shorter_at_longer_canvas": True, "refusal_follows": None}}
    s = _Src(rep)
    assert dt.twins_rainbow(s, "low_confidence", "shorter_at_longer_canvas") == "shows"
    assert dt.twins_rainbow(s, "low_confidence", "refusal_follows").startswith("cannot be read")
    assert dt.twins_coherent(s) == ("two of three scored cells are within it, and one of two judged cells read "
                                    "as compliant framing, not harm")
    assert dt.twins_coherent(_Src({**_rep([_cell("ar_order")]), "teacher_nll": {}})).startswith("no cell")


@pytest.mark.parametrize("refusal,agrees,measured,reading", [
    (0.5, False, 0.5, "the order of commits, not only the length"),  # raised, and beyond the length rule
    (0.3, True, 0.3, "as the length account expects"),  # unchanged, and the rule matches
    (0.5, True, 0.5, "does not settle"),  # raised, but by as much as its lengths predict
    (0.5, False, 0.1, "does not settle"),  # raised, yet short of the rule
])
def test_the_eos_last_reading_needs_both_the_direction_and_the_length_rule(refusal, agrees, measured, reading):
    rep = _rep([_cell("ar_order"), _cell("low_confidence+eos_last", refusal=refusal)])
    rep["prediction"] = [_pred("low_confidence+eos_last", agrees, measured=measured)]
    assert reading in dt.twins_order_reading(_Src(rep))


def test_seed_directions_count_each_seed_on_its_own_rows():
    def seeds(*rates):
        return [{"student": f"mdlm_s{i}", "refusal_rate": r, "refusal_rate_se": 0.05} for i, r in enumerate(rates)]
    rep = _rep([_cell("ar_order", per_seed=seeds(0.3, 0.3, 0.3)),
                _cell("low_confidence+eos_last", per_seed=seeds(0.3, 0.45, 0.6))])  # 2 SEs combined: 0.141
    assert dt.twins_seed_directions(_Src(rep), "low_confidence+eos_last") == "two of three"
    assert dt.twins_seed_directions(_Src(_rep([_cell("ar_order")])), "random").startswith("no seed")
