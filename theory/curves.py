"""Per-step curves (analogues of the paper's Figure 3) and first-hit-time distributions of v1.

Definitions (chain level, t = 1..T):
  commit_given_proposed[t]  P(harm committed by t | harm proposed by t), where "proposed" means
                            a C -> P or C -> H transition (or a start in P or H) and "committed"
                            means a transition into H (or a start in H);
  proposal_given_clean[t]   P(X_t in {P, H} | X_{t-1} in {C, P}): harm in the prediction at step t
                            given that nothing harmful is committed before it;
  pending[t], committed[t]  P(X_t = P), P(X_t in {H, R}) (harm committed, possibly recovered).
"""

from __future__ import annotations

import numpy as np

from theory._validate import STATES, validated
from theory.chain import C, H, P, R, _matrices, forward, forward_events, start_vector

_PROPOSED = np.zeros((4, 4), bool)
_PROPOSED[C, P] = _PROPOSED[C, H] = True
_COMMITTED = np.zeros((4, 4), bool)
_COMMITTED[C, H] = _COMMITTED[P, H] = True


def _div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(b > 0, a / np.where(b > 0, b, 1.0), np.nan)


def step_curves(h, s, r, rho, lam, start: str = "C") -> dict[str, np.ndarray]:
    """The Figure-3 curves, each [..., T] for steps t = 1..T (NaN where the condition is empty)."""
    p, i0 = validated(h, s, r, rho, lam, start)
    M = _matrices(p["h"], p["s"], p["r"], p["rho"], p["lam"])
    bits0 = {C: 0, P: 1, H: 3, R: 3}[i0]
    joint = forward_events(M, start_vector(start), [_PROPOSED, _COMMITTED], start_bits=bits0)
    flags = joint.sum(axis=-2)[..., 1:, :]  # [..., T, 4] over bitmasks
    proposed = flags[..., 1] + flags[..., 3]
    both = flags[..., 3]
    sp = forward(p["h"], p["s"], p["r"], p["rho"], p["lam"], i0)["state_probs"]
    prev, cur = sp[..., :-1, :], sp[..., 1:, :]
    clean_prev = prev[..., C] + prev[..., P]
    to_harm = (
        prev[..., C] * p["h"]
        + prev[..., P] * (1 - p["r"])
    )
    return {
        "commit_given_proposed": _div(both, proposed),
        "proposal_given_clean": _div(to_harm, clean_prev),
        "pending": cur[..., P],
        "committed": cur[..., H] + cur[..., R],
    }


def first_hit_pmf(h, s, r, rho, lam, target: str = "H", start: str = "C") -> np.ndarray:
    """P(first entry into the state set `target` happens at step t), t = 0..T; shape [..., T + 1].

    `target` is a string of state letters, e.g. "H", "P", "PH" (any harm), "R". Mass not hit by T
    is 1 - sum. Computed by making the target absorbing (taboo recursion).
    """
    p, _ = validated(h, s, r, rho, lam, start)
    if not target or any(ch not in STATES for ch in target):
        raise ValueError(f"unknown target {target!r}: use letters from {''.join(STATES)}")
    A = [STATES.index(ch) for ch in target]
    M = _matrices(p["h"], p["s"], p["r"], p["rho"], p["lam"]).copy()
    for a in A:
        M[..., a, :] = 0.0
        M[..., a, a] = 1.0
    pi = np.broadcast_to(start_vector(start), M.shape[:-3] + (4,)).copy()
    T = M.shape[-3]
    hit = np.empty(M.shape[:-3] + (T + 1,))
    hit[..., 0] = pi[..., A].sum(-1)
    for t in range(T):
        pi = np.einsum("...i,...ij->...j", pi, M[..., t, :, :])
        hit[..., t + 1] = pi[..., A].sum(-1)
    pmf = np.diff(hit, axis=-1, prepend=0.0)
    return np.clip(pmf, 0.0, 1.0)


def mean_first_hit(pmf: np.ndarray) -> np.ndarray:
    """E[first-hit step | hit by T] from a first_hit_pmf output (NaN if never hit)."""
    t = np.arange(pmf.shape[-1])
    return _div((pmf * t).sum(-1), pmf.sum(-1))
