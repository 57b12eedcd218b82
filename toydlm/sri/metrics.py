"""Detector metrics: AUROC (with a bootstrap CI), TPR at a fixed FPR, ROC points, one report per detector."""

from __future__ import annotations

import numpy as np

MIN_POS = 10  # below this many positives an AUROC is reported as null, with the reason
BENIGN_QUANTILE = 0.99  # every detector's threshold: this quantile of held-out benign scores


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


def auroc_ci(scores_neg: np.ndarray, scores_pos: np.ndarray, n_boot: int = 1000, level: float = 0.95,
             seed: int = 0) -> tuple[float, float]:
    """Percentile CI of the AUROC from a stratified bootstrap (negatives and positives resampled apart)."""
    neg, pos = np.asarray(scores_neg, float), np.asarray(scores_pos, float)
    if len(neg) == 0 or len(pos) == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    # AUROC of a resample = c_pos^T M c_neg / (n_pos n_neg) with M the pairwise win matrix and c the
    # multinomial resampling counts: all replicates in a few matrix products
    M = (pos[:, None] > neg[None]) + 0.5 * (pos[:, None] == neg[None])
    c_pos = rng.multinomial(len(pos), np.full(len(pos), 1 / len(pos)), size=n_boot)
    c_neg = rng.multinomial(len(neg), np.full(len(neg), 1 / len(neg)), size=n_boot)
    reps = np.einsum("ri,ij,rj->r", c_pos, M, c_neg, optimize=True) / (len(pos) * len(neg))
    a = (1 - level) / 2
    lo, hi = np.quantile(reps, [a, 1 - a])
    return float(lo), float(hi)


def tpr_at_fpr(scores_neg: np.ndarray, scores_pos: np.ndarray, fpr: float) -> float:
    """True-positive rate at the threshold whose false-positive rate on negatives is <= fpr."""
    neg, pos = np.asarray(scores_neg, float), np.asarray(scores_pos, float)
    if len(neg) == 0 or len(pos) == 0:
        return float("nan")
    thr = np.quantile(neg, 1 - fpr, method="higher")
    return float((pos > thr).mean())


def roc_curve(scores_neg: np.ndarray, scores_pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(FPR, TPR) at every distinct threshold, from (0, 0) to (1, 1); flag = score >= threshold."""
    neg, pos = np.sort(np.asarray(scores_neg, float)), np.sort(np.asarray(scores_pos, float))
    thr = np.unique(np.concatenate([neg, pos]))[::-1]
    fpr = 1.0 - np.searchsorted(neg, thr, side="left") / max(len(neg), 1)
    tpr = 1.0 - np.searchsorted(pos, thr, side="left") / max(len(pos), 1)
    return np.concatenate([[0.0], fpr]), np.concatenate([[0.0], tpr])


def quantize_ties(neg: np.ndarray, pos: np.ndarray, digits: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """Scores rounded to `digits` decimals of their common scale, so inputs that are identical score as ties.

    Batched float32 kernels give identical inputs scores that differ in the last bits depending on the
    batch they were scored in; ranking those differences turns a tie (AUROC 0.5) into 0 or 1.
    """
    allv = np.concatenate([neg, pos])
    scale = float(np.max(np.abs(allv))) if allv.size and np.isfinite(allv).all() and np.any(allv) else 1.0
    return np.round(neg / scale, digits) * scale, np.round(pos / scale, digits) * scale


def detector_report(neg_test: np.ndarray, pos: np.ndarray, threshold: float | None = None,
                    min_pos: int = MIN_POS, roc: bool = False, seed: int = 0) -> dict:
    """Everything reported for one detector on one positive set, JSON-ready.

    `threshold` (calibrated on held-out benign scores) gives the benign false-positive rate and the
    flag rate on positives. The AUROC (and its 95% bootstrap CI) is null with `auroc_null_reason`
    when there are fewer than `min_pos` positives: an AUROC from a handful of positives means nothing.
    """
    neg, p = np.asarray(neg_test, float), np.asarray(pos, float)
    out: dict = {"n_pos": int(len(p)), "n_neg": int(len(neg))}
    neg_q, p_q = quantize_ties(neg, p)
    if len(p) < min_pos or len(neg) == 0:
        out.update(auroc=None, auroc_ci95=None, tpr_at_1pct_fpr=None, tpr_at_5pct_fpr=None,
                   auroc_null_reason=f"{len(p)} positives < minimum {min_pos}" if len(p) < min_pos
                   else "no negatives")
    else:
        out.update(auroc=auroc(neg_q, p_q), auroc_ci95=list(auroc_ci(neg_q, p_q, seed=seed)),
                   tpr_at_1pct_fpr=tpr_at_fpr(neg_q, p_q, 0.01), tpr_at_5pct_fpr=tpr_at_fpr(neg_q, p_q, 0.05))
    if threshold is not None:
        out["threshold"] = float(threshold)
        out["fpr_benign"] = float((neg > threshold).mean()) if len(neg) else None
        out["flag_rate"] = float((p > threshold).mean()) if len(p) else None
    if roc and out["auroc"] is not None:
        f, t = roc_curve(neg_q, p_q)
        out["roc"] = {"fpr": np.round(f, 5).tolist(), "tpr": np.round(t, 5).tolist()}
    return out
