"""Verdicts of the real-SRI section, computed from `results/real_sri.json` so the words follow the numbers."""

from __future__ import annotations

import json
import re

from paper.sources import Sources

SRC = "real_sri.json"
GUARD_MODEL = "Qwen2.5-Coder-1.5B-Instruct"  # the guard-model baseline of experiments/real_sri.py (docs/real-sri.md)


def goal(s: Sources, key: str) -> float:
    """A target from `paper/goals.json` (`sri_guard_auroc_unseen`, `sri_guard_fpr_benign`, `sri_guard_cost_ratio`)."""
    return s.get("goals")[key]["value"]


def _ci_vs(lo: float, hi: float, x: float) -> str:
    return "above" if lo >= x else "below" if hi < x else "straddling"


def _study_removed(s: Sources) -> list[float]:
    """Per AR model of the seed paper's defence table, the share of its undefended jailbreak ASR that SRI Guard
    removed: 1 - ASR(SRI Guard) / ASR(undefended)."""
    n = s.get("seed")["numbers"]
    return [1 - n[f"guard_ar_sri_guard_asr_{m}"]["value"] / n[f"guard_ar_undefended_asr_{m}"]["value"]
            for m in ("qwen", "llama", "gemma")]


def sri_detects_verdict(s: Sources) -> str:
    """The comparison row: does SRI Guard reach the goal on the unseen family of a real model, and how does the
    share of successes it flags compare with the operating point the seed paper's own AR rows imply?"""
    g = s.get(SRC)["sri_guard"]
    lo, hi = g["auroc_unseen_ci95"]
    auroc_goal = goal(s, "sri_guard_auroc_unseen")
    where = _ci_vs(lo, hi, auroc_goal)
    if where == "above" and g["fpr_benign"] <= goal(s, "sri_guard_fpr_benign"):
        head = "**agree**: the unseen-family AUROC reaches the goal at a low false-positive rate"
    else:
        word = "**disagree**" if where == "below" else "**cannot say**"
        head = f"{word} on the held-out family: its 95% interval lies {where} {auroc_goal:.2f}"
    if g.get("flagged_share") is None:
        return head
    r = _study_removed(s)
    rel = "below" if g["flagged_share"] < min(r) else "above" if g["flagged_share"] > max(r) else "within"
    return (f"{head}; it flags {100 * g['flagged_share']:.1f}% of all successes, {rel} the "
            f"{100 * min(r):.0f}–{100 * max(r):.0f}% of successful jailbreaks that the seed paper's own AR rows imply "
            "its SRI Guard removed")


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
    ratio = goal(s, "sri_guard_cost_ratio")
    met = [x >= ratio for x in (t, fl)]
    if all(met):
        return f"**agree**: at least {ratio:g} times cheaper than the guard model in time and in FLOPs"
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


def step_threshold(s: Sources) -> float:
    """The AUROC the by-step detection was scored against, read from its result key (`first_step_auroc_0_9`),
    so the sentence names the threshold the run used; the SRI Guard AUROC goal when the key is absent."""
    per = (s.get("real_sri_signal.json").get("detection_by_step_detail") or {}).get("per_detector") or {}
    for d in per.values():
        for k in d:
            if m := re.fullmatch(r"first_step_auroc_(\d+)_(\d+)", k):
                return float(f"{m.group(1)}.{m.group(2)}")
    return goal(s, "sri_guard_auroc_unseen")


def first_step(s: Sources, detector: str) -> str:
    """The first step a detector reaches the by-step AUROC threshold in the harder task, as words."""
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


def _n_eval(s: Sources, details: str | None) -> int | None:
    """Prompts per attack cell of a further checkpoint, from its details file (None when it is not stored or the
    cells differ in size)."""
    p = s.root / "results" / details if details else None
    if p is None or not p.is_file():
        return None
    ns = {c["n"] for a, c in json.loads(p.read_text())["cells"].items() if a in s.get(SRC)["irr"]}
    return ns.pop() if len(ns) == 1 else None


