"""JSON-ready summaries of SRI signals for reports and plots: per-step quantiles and IRR tables."""

from __future__ import annotations

import numpy as np

from toydlm.errors import UserError
from toydlm.sri.signal import internal_recovery_rate

QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9)
LAMBDA_RS = (0.5, 0.3, 0.1)


def trajectory_summary(signals: np.ndarray, text_signal: np.ndarray | None = None) -> dict:
    """Per-step mean and quantiles (10/25/50/75/90 %) of signals `[N, T]`; `n` = 0 gives empty lists.

    `text_signal` `[N, T]` (1 = no refusal committed yet) adds its per-step mean as `text_mean`.
    """
    s = np.asarray(signals, float)
    if s.ndim != 2:
        raise UserError(f"signals must be [N, T], got shape {s.shape}")
    out: dict = {"n": int(len(s))}
    if len(s) == 0:
        return out | {"mean": [], **{f"q{round(100 * q)}": [] for q in QUANTILES}}
    out["mean"] = s.mean(0).tolist()
    for q, v in zip(QUANTILES, np.quantile(s, QUANTILES, axis=0)):
        out[f"q{round(100 * q)}"] = v.tolist()
    if text_signal is not None:
        out["text_mean"] = np.asarray(text_signal, float).mean(0).tolist()
    return out


def irr_table(signals: dict[str, np.ndarray], lambda_c: float = 0.5,
              lambda_rs: tuple[float, ...] = LAMBDA_RS) -> dict:
    """IRR per group and refusal threshold, with its denominator (responses compliance-aligned before
    the last step) so a rate from a handful of responses is visible as such."""
    out: dict = {}
    for lr in lambda_rs:
        out[f"lambda_r={lr}"] = {k: _none_if_nan(internal_recovery_rate(v, lambda_c, lr)) if len(v) else None
                                 for k, v in signals.items()}
    out["n_compliant_before_last"] = {k: int((np.asarray(v)[:, :-1] > lambda_c).any(1).sum()) if len(v) else 0
                                      for k, v in signals.items()}
    out["lambda_c"] = lambda_c
    return out


def _none_if_nan(x: float) -> float | None:
    return None if x != x else float(x)
