"""Students against their teacher: the length mechanism's prediction, from the teacher's holdout samples.

The prediction asks what a sampler would do if it acted only by making responses end early: for a model
with the teacher's distribution that is P(refusal | length <= L_hat), L_hat being the student's measured
mean length under the sampler, estimated by rejection from the teacher's holdout samples (the real-AR
length test, with its prompt bootstrap). When L_hat reaches the student's canvas L, every teacher sample
counts as ended: the prediction is P(refusal | length <= L), the plain refusal rate at the teacher's cap.

The mean is a crude summary of a sampler's lengths: near the cap it drops the teacher's truncated
compliances though most of the student's own samples run to the cap. The length-distribution prediction
uses the whole distribution instead: each student sample of length l counts with the teacher's refusal
rate among its samples of about that length (8-token bins; a row that did not end is matched to the
teacher's samples that had not ended within the row's canvas). It is the rule preregistered for the second
swap (docs/real-text-twins.md, section 0).
"""

from __future__ import annotations

import numpy as np

from toydlm.bridge.judges import keyword_refusal
from toydlm.real.kit.length_test import length_test


def teacher_rows(rec: dict) -> dict[str, np.ndarray]:
    """Per-sample prompt, length, ended and keyword refusal of a stored teacher cell."""
    s = rec["samples"]
    return {"prompt": np.asarray([x["prompt"] for x in s]), "length": np.asarray([x["length"] for x in s]),
            "ended": np.asarray([x["ended"] for x in s], bool),
            "refusal": np.asarray([keyword_refusal(x["text"]) for x in s], bool)}


def predicted_refusal(teacher: dict[str, np.ndarray], l_hat: float, cap: int, n_boot: int = 1000,
                      seed: int = 0) -> dict:
    """P_teacher(refusal | length <= round(l_hat)) with a 95% prompt-bootstrap CI. At or past `cap` (the
    student's canvas) every teacher sample counts as ended, so it is P_teacher(refusal | length <= cap): at
    the teacher's own cap, its plain refusal rate."""
    k = int(round(l_hat))
    if k >= cap:
        r = length_test(teacher["prompt"], teacher["length"], np.ones_like(teacher["ended"]), teacher["refusal"],
                        None, ks=(cap,), n_boot=n_boot, seed=seed)[0]
    else:
        r = length_test(teacher["prompt"], teacher["length"], teacher["ended"], teacher["refusal"], None,
                        ks=(k,), n_boot=n_boot, seed=seed)[0]
    return {"l_hat": float(l_hat), "k": k, "predicted_refusal_rate": r["p_refusal_given_len_le_k"],
            "predicted_ci95": r["p_refusal_given_len_le_k_ci95"], "n_teacher_le_k": r["n"],
            "teacher_refusal_rate": r["p_refusal"]}


def _length_bins(length: np.ndarray, ended: np.ndarray, cap: int, width: int) -> np.ndarray:
    """Bin of each length: l // width for responses that ended before the cap, one extra bin for the rest."""
    at_cap = (~ended) | (length >= cap)
    return np.where(at_cap, cap // width + 1, np.minimum(length, cap - 1) // width)


def _matched_rate(t_bin: np.ndarray, t_ref: np.ndarray, s_bin: np.ndarray) -> float:
    """Mean over student samples of the teacher's refusal rate in the sample's bin (nearest non-empty bin
    when the teacher has none there)."""
    filled = np.unique(t_bin)
    rate = {b: t_ref[t_bin == b].mean() for b in filled}
    bins, counts = np.unique(s_bin, return_counts=True)
    near = [filled[np.argmin(np.abs(filled - b))] for b in bins]
    return float(sum(c * rate[b] for b, c in zip(near, counts)) / counts.sum())


def length_matched_refusal(teacher: dict[str, np.ndarray], student_lengths: np.ndarray, cap: int,
                           width: int = 8, n_boot: int = 1000, seed: int = 0,
                           student_ended: np.ndarray | None = None) -> dict:
    """E over the student's lengths of P_teacher(refusal | length bin), with a 95% teacher-prompt bootstrap CI:
    the refusal rate a sampler would give if it changed only the length distribution. `cap` is the student's
    canvas: its rows that did not end are matched to the teacher's samples that did not end within `cap`
    tokens (`student_ended` None: a row ended when it is shorter than the canvas)."""
    t_bin = _length_bins(np.asarray(teacher["length"]), np.asarray(teacher["ended"], bool), cap, width)
    s_len = np.asarray(student_lengths)
    s_end = s_len < cap if student_ended is None else np.asarray(student_ended, bool)
    s_bin = _length_bins(s_len, s_end, cap, width)
    point = _matched_rate(t_bin, teacher["refusal"], s_bin)
    prompts = np.unique(teacher["prompt"])
    by_prompt = [np.flatnonzero(teacher["prompt"] == p) for p in prompts]
    rng = np.random.default_rng(seed)
    boot = []
    for _ in range(n_boot):
        idx = np.concatenate([by_prompt[i] for i in rng.integers(0, len(prompts), len(prompts))])
        boot.append(_matched_rate(t_bin[idx], teacher["refusal"][idx], s_bin))
    return {"predicted_refusal_rate_length_dist": point,
            "predicted_length_dist_ci95": [float(np.quantile(boot, 0.025)), float(np.quantile(boot, 0.975))],
            "length_bin_width": width}


def agrees(predicted: float | None, ci95: list[float] | None, measured: float, measured_se: float) -> bool | None:
    """Whether prediction and measurement differ by at most two combined standard errors (the prediction's SE
    read off its 95% bootstrap interval); None when there is no prediction."""
    if predicted is None:
        return None
    se_pred = (ci95[1] - ci95[0]) / 3.92 if ci95 else 0.0
    return bool(abs(predicted - measured) <= 2 * float(np.hypot(se_pred, measured_se)))
