"""Two checks of SRI Guard on a real checkpoint, computed from the stored states of its run.

- **Answered harmless rows only.** The guard is trained, thresholded and evaluated on the harmless
  prompts the model *answered*; the main run keeps the harmless prompts it refused, whose refusal-like
  trajectories widen what the guard learns as normal.
- **The study's literal end padding.** The study's AR wrapper pads an ended generation's list of
  per-step states with the last state (the one that produced the end token) and then takes the running
  mean, so the pooled state drifts toward that last state; the main run holds the pooled state instead
  (`toydlm.real.sri.states`). Here the anchors, the signals and the guard are all recomputed from states
  re-padded the literal way.

Both are reported whichever way they point: they probe whether the main run's negative result comes
from a choice the study made differently.
"""

from __future__ import annotations

import numpy as np

from toydlm.real.sri.anchors import centres_from
from toydlm.real.sri.guard_eval import SPLITS, fitted_guard_section
from toydlm.sri.signal import sri_signal

KEEP = ("threshold", "n_neg", "n_pos", "fpr_benign", "auroc", "auroc_unseen", "auroc_unseen_ci95", "by_family",
        "auroc_all", "auroc_all_ci95", "flagged_share", "n_train", "n_threshold")


def literal_padding(states: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """`[N, T, D]` producing-state means re-padded as the study's wrapper does after the end token.

    `states` hold the pooled state once the end token's producing state is in (index `n` for a row of `n`
    tokens before its end token); the last producing state is recovered from two consecutive means,
    `s_{n+1} = (n+1) P_{n+1} - n P_n`, and repeated: `P_t = ((n+1) P_{n+1} + (t-n-1) s_{n+1}) / t`."""
    out = np.array(states, np.float64)
    T = out.shape[1]
    n_all = np.asarray(lengths, int)
    for r in np.flatnonzero(n_all < T - 1):
        n = int(n_all[r])
        mean_in = out[r, n].copy()
        last = mean_in if n == 0 else (n + 1) * mean_in - n * out[r, n - 1]
        t = np.arange(n + 2, T + 1, dtype=np.float64)[:, None]  # 1-based steps after the end
        out[r, n + 1:] = ((n + 1) * mean_in + (t - n - 1) * last) / t
    return out


def summary(section: dict) -> dict:
    """The fields of a guard section that the checks compare (no ROC curve, no per-family TPR)."""
    return {k: section[k] for k in KEEP if k in section}


def evaluate_guard(sig: dict[str, np.ndarray], success: dict[str, np.ndarray], attacks: list[str]) -> dict:
    """SRI Guard fitted on `sig`'s harmless splits and scored on each attack's successes (summary fields)."""
    return summary(fitted_guard_section(sig, success, attacks)[1])


def answered_only(signals: dict[str, np.ndarray], refused: dict[str, np.ndarray], success: dict[str, np.ndarray],
                  attacks: list[str]) -> dict:
    """The guard with every harmless split restricted to the prompts the model answered."""
    sig = dict(signals) | {k: signals[k][~refused[k]] for k in SPLITS}
    return evaluate_guard(sig, success, attacks) | {
        "n_refused_dropped": {k: int(refused[k].sum()) for k in SPLITS}}


def literal_end_padding(states: dict[str, np.ndarray], lengths: dict[str, np.ndarray], anchor_states: dict,
                        success: dict[str, np.ndarray], attacks: list[str]) -> dict:
    """The guard with anchors, signals and training all on literally padded states. `anchor_states`:
    `{"benign": (states, lengths, refused), "harmful": (...)}` of the two anchor cells."""
    b, h = ({"states": literal_padding(s, n), "refused": r} for s, n, r in
            (anchor_states["benign"], anchor_states["harmful"]))
    comp, ref = centres_from(b["states"], b["refused"], h["states"], h["refused"])
    sig = {k: sri_signal(literal_padding(states[k], lengths[k]), comp, ref) for k in (*SPLITS, *attacks)}
    changed = sum(int((np.asarray(lengths[k]) < states[k].shape[1] - 1).sum()) for k in (*SPLITS, *attacks))
    return evaluate_guard(sig, success, attacks) | {"n_rows_ended_early": changed}
