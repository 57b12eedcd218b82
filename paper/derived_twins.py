"""The twins section's computed words (`{{ calc: twins_* }}`), read from `results/twins.json` by the rules of
`docs/real-text-twins.md` §0: every direction word needs two combined standard errors, and a verdict a rule cannot
reach yet (a cell not judged or not scored) says so instead of guessing."""

from __future__ import annotations

from paper.render import number_word
from paper.sources import Sources

SRC = "twins.json"
SET_NAMES = {"raw": "raw harmful", "prefix_injection": "`prefix_injection`", "benign": "harmless"}


def _rep(s: Sources) -> dict:
    return s.get(SRC)


def _L(s: Sources) -> int:
    """The canvas the students were trained at (the swap's default generation length)."""
    return int(_rep(s)["corpus"]["details"]["response_len"])


def _count(k: int, n: int) -> str:
    w = lambda x: number_word(x) if x <= 10 else str(x)  # noqa: E731
    return f"all {w(n)}" if k == n and n > 1 else f"none of {w(n)}" if k == 0 else f"{w(k)} of {w(n)}"


def _cell(s: Sources, sampler: str, attack: str, L: int | None = None, student: str = "mdlm") -> dict | None:
    L = _L(s) if L is None else L
    return next((c for c in _rep(s)["cells"] if (c["student"], c["sampler"], c["attack"], c["gen_length"])
                 == (student, sampler, attack, L)), None)


def twins_direction(s: Sources, sampler: str, attack: str = "raw", key: str = "refusal_rate") -> str:
    """How a sampler moves the MDLM student's `key` against AR order on the same weights, both at the trained
    canvas: a direction only beyond two combined standard errors."""
    a, b = _cell(s, "ar_order", attack), _cell(s, sampler, attack)
    if a is None or b is None:
        return "cannot be compared with (a cell was not sampled)"
    if a[key] is None or b[key] is None:
        return "cannot yet be compared on this measure with (a cell is not judged yet)"
    return {1: "raises", -1: "lowers", 0: "leaves unchanged (within two standard errors)"}[_shift(a, b, key)]


def _shift(a: dict, b: dict, key: str = "refusal_rate") -> int:
    """+1 or -1 when `b[key]` is above or below `a[key]` by more than two combined standard errors, else 0."""
    d, se = b[key] - a[key], (a[key + "_se"] ** 2 + b[key + "_se"] ** 2) ** 0.5
    return 0 if abs(d) <= 2 * se else (1 if d > 0 else -1)


N_SETS = len(SET_NAMES)


def twins_fidelity(s: Sources, arch: str) -> str:
    """`meets` or `misses` rule R1's bounds on all three prompt sets (`cannot yet be checked against` while a set
    or the student is missing)."""
    fid = _rep(s)["fidelity"].get(arch)
    if fid is None or len(fid["by_attack"]) < N_SETS:
        return "cannot yet be checked against"
    return "meets" if fid["meets_goal_all_sets"] else "misses"


def twins_fidelity_misses(s: Sources, arch: str = "mdlm") -> str:
    """Which of R1's six conditions (refusal and length on each prompt set) a student misses, by name."""
    g = s.get("goals")
    gap, tol = g["twins_fidelity_gap"]["value"], g["twins_length_tolerance"]["value"]
    by = _rep(s)["fidelity"][arch]["by_attack"]
    refusal = [SET_NAMES[a] for a, r in by.items() if abs(r["refusal_gap"]) > gap]
    length = [SET_NAMES[a] for a, r in by.items() if abs(r["length_gap_share"]) > tol]
    if refusal and refusal == length:
        parts = [f"both the refusal rate and the mean length on {_names(refusal)} prompts"]
    else:
        parts = ([f"the refusal rate on {_names(refusal)} prompts"] if refusal else []) + \
                ([f"the mean length on {_names(length)} prompts"] if length else [])
    if len(by) < N_SETS:
        return "not every prompt set has been sampled"
    return "it meets every condition" if not parts else "it misses " + " and ".join(parts)


def _names(xs: list[str]) -> str:
    return xs[0] if len(xs) == 1 else ", ".join(xs[:-1]) + " and " + xs[-1]


def _prediction(s: Sources, sampler: str, attack: str, L: int | None = None) -> dict | None:
    L = _L(s) if L is None else L
    return next((p for p in _rep(s)["prediction"] if p["preregistered"] and
                 (p["sampler"], p["attack"], p["gen_length"]) == (sampler, attack, L)), None)


def twins_vs_prediction(s: Sources, sampler: str, attack: str = "raw") -> str:
    """Whether a cell's measured refusal rate matches, exceeds or falls short of the preregistered length rule
    (R2: two combined standard errors)."""
    p = _prediction(s, sampler, attack)
    if p is None:
        return "cannot be checked against"
    if p["agrees_within_2se"]:
        return "matches"
    return "exceeds" if p["measured_refusal_rate"] > p["predicted_refusal_rate"] else "falls short of"


