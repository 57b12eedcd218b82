"""Quantities the paper quotes that are computed from several stored values (`{{ calc: NAME }}`)."""

from __future__ import annotations

from paper.sources import Sources


def _misses(s: Sources) -> list[dict]:
    held = s.get("exp3_theory_calibration.json")["heldout_cells"]
    return [r for r in held if abs(r["pred_asr"] - r["asr"]) > max(0.02, 2 * r["asr_se"])]


def _positives(s: Sources, run: str) -> int | None:
    """Successful jailbreaks in one SRI run (None when sri.json has no such run: its schema is evolving)."""
    try:
        p = s.get("default-s1/sri.json")["runs"][run]["pooling"]["generated"]["per_family"]
    except (KeyError, TypeError):
        return None
    return sum(v["n_pos"] for v in p.values())


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


DERIVED = {
    "control_outliers": _control_outliers,
    "run_minutes": lambda s: s.get("default-s1/summary.json")["timings"]["total_s"] / 60,
    "n_cells": lambda s: len(s.get("default-s1/summary.json")["cells"]),
    "heldout_misses": lambda s: len(_misses(s)),
    "heldout_misses_mdlm": lambda s: sum(r["model"] == "mdlm" for r in _misses(s)),
    "heldout_misses_mdlm_over": lambda s: sum(r["model"] == "mdlm" and r["pred_asr"] > r["asr"] for r in _misses(s)),
    "heldout_misses_oracle": lambda s: sum(r["model"] == "oracle" for r in _misses(s)),
    "calib_max_err": lambda s: max(abs(r["pred_asr"] - r["asr"])
                                   for r in s.get("exp3_theory_calibration.json")["heldout_cells"]),
    "prefill_worst_measured": lambda s: _worst_forced_learned(s)["asr"],
    "prefill_worst_pred": lambda s: _worst_forced_learned(s)["pred_asr"],
    "sri_pos_lc": lambda s: _positives(s, "mdlm/low_confidence_T16"),
    "sri_pos_ar_order": lambda s: _positives(s, "mdlm/ar_order"),
    "sri_pos_ar": lambda s: _positives(s, "ar/ar"),
    "guard_cost_multiple": lambda s: 1 / s.get("default-s1/summary.json")["sri_guard"]["overhead_ratio_vs_guard_model"],
}
