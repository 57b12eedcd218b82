"""Verdicts of the real-SRI section, computed from `results/real_sri.json` so the words follow the numbers."""

from __future__ import annotations

from paper.sources import Sources

SRC = "real_sri.json"
AUROC_GOAL, FPR_GOAL, RATIO_GOAL = 0.90, 0.05, 100.0


def _ci_vs(lo: float, hi: float, goal: float) -> str:
    return "above" if lo >= goal else "below" if hi < goal else "straddling"


def sri_detects_verdict(s: Sources) -> str:
    """The comparison row: does SRI Guard reach the study's detection on the unseen family of a real model?"""
    g = s.get(SRC)["sri_guard"]
    lo, hi = g["auroc_unseen_ci95"]
    where = _ci_vs(lo, hi, AUROC_GOAL)
    if where == "above" and g["fpr_benign"] <= FPR_GOAL:
        return "**agree**: the unseen-family AUROC reaches the goal at a low false-positive rate"
    word = "**disagree**" if where == "below" else "**cannot say**"
    return f"{word}: the unseen-family 95% interval lies {where} {AUROC_GOAL:.2f}"


def sri_beats(s: Sources, baseline: str) -> str:
    """`beats`, `does not beat` or `ties with`: SRI Guard's unseen-family AUROC interval against a baseline's."""
    rep = s.get(SRC)
    lo, hi = rep["sri_guard"]["auroc_unseen_ci95"]
    b = rep["baselines"][baseline]["auroc_unseen"]
    return "beats" if lo > b else "falls below" if hi < b else "does not separate from"


def sri_cheap_verdict(s: Sources) -> str:
    """The comparison row: SRI Guard's cost against the guard model's, in time and FLOPs, on the real model."""
    g = s.get(SRC)["sri_guard"]
    t, fl = g["overhead_ratio_vs_guard_model"], g["flops_ratio_vs_guard_model"]
    if t is None or fl is None:
        return "**cannot say**: the cost run is not in this build"
    met = [x >= RATIO_GOAL for x in (t, fl)]
    if all(met):
        return "**agree**: more than a hundredfold cheaper than the guard model in time and in FLOPs"
    return "**partly agree**" if any(met) else "**disagree**"


def irr_range(s: Sources) -> str:
    """The real AR model's IRR (lambda_r = 0.5) across attacks, low to high."""
    v = [x for x in s.get(SRC)["irr"].values() if x is not None]
    return f"{min(v):.2f}–{max(v):.2f}"


def irr_verdict(s: Sources) -> str:
    """The comparison row on internal recovery: the real AR model's IRR against the study's AR bound."""
    bound = s.get("seed")["numbers"]["irr_swap_ar_max"]["value"]
    v = [x for x in s.get(SRC)["irr"].values() if x is not None]
    above = sum(x > bound for x in v)
    where = "within it under every attack" if not above else f"above it under {above} of {len(v)} attacks"
    return (f"**cannot say** for diffusion (no diffusion checkpoint); against the study's AR bound of {bound:.2f}, "
            f"the real AR model's IRR is {where}")


def first_step(s: Sources, detector: str) -> str:
    """The first step a detector reaches AUROC 0.9 in the harder task, as words."""
    steps = s.get(SRC)["detection_by_step"]
    if detector not in steps:
        return "(not scored)"
    return "never" if steps[detector] is None else f"at step {steps[detector]}"


def self_examine_note(s: Sources) -> str:
    """Say so when Self-Examine ranks harmless answers above jailbreaks (AUROC below one half)."""
    a = s.get(SRC)["baselines"].get("self_examine", {}).get("auroc_unseen")
    return "" if a is None or a >= 0.5 else ("; below chance: the generator calls its own harmless answers harmful "
                                               "more readily than its jailbroken ones")


def min_successes(s: Sources) -> str:
    """The fewest successful jailbreaks of any evaluated attack set."""
    cells = s.get("real_sri_signal.json")["cells"]
    return str(min(c["n_successful"] for a, c in cells.items() if a in s.get(SRC)["irr"]))


def other_checkpoints(s: Sources) -> str:
    """A sentence on any further checkpoint's IRR (empty when only the main one was run)."""
    out = []
    for name, o in s.get(SRC).get("other_checkpoints", {}).items():
        irr = ", ".join(f"{v:.2f} under `{a}`" for a, v in o["irr"].items() if v is not None)
        n = (o.get("anchors") or {})
        out.append(f" On {name} (its own anchors from {n.get('n_benign_answered')} answered harmless and "
                   f"{n.get('n_harmful_refused')} refused AdvBench prompts; the first hundred HarmBench prompts) "
                   f"the IRR is {irr}; the harm judge, SRI Guard and the baselines were not run on it.")
    return "".join(out)


def abstract_sentence(s: Sources) -> str:
    """The abstract's sentence on SRI Guard on the real model, its verb set by the unseen-family interval."""
    g = s.get(SRC)["sri_guard"]
    lo, hi = g["auroc_unseen_ci95"]
    verb = ("detects" if lo >= AUROC_GOAL else "does not detect" if hi < AUROC_GOAL else "may or may not detect")
    return (f" On that model the seed paper's SRI Guard {verb} the held-out jailbreak family (AUROC "
            f"{g['auroc_unseen']:.2f}, bootstrap interval {lo:.2f} to {hi:.2f}), though it costs "
            f"{g['overhead_pct']:.3f}% of generation time, {g['overhead_ratio_vs_guard_model']:.0f} times less than "
            "a guard model three times the generator's size.")


DERIVED_SRI = {
    "sri_abstract": abstract_sentence,
    "sri_other_checkpoints": other_checkpoints,
    "sri_self_examine_note": self_examine_note,
    "sri_min_successes": min_successes,
    "sri_step_goal": lambda s: f"{AUROC_GOAL:.1f}",
    "sri_detects_verdict": sri_detects_verdict,
    "sri_cheap_verdict": sri_cheap_verdict,
    "sri_beats_perplexity": lambda s: sri_beats(s, "perplexity_filter"),
    "sri_beats_text": lambda s: sri_beats(s, "text_level_refusal"),
    "sri_irr_range": irr_range,
    "sri_irr_verdict": irr_verdict,
    "sri_first_sigma": lambda s: first_step(s, "sri_sigma_t"),
    "sri_first_guard": lambda s: first_step(s, "sri_guard"),
    "sri_first_text": lambda s: first_step(s, "text_level_refusal"),
    "sri_first_guard_model": lambda s: first_step(s, "guard_model"),
    "sri_first_self_examine": lambda s: first_step(s, "self_examine"),
}