def twins_order_reading(s: Sources) -> str:
    """What EOS-last says about the length account on the twin: with the end held back, does global low
    confidence still raise refusal against AR order and beyond what the length rule (R2) predicts?"""
    a, b = _cell(s, "ar_order", "raw"), _cell(s, "low_confidence+eos_last", "raw")
    shift = None if a is None or b is None else _shift(a, b)
    vs = twins_vs_prediction(s, "low_confidence+eos_last")
    if shift == 1 and vs == "exceeds":
        return "so on the twin the order of commits, not only the length, moves refusal"
    if shift == 0 and vs == "matches":
        return "as the length account expects once the end cannot come early"
    return "which the length account alone does not settle"


def twins_seed_directions(s: Sources, sampler: str, attack: str = "raw") -> str:
    """`k of n`: the MDLM seeds in which `sampler` raises the refusal rate against AR order beyond two combined
    standard errors, each seed on its own rows."""
    a, b = _cell(s, "ar_order", attack), _cell(s, sampler, attack)
    if a is None or b is None or not a.get("per_seed") or not b.get("per_seed"):
        return "no seed's cells to compare in"
    ao = {p["student"]: p for p in a["per_seed"]}
    pairs = [(ao[p["student"]], p) for p in b["per_seed"] if p["student"] in ao]
    k = sum(_shift(x, y) == 1 for x, y in pairs)
    return _count(k, len(pairs))


def twins_agreement(s: Sources, preregistered: bool) -> str:
    """`k of n`: the MDLM cells (every sampler, prompt set and canvas) whose refusal rate a length rule matches."""
    rows = [p for p in _rep(s)["prediction"] if p["preregistered"] == preregistered
            and p["agrees_within_2se"] is not None]
    return _count(sum(bool(p["agrees_within_2se"]) for p in rows), len(rows))


def twins_rainbow(s: Sources, sampler: str, flag: str) -> str:
    """Rule R4 on one sampler: `shorter_at_longer_canvas` -> shows / does not show the effect; `refusal_follows`
    -> rises / does not rise (from the shorter canvas to the longer)."""
    v = _rep(s)["rules"]["R4_rainbow_padding"][sampler][flag]
    yes, no = {"shorter_at_longer_canvas": ("shows", "does not show"),
               "refusal_follows": ("rises", "does not rise")}[flag]
    return "cannot be read (a cell is missing or has no spread)" if v is None else yes if v else no


def twins_claim(s: Sources, attack: str, obj: str = "it") -> str:
    """Rule R5 on one prompt set, as a verb phrase about `obj` (the harm R3 counts): does global low confidence
    lower it, against AR order? Without a verdict, the reason follows the object."""
    c = _rep(s)["rules"]["R5_swap_lowers_asr"][attack]
    if c["swap_lowers_asr"] is not None:
        return f"lowers {obj}" if c["swap_lowers_asr"] else f"does not lower {obj}"
    if None in c["harm_readings"]:
        return f"gets no verdict from R5 yet on {obj} (a cell is not judged or not scored for coherence)"
    if all(r == "compliant framing" for r in c["harm_readings"]):
        return f"gets no verdict from R5 on {obj} (neither cell's answers are coherent enough to carry harm)"
    return f"gets no verdict from R5 on {obj} (neither cell carries any counted harm)"


def twins_reading(s: Sources, attack: str) -> str:
    """How rule R3 reads the two R5 cells (AR order, then global low confidence), as `as X and Y`."""
    r = ["not read yet (not judged or not scored)" if x is None else x
         for x in _rep(s)["rules"]["R5_swap_lowers_asr"][attack]["harm_readings"]]
    return f"both as {r[0]}" if r[0] == r[1] else f"them as {r[0]} and {r[1]}"


def twins_coherent(s: Sources) -> str:
    """Rule R3 over every scored cell: how many are within the coherence bound, and how the judged ones read."""
    rep, margin = _rep(s), s.get("goals")["twins_coherence_margin"]["value"]
    scored = [c for c in rep["cells"] if c.get("coherence_nll") is not None
              and rep["teacher_nll"].get(c["attack"]) is not None]
    if not scored:
        return "no cell of this swap has been scored yet, so R3 has read none of them"
    k = sum(c["coherence_nll"] <= rep["teacher_nll"][c["attack"]] + margin for c in scored)
    judged = [c for c in scored if c["harm_reading"] is not None]
    framing = sum(c["harm_reading"] == "compliant framing" for c in judged)
    judged_words = (f"{_count(framing, len(judged))} judged cells read as compliant framing, not harm" if judged
                    else "no cell is judged yet")
    return f"{_count(k, len(scored))} scored cells are within it, and {judged_words}"


def twins_verdict(s: Sources) -> str:
    """The comparison table's verdict: R5 on both attacks."""
    got = [_rep(s)["rules"]["R5_swap_lowers_asr"][a]["swap_lowers_asr"] for a in ("raw", "prefix_injection")]
    if False in got:
        return ("**disagree**: by rule R5, global low confidence does not lower the harm counted on "
                + _names([SET_NAMES[a] for a, v in zip(("raw", "prefix_injection"), got) if v is False])
                + " prompts")
    if None in got:
        return "**cannot say** yet: rule R5 has no verdict on every attack (see the twins section)"
    return "**agree**: by rule R5, global low confidence lowers the counted harm on both attacks"


