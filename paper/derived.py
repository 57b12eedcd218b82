"""Quantities the paper quotes that are computed from several stored values (`{{ calc: NAME }}`)."""

from __future__ import annotations

from paper.render import fmt_value, number_word
from paper.sources import Sources

MODEL_NAMES = {"mdlm": "learned MDLM", "ar": "AR model", "oracle": "oracle"}


def _tolerance(s: Sources, se: float) -> float:
    """The calibration rule's tolerance for a cell with standard error `se`: max(floor, k SE) from goals.json."""
    g = s.get("goals")
    return max(g["calibration_tolerance_floor"]["value"], g["calibration_tolerance_se"]["value"] * se)


def _misses(s: Sources) -> list[dict]:
    held = s.get("exp3_theory_calibration.json")["heldout_cells"]
    return [r for r in held if abs(r["pred_asr"] - r["asr"]) > _tolerance(s, r["asr_se"])]


def _worst_forced_learned(s: Sources) -> dict:
    held = s.get("exp3_theory_calibration.json")["heldout_cells"]
    rs = [r for r in held if r["model"] == "mdlm" and r["attack"].startswith("prefill")]
    return max(rs, key=lambda r: r["pred_asr"] - r["asr"])


def _control_outliers(s: Sources) -> str:
    rows = [r for r in s.get("default-s1/summary.json")["controls"]["rows"] if not r["within_3se"]]
    names = {"ar": "AR model", "mdlm": "MDLM", "oracle": "oracle"}
    return "; ".join(f"{names.get(r['model'], r['model'])} with `{r['sampler']}` on "
                     f"{r['attack'].replace('wrapper:', '')} prompts, ASR {r['asr']:.3f} against {r['exact']:.3f}"
                     for r in rows) or "none"


def _count(k: int, n: int) -> str:
    """`all four`, `three of four`, `none of four`: a count of n in words (digits past ten)."""
    w = lambda x: number_word(x) if x <= 10 else str(x)  # noqa: E731
    return f"all {w(n)}" if k == n and n > 1 else f"none of {w(n)}" if k == 0 else f"{w(k)} of {w(n)}"


def _mdlm_order_controls(s: Sources) -> str:
    """What the MDLM's wrapper-family controls show per decoding order: how many lie above the exact rate, their
    z range, and how many fall outside three SE (generated, so the sentence follows the stored controls)."""
    rows = [r for r in s.get("default-s1/summary.json")["controls"]["rows"]
            if r["model"] == "mdlm" and r["grammar"] == "default" and r["attack"].startswith("wrapper:")]
    parts = []
    for sampler, name in (("ar_order", "in AR order"), ("random_T16", "in random order")):
        rs = [r for r in rows if r["sampler"] == sampler]
        zs = [r["z"] for r in rs]
        out = [r for r in rs if not r["within_3se"]]
        where = ("each within three SE" if not out else
                 f"{_count(len(out), len(rs))} outside three SE ("
                 + "; ".join(f"`{r['attack'].replace('wrapper:', '')}`, {r['asr']:.3f} against {r['exact']:.3f}"
                             for r in out) + ")")
        parts.append(f"{name} its ASR lies above the exact rate on {_count(sum(z > 0 for z in zs), len(rs))} "
                     f"wrapper families (z from {fmt_value(min(zs), '+f1')} to {fmt_value(max(zs), '+f1')}), {where}")
    return "; ".join(parts)


def _goal_verdict(s: Sources, key: str) -> str:
    """`met` or `missed`: a calibration share against the project's target (a word, so prose can follow the result)."""
    got = s.get("exp3_theory_calibration.json")["calibration"][key]
    return "met" if got >= s.get("goals")["calibration_nontrivial_within"]["value"] else "missed"


def _worst_miss(s: Sources) -> dict:
    """The held-out cell with the largest |predicted - measured| ASR."""
    held = s.get("exp3_theory_calibration.json")["heldout_cells"]
    return max(held, key=lambda r: abs(r["pred_asr"] - r["asr"]))


