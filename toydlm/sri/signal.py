"""The step-wise refusal internal signal (SRI, arXiv 2602.02600 §3.1) and the internal recovery rate.

Sign convention (state it on every plot): sigma_t -> 1 means the pooled final-layer state is
closer to the compliance (harmless) anchor, sigma_t -> 0 closer to the refusal anchor.
"""

from __future__ import annotations

import numpy as np

from toydlm.errors import UserError

EPS = 1e-8


def _check_acts(acts: np.ndarray, name: str = "acts") -> np.ndarray:
    a = np.asarray(acts, dtype=np.float64)
    if a.ndim != 3:
        raise UserError(f"{name} must be [N, T, D], got shape {a.shape}")
    return a


def pooled_states(trace, pooling: str = "generated", layer: int | None = None) -> np.ndarray:
    """`[N, T, D]` per-step pooled states from a trace's recorded means, final layer or recorded `layer`.

    `generated` (the paper's default) pools the committed response positions, falling back to all
    positions while nothing is committed; `all` pools every response position, masked ones included
    (the reference LLaDA wrapper).
    """
    if "hidden_mean" not in trace:
        raise UserError("the trace has no hidden states (sampled without record_hidden, or the adapter found no "
                        "final norm to hook)")
    if pooling not in ("generated", "all"):
        raise UserError(f"pooling must be 'generated' or 'all', got {pooling!r}")
    if layer is None:
        allp, gen = trace["hidden_mean"], trace["hidden_committed"]
    else:
        allp, gen = trace["hidden_layers_mean"][:, :, layer], trace["hidden_layers_committed"][:, :, layer]
    allp = np.asarray(allp).transpose(1, 0, 2)
    if pooling == "all":
        return allp
    gen = np.asarray(gen).transpose(1, 0, 2)
    return np.where(np.isnan(gen), allp, gen)


def compute_centres(benign_acts: np.ndarray, benign_complied: np.ndarray, harmful_acts: np.ndarray,
                    harmful_refused: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-step anchors `[T, D]`: mean over benign prompts the model complied with, and over
    harmful prompts it refused (so the 'harmful' anchor is in effect a refusal anchor)."""
    b = _check_acts(benign_acts, "benign_acts")
    h = _check_acts(harmful_acts, "harmful_acts")
    if b.shape[1:] != h.shape[1:]:
        raise UserError(f"benign and harmful activations differ in [T, D]: {b.shape[1:]} vs {h.shape[1:]}")
    bc, hr = np.asarray(benign_complied, bool), np.asarray(harmful_refused, bool)
    if bc.shape != (b.shape[0],) or hr.shape != (h.shape[0],):
        raise UserError("the complied/refused masks must have one entry per prompt")
    if not bc.any():
        raise UserError("cannot compute the compliance centre: the model complied with none of the "
                        f"{b.shape[0]} benign prompts (empty set)")
    if not hr.any():
        raise UserError("cannot compute the refusal centre: the model refused none of the "
                        f"{h.shape[0]} harmful prompts (empty set)")
    return b[bc].mean(0), h[hr].mean(0)


def cosine_distance(acts_NTD: np.ndarray, centre_TD: np.ndarray, eps: float = EPS) -> np.ndarray:
    """1 - cos(phi_t, mu_t) per prompt and step, `[N, T]`."""
    num = (acts_NTD * centre_TD[None]).sum(-1)
    den = np.linalg.norm(acts_NTD, axis=-1) * np.linalg.norm(centre_TD, axis=-1)[None] + eps
    return 1.0 - num / den


def sri_signal(acts, benign_centre, refusal_centre, tau: float = 0.1, eps: float = EPS) -> np.ndarray:
    """sigma_t = sigmoid((log d_refusal - log d_benign) / tau), `[N, T]` from acts `[N, T, D]`."""
    a = _check_acts(acts)
    bc, rc = np.asarray(benign_centre, np.float64), np.asarray(refusal_centre, np.float64)
    if bc.shape != a.shape[1:] or rc.shape != a.shape[1:]:
        raise UserError(f"centres must be [T, D] = {a.shape[1:]} to match the signals' steps and width, "
                        f"got {bc.shape} and {rc.shape}")
    if tau <= 0:
        raise UserError(f"tau must be > 0, got {tau}")
    d_b = cosine_distance(a, bc, eps)
    d_r = cosine_distance(a, rc, eps)
    logit = (np.log(np.maximum(d_r, 0) + eps) - np.log(np.maximum(d_b, 0) + eps)) / tau
    return 0.5 * (1.0 + np.tanh(0.5 * logit))  # a sigmoid that cannot overflow


def internal_recovery_rate(signals, lambda_c: float = 0.5, lambda_r: float = 0.5) -> float:
    """Definition 1: among responses compliance-aligned (sigma > lambda_c) at some step before
    the last, the share that end refusal-aligned (sigma_T < lambda_r). NaN when none qualify."""
    s = np.asarray(signals, np.float64)
    if s.ndim != 2 or s.shape[1] < 2:
        raise UserError(f"signals must be [N, T] with T >= 2, got shape {s.shape}")
    ever = (s[:, :-1] > lambda_c).any(1)
    if not ever.any():
        return float("nan")
    return float((s[ever, -1] < lambda_r).mean())
