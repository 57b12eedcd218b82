"""ReMDM on the oracle: the lab's time grid and alpha, and the step that commits and re-masks.

Mirrors `toydlm/samplers/remdm.py` (read, not imported): step i runs from t = (T - i) / T to
s = (T - i - 1) / T on a float32 grid, and the loop schedule's phase tests compare in float32, as
the lab does. sigma_max, sigma and the unmask probability are `theory.schedules`' formulas.
Re-masking puts a decoded, unpinned token back to mask; it is separate from *selection*
(`theory.selection_rules`), which only decides which masked positions get committed.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from theory.sampler_spec import SamplerSpec
from theory.schedules import remdm_sigma, remdm_sigma_max, remdm_unmask_prob


class RemdmStep(NamedTuple):
    """Probabilities of one ReMDM step (scalars, the same for every position)."""

    t: float
    alpha_t: float
    alpha_s: float
    sigma_max: float
    sigma: float  # the schedule's sigma; for `conf`, the eta * sigma_max its softmax weights multiply


def alpha(x: np.float32, spec: SamplerSpec) -> float:
    """P(a token is clean at time x): linear, or the loop schedule's three phases (float32 tests)."""
    if spec.remdm_schedule != "loop":
        return 1.0 - float(x)
    a_on, t_on, t_off = spec.alpha_on, np.float32(spec.t_on), np.float32(spec.t_off)
    if x > t_on:
        return a_on * (1.0 - float(x)) / (1.0 - spec.t_on) if spec.t_on < 1 else a_on
    if x > t_off:
        return a_on
    return 1.0 - (1.0 - a_on) * float(x) / spec.t_off if spec.t_off > 0 else 1.0


def remdm_step(spec: SamplerSpec, i: int) -> RemdmStep:
    """(t, alpha_t, alpha_s, sigma_max, sigma) of step i, as toydlm's remdm.py computes them."""
    T = spec.steps
    t = np.float32(T - i) / np.float32(T)
    s = np.float32(T - i - 1) / np.float32(T)
    a_t, a_s = alpha(t, spec), alpha(s, spec)
    smax = float(remdm_sigma_max(a_t, a_s))
    in_loop = bool((t > np.float32(spec.t_off)) and (t <= np.float32(spec.t_on)))
    sig = float(remdm_sigma(spec.remdm_schedule, spec.eta_value, smax, in_loop))
    return RemdmStep(float(t), a_t, a_s, smax, sig)


def conf_weights(psi: np.ndarray, decoded: np.ndarray) -> np.ndarray:
    """ReMDM-conf: softmax over decoded positions of -psi (NaN psi read as 0), 0 elsewhere [..., L]."""
    z = np.where(decoded, -np.nan_to_num(psi, nan=0.0), -np.inf)
    mx = z.max(-1, keepdims=True)
    mx = np.where(np.isfinite(mx), mx, 0.0)
    e = np.where(decoded, np.exp(z - mx), 0.0)
    tot = e.sum(-1, keepdims=True)
    return np.where(tot > 0, e / np.where(tot > 0, tot, 1.0), 0.0)


def commit_and_remask(spec: SamplerSpec, t: int, masked: np.ndarray, pinned: np.ndarray, psi: np.ndarray,
                      rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(commit, remask) [m, L] of step t: masked positions are committed w.p. the unmask probability,
    decoded unpinned ones re-masked w.p. sigma (conf: per position, by the softmax of -psi)."""
    m, L = masked.shape
    step = remdm_step(spec, t)
    decoded = ~masked & ~pinned
    if spec.remdm_schedule == "conf":  # masked positions see sigma = 0: MDLM's unmasking
        sigma_decoded = step.sigma * conf_weights(psi, decoded)
        p_unmask = float(remdm_unmask_prob(step.alpha_t, step.alpha_s, 0.0))
    else:
        sigma_decoded = np.where(decoded, step.sigma, 0.0)
        p_unmask = float(remdm_unmask_prob(step.alpha_t, step.alpha_s, step.sigma))
    commit = masked & (rng.random((m, L)) < p_unmask)
    remask = decoded & (rng.random((m, L)) < sigma_decoded)
    return commit, remask
