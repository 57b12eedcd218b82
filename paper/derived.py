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
}

from paper.derived_sri import DERIVED_SRI  # noqa: E402
from paper.derived_twins import DERIVED_TWINS  # noqa: E402

DERIVED |= DERIVED_SRI | DERIVED_TWINS