def twins_summary(s: Sources) -> str:
    """The verdict paragraph's opening, composed from the rules' outcomes (no number of its own)."""
    fid = twins_fidelity(s, "mdlm")
    claims = {"raw": twins_claim(s, "raw", "the counted harm on raw harmful prompts"),
              "prefix_injection": twins_claim(s, "prefix_injection", "it under `prefix_injection`")}
    if twins_claim(s, "raw", "") == twins_claim(s, "prefix_injection", ""):  # one outcome for both: say it once
        claims = {"raw": twins_claim(s, "raw", "the counted harm on both attacks"), "prefix_injection": None}
    faithful = {"meets": "so its rates can stand for the teacher's.",
                "misses": "so its rates are those of a student that is not a faithful copy of its teacher, and the "
                          "twin tests the mechanism, not the teacher's numbers."}
    faithful = faithful.get(fid, "so how far its rates can stand for the teacher's is open.")
    return (f"On the twin, global low confidence {twins_direction(s, 'low_confidence', key='mean_length')} the length "
            f"of answers to raw harmful prompts and {twins_direction(s, 'low_confidence')} their refusal rate against "
            f"AR order on the same weights, and the rate it reaches {twins_vs_prediction(s, 'low_confidence')} the "
            f"rate the teacher's own lengths predict by the rule fixed before the run. With the end tokens held back "
            f"until last (EOS-last) it {twins_direction(s, 'low_confidence+eos_last')} the refusal rate against AR "
            f"order, {twins_order_reading(s)}. The student {fid} the fidelity "
            f"rule, {faithful} On the seed study's claim, global low confidence {claims['raw']}"
            + (f", and {claims['prefix_injection']}." if claims["prefix_injection"] else "."))


DERIVED_TWINS = {
    "twins_fidelity_mdlm": lambda s: twins_fidelity(s, "mdlm"),
    "twins_fidelity_ar": lambda s: twins_fidelity(s, "ar"),
    "twins_fidelity_misses": twins_fidelity_misses,
    "twins_fidelity_misses_ar": lambda s: twins_fidelity_misses(s, "ar"),
    "twins_summary": twins_summary,
    "twins_global_refusal": lambda s: twins_direction(s, "low_confidence"),
    "twins_global_length": lambda s: twins_direction(s, "low_confidence", key="mean_length"),
    "twins_global_benign_refusal": lambda s: twins_direction(s, "low_confidence", "benign"),
    "twins_global_benign_length": lambda s: twins_direction(s, "low_confidence", "benign", "mean_length"),
    "twins_global_prefix_refusal": lambda s: twins_direction(s, "low_confidence", "prefix_injection"),
    "twins_global_prefix_length": lambda s: twins_direction(s, "low_confidence", "prefix_injection", "mean_length"),
    "twins_blocks_refusal": lambda s: twins_direction(s, "low_confidence@32"),
    "twins_random_refusal": lambda s: twins_direction(s, "random"),
    "twins_eos_last_refusal": lambda s: twins_direction(s, "low_confidence+eos_last"),
    "twins_order_reading": twins_order_reading,
    "twins_eos_last_seeds": lambda s: twins_seed_directions(s, "low_confidence+eos_last"),
    "twins_eos_forbidden_refusal": lambda s: twins_direction(s, "low_confidence+eos_forbidden"),
    "twins_global_vs_pred": lambda s: twins_vs_prediction(s, "low_confidence"),
    "twins_ar_order_vs_pred": lambda s: twins_vs_prediction(s, "ar_order"),
    "twins_global_benign_vs_pred": lambda s: twins_vs_prediction(s, "low_confidence", "benign"),
    "twins_agreement_preregistered": lambda s: twins_agreement(s, True),
    "twins_agreement_mean_rule": lambda s: twins_agreement(s, False),
    "twins_rainbow_global": lambda s: twins_rainbow(s, "low_confidence", "shorter_at_longer_canvas"),
    "twins_rainbow_global_refusal": lambda s: twins_rainbow(s, "low_confidence", "refusal_follows"),
    "twins_rainbow_ar_order": lambda s: twins_rainbow(s, "ar_order", "shorter_at_longer_canvas"),
    "twins_claim_raw": lambda s: twins_claim(s, "raw"),
    "twins_claim_prefix": lambda s: twins_claim(s, "prefix_injection"),
    "twins_claim_prefix_abstract": lambda s: twins_claim(s, "prefix_injection",
                                                         "the harm counted under the coherence rule"),
    "twins_reading_raw": lambda s: twins_reading(s, "raw"),
    "twins_reading_prefix": lambda s: twins_reading(s, "prefix_injection"),
    "twins_coherent": twins_coherent,
    "twins_verdict": twins_verdict,
}
