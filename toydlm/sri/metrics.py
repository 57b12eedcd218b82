"""Detector metrics: AUROC, TPR at a fixed FPR, false-positive rate."""

from __future__ import annotations

import numpy as np


def auroc(scores_neg: np.ndarray, scores_pos: np.ndarray) -> float:
    """P(score_pos > score_neg) + 0.5 P(tie) (Mann-Whitney); NaN if a class is empty."""
    neg, pos = np.asarray(scores_neg, float), np.asarray(scores_pos, float)
    if len(neg) == 0 or len(pos) == 0:
        return float("nan")
    allv = np.concatenate([neg, pos])
    order = allv.argsort(kind="mergesort")
    ranks = np.empty(len(allv))
    sorted_v = allv[order]
    # average ranks over ties
    uniq, start, counts = np.unique(sorted_v, return_index=True, return_counts=True)
    avg = start + (counts - 1) / 2.0 + 1
    ranks[order] = np.repeat(avg, counts)
    r_pos = ranks[len(neg):].sum()
    return float((r_pos - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def tpr_at_fpr(scores_neg: np.ndarray, scores_pos: np.ndarray, fpr: float) -> float:
    """True-positive rate at the threshold whose false-positive rate on negatives is <= fpr."""
    neg, pos = np.asarray(scores_neg, float), np.asarray(scores_pos, float)
    if len(neg) == 0 or len(pos) == 0:
        return float("nan")
    thr = np.quantile(neg, 1 - fpr, method="higher")
    return float((pos > thr).mean())


def roc_curve(scores_neg: np.ndarray, scores_pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    thr = np.unique(np.concatenate([scores_neg, scores_pos]))[::-1]
    fpr = np.array([0.0] + [(np.asarray(scores_neg) >= t).mean() for t in thr])
    tpr = np.array([0.0] + [(np.asarray(scores_pos) >= t).mean() for t in thr])
    return fpr, tpr