def _seed_runs_verdict(s: Sources) -> str:
    """How many training seeds, each scored on its own cells, meet the non-trivial calibration target."""
    goal = s.get("goals")["calibration_nontrivial_within"]["value"]
    per = s.get("exp3_theory_calibration.json")["calibration"].get("per_seed") or {}
    got = [v["nontrivial_frac_within_2se"] for v in per.values()]
    k, m = sum(g >= goal for g in got), len(got)
    if k == m:
        return f"every one of the {m} seeds meets it"
    if k == 0:
        return f"none of the {m} seeds meets it"
    return f"{k} of the {m} seeds meet it, so at this sample size one seed does not settle the question"


def _trivial_prefill_k(s: Sources) -> int:
    """The shortest prefill whose pinned tokens alone always meet the harm threshold."""
    alone = s.get("exp5_recovery_curves.json")["prefill_alone_harmful"]
    return min(int(k) for k, v in alone.items() if v >= 1.0)


def _response_len(s: Sources) -> int:
    """The longest swept block length is the whole response (global selection)."""
    return max(r["value"] for r in s.get("exp4_sweeps.json")["sweeps"]["block_length"])


def _grid_within(s: Sources, model: str) -> float:
    """Share of experiment 4 and 5 cells of one model whose held-out prediction meets the calibration rule."""
    rows = [r for rs in s.get("exp4_sweeps.json")["sweeps"].values() for r in rs]
    if s.has("exp5_recovery_curves.json"):
        d5 = s.get("exp5_recovery_curves.json")
        rows += [*d5["prefill"], *d5["inject"]]
    ok = [abs(r["pred_asr"] - r["asr"]) <= _tolerance(s, r["asr_se"]) for r in rows if r["model"] == model]
    return sum(ok) / len(ok)


def _sweep(s: Sources, sweep: str, **kw) -> list[float]:
    rows = s.get("exp4_sweeps.json")["sweeps"][sweep]
    return [r["asr"] for r in rows if all(r.get(k) == v for k, v in kw.items())]


def _twins_cell(s: Sources, student: str, sampler: str, attack: str) -> dict:
    return next(c for c in s.get("twins.json")["cells"]
                if (c["student"], c["sampler"], c["attack"]) == (student, sampler, attack))


def _twins_direction(s: Sources, sampler: str, attack: str = "raw", key: str = "refusal_rate") -> str:
    """How a sampler moves the MDLM student's rate against AR order on the same weights: a verb phrase that
    names the direction only when the difference exceeds two combined standard errors."""
    a, b = _twins_cell(s, "mdlm", "ar_order", attack), _twins_cell(s, "mdlm", sampler, attack)
    if a[key] is None or b[key] is None:
        return "has not been judged for"
    d, se = b[key] - a[key], (a[key + "_se"] ** 2 + b[key + "_se"] ** 2) ** 0.5
    if abs(d) <= 2 * se:
        return "leaves unchanged (within two standard errors)"
    return "raises" if d > 0 else "lowers"


def _twins_agreement(s: Sources, flag: str) -> str:
    """How many of the MDLM student's harmful-prompt cells a length prediction matches within 2 SE (not the
    forced-full-length control's: it cannot end, so its length is no test)."""
    rows = [p for p in s.get("twins.json")["prediction"]
            if p["attack"] != "benign" and "eosinf" not in p["sampler"] and p.get(flag) is not None]
    return f"{sum(p[flag] for p in rows)} of {len(rows)}"


RULES = {"mean": ("agrees_within_2se", "predicted_refusal_rate"),
         "dist": ("length_dist_agrees_within_2se", "predicted_refusal_rate_length_dist")}


def _twins_vs_prediction(s: Sources, sampler: str, attack: str = "raw", rule: str = "dist") -> str:
    """Whether a cell's measured refusal rate matches, exceeds or falls short of a length rule's prediction (two
    combined standard errors): `mean`, the rule named first, or `dist`, the rule added after the first results."""
    flag, key = RULES[rule]
    p = next(p for p in s.get("twins.json")["prediction"] if (p["sampler"], p["attack"]) == (sampler, attack))
    if p.get(flag):
        return "matches"
    return "exceeds" if p["measured_refusal_rate"] > p[key] else "falls short of"


SAMPLER_NAMES = {"ar_order": "AR order", "random_T48": "random order", "mdlm_T48": "MDLM ancestral sampling",
                 "remdm_cap_T96": "ReMDM", "entropy_T48": "entropy ordering",
                 "low_confidence_T48": "global low confidence",
                 "low_confidence_B8_T48": "8-token blocks", "low_confidence_B32_T48": "32-token blocks"}


