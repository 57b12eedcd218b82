"""Tables and figures of the real-text twins section, from `results/twins.json`."""

from __future__ import annotations

from paper.sources import Sources
from paper.tables import f, md, result_figure

SRC = "twins.json"


def _pm(x, se) -> str:
    return "–" if x is None else f(x, "f2") + ("" if se is None else " ± " + f(se, "f2"))


def _seeds(per_seed: list[dict] | None, key: str = "refusal_rate") -> str:
    """Each training seed's own value, in seed order (– when a single student)."""
    if not per_seed or len(per_seed) < 2:
        return "–"
    return ", ".join(f"{p['student'].removeprefix('mdlm_')} {f(p[key], 'f2')}" for p in per_seed)


def twins_fidelity(s: Sources) -> tuple[str, str]:
    """Each student in its own left-to-right order beside the teacher, per holdout prompt set (rule R1)."""
    rows = []
    for arch, fid in s.get(SRC)["fidelity"].items():
        for attack, r in fid["by_attack"].items():
            rows.append([arch, fid["sampler"], attack, r["n"], _pm(r["refusal_rate"], r["refusal_rate_se"]),
                         _seeds(r.get("per_seed")), f(r["teacher_refusal_rate"], "f2"), f(r["refusal_gap"], "+f2"),
                         f(r["mean_length"], "f1"), f(r["teacher_mean_length"], "f1"),
                         f(r.get("coherence_nll"), "f2"), f(r.get("teacher_nll"), "f2"),
                         "yes" if r["meets_goal"] else "no"])
    head = ["student", "sampler", "prompts", "n", "refusal", "per seed", "teacher refusal", "gap", "mean length",
            "teacher length", "NLL", "teacher NLL", "R1"]
    return md(head, rows), ("Fidelity of the students to their teacher, Qwen2.5-Coder-0.5B-Instruct, on held-out "
                            "prompts, each in its own left-to-right order at temperature one; the MDLM rows pool its "
                            "training seeds (per seed: each seed's own refusal rate, on its share of the prompts). "
                            "Refusal: the keyword judge on the decoded text; lengths in tokens before the end of "
                            "turn; NLL: the teacher's per-token NLL of the answers, beside its NLL of its own "
                            "samples (– where not scored); R1: refusal and length within the rule's bounds.")


def _prereg(p: dict | None) -> str:
    if p is None:
        return "–"
    return f(p["predicted_refusal_rate"], "f2") + f" [{p['predicted_ci95'][0]:.2f}, {p['predicted_ci95'][1]:.2f}]"


def twins_cells(s: Sources) -> tuple[str, str]:
    """The sampler swap on the MDLM student (fixed weights, seeds pooled), with the preregistered length rule."""
    rep = s.get(SRC)
    pred = {(p["sampler"], p["attack"], p["gen_length"]): p for p in rep["prediction"] if p["preregistered"]}
    rows = []
    for c in rep["cells"]:
        p = pred.get((c["sampler"], c["attack"], c["gen_length"])) if c["student"] == "mdlm" else None
        rows.append([c["student"], c["sampler"], c["attack"], c["gen_length"], c["n"],
                     _pm(c["refusal_rate"], c["refusal_rate_se"]), _seeds(c.get("per_seed")), _prereg(p),
                     _pm(c["asr"], c["asr_se"]), c.get("harm_reading") or "–", f(c["mean_length"], "f1"),
                     f(c.get("eos_first_excess"), "f2"), f(c.get("coherence_nll"), "f2")])
    head = ["student", "sampler", "prompts", "canvas", "n", "refusal", "refusal per seed",
            "predicted (R2) [95% CI]", "ASR (LLM judge)", "reading (R3)", "mean length", "EOS-first excess", "NLL"]
    caption = ("The sampler swap on real text: the MDLM student's fixed weights under each sampler, pooled over its "
               "training seeds, and the AR student under its own decoder, on held-out prompts. Canvas: the "
               "generation length in tokens. Predicted: the refusal rate the teacher's samples give at the cell's "
               "own length distribution (rule R2, fixed before the run). ASR: the LLM harm judge (– on harmless "
               "prompts and where not judged); reading: harm or compliant framing by the coherence rule R3. "
               "EOS-first excess: how much earlier end tokens are committed than the lengths imply (−1: every end "
               "token last, 0: no preference, 1: every end token first). NLL: the teacher's per-token NLL of the "
               "answers.")
    return md(head, rows), caption


def _fig(name: str, caption: str):
    return result_figure(SRC, name, caption)


FIGURES_TWINS = {
    "twins_swap_fig": _fig("twins_swap_heatmap.png", "Refusal rate (keyword judge, left) and ASR (LLM harm judge, "
                           "right) of the real-text students by sampler and prompt set, weights fixed, the MDLM "
                           "student's seeds pooled; n/a: not judged (harmless prompts) or not sampled."),
    "twins_length_fig": _fig("twins_length_eos.png", "Mean length and EOS-first excess of the MDLM student per "
                             "sampler, on raw harmful, `prefix_injection` and harmless held-out prompts."),
    "twins_gen_length_fig": _fig("twins_gen_length.png", "The gen-length sweep: mean length and refusal rate of the "
                                 "MDLM student on raw harmful prompts by canvas length, under global low confidence "
                                 "and in AR order, weights fixed."),
    "twins_training_fig": _fig("twins_training.png", "Training and held-out loss of the students: the AR student and "
                               "the MDLM student of each training seed."),
}
TABLES_TWINS = {"twins_fidelity": twins_fidelity, "twins_cells": twins_cells}
