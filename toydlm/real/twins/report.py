"""`results/twins.json` from the stored swap cells, their harm verdicts and the teacher's holdout samples.

ASR counts a response as a successful attack when the LLM judge calls it harmful; a cell not judged yet
has `asr` None (refusal comes from the keyword judge and is always there).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from toydlm.measure import rate as binomial_rate
from toydlm.real.kit.figures import pyplot, save_figure
from toydlm.real.kit.judged import judged_verdicts
from toydlm.real.twins.compare import fidelity, prediction_row, teacher_rows
from toydlm.real.twins.stages import NATURAL, PROMPT_SETS
from toydlm.trace import eos_first_excess_from_lengths

CELL_KEYS = ("student", "sampler", "attack", "n", "refusal_rate", "refusal_rate_se", "asr", "asr_se", "mean_length",
             "length_sd", "eos_first_share", "eos_first_excess", "eos_first_excess_basis", "seed", "temperature")
PORTABLE = ("out_dir", "checkpoint")  # path fields of a student's training summary


def with_eos_first_excess(cell: dict, response_len: int) -> dict:
    """The cell with `eos_first_excess` and its basis: `commits` (exact, stored by `sample_cell` from the
    trace) or, for cells stored before that, `lengths` (from the per-row lengths and the mean share, with
    n_first = response_len // 2 as the sampler used: `toydlm.trace.eos_first_excess_from_lengths`)."""
    if "eos_first_excess" in cell:
        return {**cell, "eos_first_excess_basis": "commits"}
    n_first = int(cell.get("n_first_commits", response_len // 2))
    v = eos_first_excess_from_lengths(cell.get("eos_first_share"), cell["rows"]["length"], response_len, n_first)
    return {**cell, "eos_first_excess": v if np.isfinite(v) else None, "eos_first_excess_basis": "lengths"}


def portable_path(p: str | None, root: Path) -> str | None:
    """A stored path without the machine's part: relative to `root` when under it, else its last two
    components (the student folder and its checkpoint); relative paths stay as they are."""
    if not p or not Path(p).is_absolute():
        return p
    q = Path(p)
    try:
        return q.relative_to(root).as_posix()
    except ValueError:
        return Path(*q.parts[-2:]).as_posix()


def portable_students(students: dict, root: Path) -> dict:
    """Students' training summaries with repo-relative `out_dir` / `checkpoint` (older stores kept the
    machine's absolute paths; everything else is unchanged)."""
    return {a: {k: portable_path(v, root) if k in PORTABLE and isinstance(v, str) else v for k, v in s.items()}
            for a, s in students.items()}


def load_swap(store_root: Path, weights: set[str]) -> list[dict]:
    """Stored swap cells of the students with these weights hashes (cells of earlier students stay in the
    store but are not reported), with their ASR (None until judged)."""
    out = []
    for path in sorted(Path(store_root).glob("*.json")):
        rec = json.loads(path.read_text())
        if rec["spec"]["weights"] not in weights:
            continue
        cell = dict(rec["cell"])
        cell["asr"] = cell["asr_se"] = None
        if (harmful := judged_verdicts(path)) is not None:
            cell["asr"], cell["asr_se"] = binomial_rate(harmful)
        out.append(cell)
    return out


def build_report(manifest: dict, task_info: dict, cells: list[dict], teacher: dict[str, dict], cap: int,
                 students: dict, provenance: dict) -> dict:
    """The contract's record: teacher, corpus, fidelity, cells, prediction, plus the students' training
    (pass `students` through `portable_students` so no machine path is stored)."""
    cells = [with_eos_first_excess(c, int(task_info["response_len"])) for c in cells]
    trows = {ps.attack: teacher_rows(teacher[ps.teacher_cell]) for ps in PROMPT_SETS if ps.teacher_cell in teacher}
    fid = {}
    for arch, v in NATURAL.items():
        by = {c["attack"]: fidelity(c, trows[c["attack"]]) for c in cells
              if c["student"] == arch and c["sampler"] == v.label and c["attack"] in trows}
        if "raw" in by:
            fid[arch] = {**by["raw"], "sampler": v.label, "prompts": "holdout harmful, raw", "by_attack": by}
    pred = [prediction_row(c, trows[c["attack"]], cap) for c in cells
            if c["student"] == "mdlm" and c["attack"] in trows]
    c = task_info["corpus"]
    return {"teacher": manifest["teacher"],
            "corpus": {k: c[k] for k in ("n_prompts", "n_refusals", "n_compliances", "mean_len_refusal",
                                         "mean_len_compliance")} | {"details": task_info, "mix": manifest.get("mix")},
            "fidelity": fid, "cells": [{k: x.get(k) for k in CELL_KEYS} for x in cells], "prediction": pred,
            "students": students, "provenance": provenance,
            "notes": {"refusal": "keyword judge on the decoded text", "asr": "LLM harm judge (None: not judged yet)",
                      "eos_first_excess": "the EOS-first share's excess over a random commit order, in [-1, 1]: "
                                          "0 = value-blind random order, 1 = all end tokens first, -1 = all "
                                          "content first (docs/algorithms.md section 6); basis 'lengths': "
                                          "K = response_len - length, C = response_len, which assumes EOS from "
                                          "the first EOS on; null where that assumption is proved wrong (a value "
                                          "outside [-1, 1]) or there is no room for a preference; approximate "
                                          "elsewhere",
                      "prediction": "P_teacher(refusal | length <= round(student mean length)), teacher holdout "
                                    "samples at T=1; at the cap, the plain refusal rate"}}


def _grid(cells: list[dict], rows: list[str], cols: list[str], key: str) -> np.ndarray:
    """Sampler-by-prompt-set matrix of one cell value (NaN where not measured or not judged)."""
    grid = np.full((len(rows), len(cols)), np.nan)
    for c in cells:
        if c.get(key) is not None:
            grid[rows.index(f"{c['student']}:{c['sampler']}"), cols.index(c["attack"])] = c[key]
    return grid


def fig_swap_heatmap(rep: dict, out: Path) -> str | None:
    """Refusal rate (keyword judge) and ASR (LLM judge) per sampler (rows) and prompt set (columns), both
    students; the weights are fixed within a student."""
    cells = rep["cells"]
    if not cells:
        return None
    rows = list(dict.fromkeys(f"{c['student']}:{c['sampler']}" for c in cells))
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 0.4 * len(rows) + 1.8), width_ratios=(3, 2))
    panels = (([ps.attack for ps in PROMPT_SETS], "refusal_rate", "Refusal rate (keyword judge)"),
              ([ps.attack for ps in PROMPT_SETS if ps.attack != "benign"], "asr", "ASR (LLM harm judge)"))
    for ax, (cols, key, title) in zip(axes, panels):
        grid = _grid(cells, rows, cols, key)
        im = ax.imshow(grid, vmin=0, vmax=1, cmap="viridis", aspect="auto")
        for (i, j), v in np.ndenumerate(grid):
            ax.text(j, i, f"{v:.2f}" if np.isfinite(v) else "n/a", ha="center", va="center",
                    color="0.5" if not np.isfinite(v) else "w" if v < 0.6 else "k", fontsize=8)
        ax.set_xticks(range(len(cols)), cols, fontsize=8)
        ax.set_yticks(range(len(rows)), rows if key == "refusal_rate" else [], fontsize=8)
        ax.set_title(title, fontsize=10)
    fig.colorbar(im, ax=axes[1], fraction=0.08, pad=0.04)
    return save_figure(fig, out, "twins_swap_heatmap.png")


def fig_length_eos(rep: dict, out: Path) -> str | None:
    """Mean length and EOS-first share per MDLM sampler on each held-out prompt set."""
    attacks = [ps.attack for ps in PROMPT_SETS]
    cells = [c for c in rep["cells"] if c["student"] == "mdlm"]
    if not cells:
        return None
    samplers = list(dict.fromkeys(c["sampler"] for c in cells))
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    x, w = np.arange(len(samplers)), 0.8 / len(attacks)
    for k, attack in enumerate(attacks):
        by = {c["sampler"]: c for c in cells if c["attack"] == attack}
        for ax, key in ((axes[0], "mean_length"), (axes[1], "eos_first_share")):
            vals = [by[s][key] if s in by and by[s][key] is not None else np.nan for s in samplers]
            ax.bar(x + (k - (len(attacks) - 1) / 2) * w, vals, w, label=attack)
    for ax, title, top in ((axes[0], "Mean response length (tokens)", 125), (axes[1], "EOS share of the first half "
                                                                                  "of commits", 1.3)):
        ax.set_xticks(x, samplers, rotation=40, ha="right", fontsize=7)
        ax.set_title(title)
        ax.set_ylim(0, top)  # headroom so the legend does not cover the bars
        ax.legend(fontsize=8, ncol=3, loc="upper center")
    return save_figure(fig, out, "twins_length_eos.png")


def fig_training(rep: dict, out: Path) -> str | None:
    """Training and held-out loss of both students against the step (AR: NLL; MDLM: NELBO bound)."""
    curves = {a: s["curve"] for a, s in rep["students"].items() if s.get("curve")}
    if not curves:
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for arch, c in curves.items():
        for key, ls in (("train", "-"), ("held_out", "--")):
            if c[key]:
                x, y = zip(*c[key])
                ax.plot(x, y, ls, label=f"{arch} {key.replace('_', '-')}")
    ax.set(xlabel="step", ylabel="loss (nats / response token)", title="Students' training curves")
    ax.legend(fontsize=8)
    return save_figure(fig, out, "twins_training.png")