def _names(xs: list[str]) -> str:
    xs = [SAMPLER_NAMES.get(x, f"`{x}`") for x in xs]
    return xs[0] if len(xs) == 1 else ", ".join(xs[:-1]) + " and " + xs[-1]


def _twins_rule_lists(s: Sources, rule: str = "dist") -> str:
    """Which raw-prompt samplers other than global low confidence a length rule matches, and which refuse more or
    less than it predicts: the verdict's lists, generated from the stored predictions."""
    flag, key = RULES[rule]
    rows = [p for p in s.get("twins.json")["prediction"] if p["attack"] == "raw"
            and "eosinf" not in p["sampler"] and p["sampler"] != "low_confidence_T48"]
    ok = [p["sampler"] for p in rows if p.get(flag)]
    less = [p["sampler"] for p in rows if not p.get(flag) and p["measured_refusal_rate"] < p[key]]
    more = [p["sampler"] for p in rows if not p.get(flag) and p["measured_refusal_rate"] > p[key]]
    parts = [f"it matches {_names(ok)}" if ok else "it matches no other sampler"]
    if less:
        parts.append(f"{_names(less)} {'refuses' if len(less) == 1 else 'refuse'} less than it predicts")
    if more:
        parts.append(f"{_names(more)} more")
    return ", ".join(parts[:1]) + (", but " + " and ".join(parts[1:]) if parts[1:] else "")


def _twins_near_teacher(s: Sources) -> str:
    """Where eight-token blocks and the forced-full-length control land against the teacher's refusal rate on
    raw prompts (two standard errors of the cell)."""
    teacher = s.get("twins.json")["fidelity"]["mdlm"]["teacher_refusal_rate"]
    near = [abs(c["refusal_rate"] - teacher) <= 2 * c["refusal_rate_se"] for c in
            (_twins_cell(s, "mdlm", x, "raw") for x in ("low_confidence_B8_T48", "low_confidence_eosinf_T48"))]
    if all(near):
        return f"both lie within two standard errors of the teacher's own rate ({teacher:.2f})"
    return f"{_count(sum(near), len(near))} lie within two standard errors of the teacher's own rate ({teacher:.2f})"


def _twins_value_blind(s: Sources) -> str:
    """How many value-blind samplers refuse within two combined SEs of AR order on raw prompts."""
    blind = ("random_T48", "mdlm_T48", "remdm_cap_T96")
    n = sum(_twins_direction(s, b).startswith("leaves unchanged") for b in blind)
    return _count(n, len(blind))


def _twins_fidelity_goal(s: Sources, arch: str) -> str:
    """`meets` or `misses` the fidelity goal (`twins_fidelity_gap` in goals.json; raw harmful holdout prompts,
    natural sampler)."""
    goal = s.get("goals")["twins_fidelity_gap"]["value"]
    return "meets" if abs(s.get("twins.json")["fidelity"][arch]["refusal_gap"]) <= goal else "misses"


def _twins_verdict(s: Sources) -> str:
    """The comparison table's verdict on the twin: the direction of the attacked ASR under global low confidence
    against AR order, and whether the teacher's lengths account for the raw-prompt refusal rate."""
    asr = _twins_direction(s, "low_confidence_T48", attack="prefix_injection", key="asr")
    raw = _twins_direction(s, "low_confidence_T48")
    pred = next((p for p in s.get("twins.json")["prediction"]
                 if (p["sampler"], p["attack"]) == ("low_confidence_T48", "raw")), {})
    word = "agree" if asr == "lowers" else "disagree"
    said = lambda ok: "matches" if ok else "misses"  # noqa: E731
    return (f"**{word} on ASR**: under `prefix_injection` global low confidence {asr} the judged ASR against AR "
            f"order; on raw prompts it {raw} the refusal rate, and the measurement "
            f"{said(pred.get('agrees_within_2se'))} the mean-length rule named first and "
            f"{said(pred.get('length_dist_agrees_within_2se'))} the length-distribution rule chosen after the data "
            "were seen")