def other_checkpoints(s: Sources) -> str:
    """A sentence on any further checkpoint's IRR (empty when only the main one was run)."""
    out = []
    for name, o in s.get(SRC).get("other_checkpoints", {}).items():
        irr = ", ".join(f"{v:.2f} under `{a}`" for a, v in o["irr"].items() if v is not None)
        n = (o.get("anchors") or {})
        k = _n_eval(s, o.get("details"))
        evals = f"; the first {k} HarmBench prompts" if k else ""
        out.append(f" On {name} (its own anchors from {n.get('n_benign_answered')} answered harmless and "
                   f"{n.get('n_harmful_refused')} refused AdvBench prompts{evals}) "
                   f"the IRR is {irr}; the harm judge, SRI Guard and the baselines were not run on it.")
    return "".join(out)


def abstract_sentence(s: Sources) -> str:
    """The abstract's sentence on SRI Guard on the real model, its verb set by the unseen-family interval."""
    g = s.get(SRC)["sri_guard"]
    lo, hi = g["auroc_unseen_ci95"]
    auroc_goal = goal(s, "sri_guard_auroc_unseen")
    verb = ("detects" if lo >= auroc_goal else "does not detect" if hi < auroc_goal else "may or may not detect")
    every = ("" if g.get("auroc_all_ci95") is None else
             f"; over every success {g['auroc_all']:.2f}, interval {g['auroc_all_ci95'][0]:.2f} to "
             f"{g['auroc_all_ci95'][1]:.2f}, flagging {100 * g['flagged_share']:.1f}% of them")
    return (f" On that model the seed paper's SRI Guard {verb} the held-out jailbreak family (AUROC "
            f"{g['auroc_unseen']:.2f}, bootstrap interval {lo:.2f} to {hi:.2f}{every}), though it costs "
            f"{g['overhead_pct']:.3f}% of generation time, {g['overhead_ratio_vs_guard_model']:.0f} times less than "
            f"a guard model, {GUARD_MODEL}.")


def checks_verdict(s: Sources) -> str:
    """What the two checks of SRI Guard (answered harmless rows only; literal end padding) do to the unseen-family
    AUROC, against the goal and against the main result's interval."""
    rep = s.get(SRC)
    checks, main = rep["sri_guard_checks"], rep["sri_guard"]
    auroc_goal = goal(s, "sri_guard_auroc_unseen")
    names = {"answered_harmless_only": "answered harmless rows only", "literal_end_padding": "the literal end padding"}
    parts = []
    for k, name in names.items():
        c = checks[k]
        lo, hi = c["auroc_unseen_ci95"]
        moved = ("within the main result's interval" if main["auroc_unseen_ci95"][0] <= c["auroc_unseen"]
                 <= main["auroc_unseen_ci95"][1] else "outside the main result's interval")
        parts.append(f"with {name} the unseen-family AUROC is {c['auroc_unseen']:.2f}, {moved}, and its interval "
                     f"lies {_ci_vs(lo, hi, auroc_goal)} the goal of {auroc_goal:.2f}")
    return "; ".join(parts)


DERIVED_SRI = {
    "sri_checks_verdict": checks_verdict,
    "sri_family_auroc_min": lambda s: min(v["auroc"] for v in s.get(SRC)["sri_guard"]["by_family"].values()),
    "sri_family_auroc_max": lambda s: max(v["auroc"] for v in s.get(SRC)["sri_guard"]["by_family"].values()),
    "study_ar_removed_min": lambda s: min(_study_removed(s)),
    "study_ar_removed_max": lambda s: max(_study_removed(s)),
    "sri_abstract": abstract_sentence,
    "sri_other_checkpoints": other_checkpoints,
    "sri_self_examine_note": self_examine_note,
    "sri_min_successes": min_successes,
    "sri_step_goal": lambda s: f"{step_threshold(s):g}",
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
