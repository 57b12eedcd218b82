"""Tables and figures of the real-text twins section, from `results/twins.json`."""

from __future__ import annotations

from paper.sources import Sources
from paper.tables import f, md, result_figure

SRC = "twins.json"


def _pm(x, se) -> str:
    return "–" if x is None else f(x, "f2") + ("" if se is None else " ± " + f(se, "f2"))


def twins_fidelity(s: Sources) -> tuple[str, str]:
    """Each student under its natural sampler beside the teacher, per holdout prompt set."""
    rows = []
    for arch, fid in s.get(SRC)["fidelity"].items():
        for attack, r in fid["by_attack"].items():
            rows.append([arch, fid["sampler"], attack, _pm(r["refusal_rate"], r["refusal_rate_se"]),
                         f(r["teacher_refusal_rate"], "f2"), f(r["refusal_gap"], "+f2"), f(r["mean_length"], "f1"),
                         f(r["teacher_mean_length"], "f1")])
    head = ["student", "sampler", "prompts", "refusal", "teacher refusal", "gap", "mean length", "teacher length"]
    return md(head, rows), ("Fidelity of the two students to their teacher, Qwen2.5-Coder-0.5B-Instruct, on held-out "
                            "prompts, each student under its natural left-to-right decoder at temperature one. "
                            "Refusal: the keyword judge on the decoded text; lengths in tokens before the end of turn.")


def _ci(p: dict | None, key: str, ci: str) -> str:
    if p is None or p.get(key) is None:
        return "–"
    return f(p[key], "f2") + f" [{p[ci][0]:.2f}, {p[ci][1]:.2f}]"


def twins_cells(s: Sources) -> tuple[str, str]:
    """The sampler swap on the MDLM student (fixed weights), with the length mechanism's predictions."""
    rep = s.get(SRC)
    pred = {(p["sampler"], p["attack"]): p for p in rep["prediction"]}
    rows = []
    for c in rep["cells"]:
        p = pred.get((c["sampler"], c["attack"])) if c["student"] == "mdlm" else None
        rows.append([c["student"], c["sampler"], c["attack"], c["n"], _pm(c["refusal_rate"], c["refusal_rate_se"]),
                     _ci(p, "predicted_refusal_rate", "predicted_ci95"),
                     _ci(p, "predicted_refusal_rate_length_dist", "predicted_length_dist_ci95"),
                     _pm(c["asr"], c["asr_se"]), f(c["mean_length"], "f1"),
                     "–" if c["eos_first_share"] is None else f(c["eos_first_share"], "f2")])
    head = ["student", "sampler", "prompts", "n", "refusal", "predicted, mean rule [95% CI]",
            "predicted, length distribution [95% CI]", "ASR (LLM judge)", "mean length", "EOS-first share"]
    caption = ("The sampler swap on real text: the MDLM student's fixed weights under every sampler, and the AR "
               "student under its own decoder, on held-out prompts. Predicted refusal: the refusal rate the "
               "teacher's samples would give if the sampler acted only by changing lengths; the mean rule conditions "
               "on length ≤ the cell's mean length, the length-distribution rule weights the teacher's refusal rate "
               "per 8-token length bin by the cell's own lengths. ASR: the LLM harm judge (– on harmless prompts "
               "and where not judged). EOS-first share: end-of-sequence share of the first half of commits.")
    return md(head, rows), caption


def _fig(name: str, caption: str):
    return result_figure(SRC, name, caption)


FIGURES_TWINS = {
    "twins_swap_fig": _fig("twins_swap_heatmap.png", "Refusal rate (keyword judge, left) and ASR (LLM harm judge, "
                           "right) of the real-text students by sampler and prompt set, weights fixed; n/a: not "
                           "judged (harmless prompts) or not sampled."),
    "twins_length_fig": _fig("twins_length_eos.png", "Mean length and EOS-first share of the MDLM student per "
                             "sampler, on raw harmful, `prefix_injection` and harmless held-out prompts."),
    "twins_training_fig": _fig("twins_training.png", "Training and held-out loss of the two students."),
}
TABLES_TWINS = {"twins_fidelity": twins_fidelity, "twins_cells": twins_cells}