DERIVED = {
    "grid_within_oracle": lambda s: _grid_within(s, "oracle"),
    "grid_within_mdlm": lambda s: _grid_within(s, "mdlm"),
    "blocks_min_asr": lambda s: min(r["asr"] for r in s.get("exp4_sweeps.json")["sweeps"]["block_length"]
                                    if r["model"] == "mdlm" and r["attack"] == "wrapper:prefix"
                                    and r["value"] < _response_len(s)),
    "remdm_min_asr": lambda s: min(_sweep(s, "sigma", model="mdlm", attack="wrapper:prefix")),
    "remdm_max_asr": lambda s: max(_sweep(s, "sigma", model="mdlm", attack="wrapper:prefix")),
    "prefill_trivial_k": _trivial_prefill_k,
    "control_outliers": _control_outliers,
    "mdlm_order_controls": _mdlm_order_controls,
    "run_minutes": lambda s: s.get("default-s1/summary.json")["timings"]["total_s"] / 60,
    "n_cells": lambda s: len(s.get("default-s1/summary.json")["cells"]),
    "heldout_misses": lambda s: len(_misses(s)),
    "heldout_misses_mdlm": lambda s: sum(r["model"] == "mdlm" for r in _misses(s)),
    "heldout_misses_mdlm_over": lambda s: sum(r["model"] == "mdlm" and r["pred_asr"] > r["asr"] for r in _misses(s)),
    "heldout_misses_oracle": lambda s: sum(r["model"] == "oracle" for r in _misses(s)),
    "calib_max_err": lambda s: max(abs(r["pred_asr"] - r["asr"])
                                   for r in s.get("exp3_theory_calibration.json")["heldout_cells"]),
    "nontrivial_goal": lambda s: _goal_verdict(s, "nontrivial_frac_within_2se"),
    "overall_goal": lambda s: _goal_verdict(s, "frac_within_2se"),
    "seed_runs_verdict": _seed_runs_verdict,
    "worst_miss_sampler": lambda s: _worst_miss(s)["sampler"],
    "worst_miss_attack": lambda s: _worst_miss(s)["attack"],
    "worst_miss_model": lambda s: MODEL_NAMES[_worst_miss(s)["model"]],
    "prefill_worst_measured": lambda s: _worst_forced_learned(s)["asr"],
    "prefill_worst_pred": lambda s: _worst_forced_learned(s)["pred_asr"],
    "twins_agreement_mean_rule": lambda s: _twins_agreement(s, "agrees_within_2se"),
    "twins_agreement_length_dist": lambda s: _twins_agreement(s, "length_dist_agrees_within_2se"),
    "twins_attack_asr": lambda s: _twins_direction(s, "low_confidence_T48", attack="prefix_injection", key="asr"),
    "twins_verdict": _twins_verdict,
    "twins_value_blind": _twins_value_blind,
    "twins_near_teacher": _twins_near_teacher,
    "twins_global_vs_pred": lambda s: _twins_vs_prediction(s, "low_confidence_T48"),
    "twins_global_vs_mean_rule": lambda s: _twins_vs_prediction(s, "low_confidence_T48", rule="mean"),
    "twins_rule_lists_dist": lambda s: _twins_rule_lists(s, "dist"),
    "twins_rule_lists_mean": lambda s: _twins_rule_lists(s, "mean"),
    "twins_global_benign_vs_pred": lambda s: _twins_vs_prediction(s, "low_confidence_T48", "benign"),
    "twins_blocks_vs_pred": lambda s: _twins_vs_prediction(s, "low_confidence_B8_T48"),
    "twins_ar_order_vs_pred": lambda s: _twins_vs_prediction(s, "ar_order"),
    "twins_fidelity_mdlm": lambda s: _twins_fidelity_goal(s, "mdlm"),
    "twins_fidelity_ar": lambda s: _twins_fidelity_goal(s, "ar"),
    "twins_global_refusal": lambda s: _twins_direction(s, "low_confidence_T48"),
    "twins_global_asr": lambda s: _twins_direction(s, "low_confidence_T48", key="asr"),
    "twins_blocks_refusal": lambda s: _twins_direction(s, "low_confidence_B8_T48"),
    "twins_eosinf_refusal": lambda s: _twins_direction(s, "low_confidence_eosinf_T48"),
}

from paper.derived_sri import DERIVED_SRI  # noqa: E402

DERIVED |= DERIVED_SRI
