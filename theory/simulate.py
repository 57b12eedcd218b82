"""Monte Carlo simulator of the v1 chain (vectorised numpy; one parameter set, many trajectories).

Each step draws one float32 uniform per trajectory and finds the destination by comparing it with
the cumulative row of the current state (three gathers on a [4] table, three comparisons).
Float32 uniforms put a bias of at most 2^-24 on each transition probability: far below the
sampling error of any run this simulator is used for.
"""

from __future__ import annotations

import numpy as np

from theory._validate import validated
from theory.chain import C, H, P, R, _matrices


def _thresholds(M: np.ndarray) -> np.ndarray:
    """cum[t, x, j] = P(dest <= j | x) for j = 0, 1, 2; 2.0 where no mass remains beyond j."""
    cum = np.cumsum(M, axis=-1)[..., :3]
    tail = np.flip(np.cumsum(np.flip(M, -1), -1), -1)[..., 1:]  # P(dest > j)
    cum = np.where(tail > 0, cum, 2.0)
    return cum.astype(np.float32)


def simulate(
    h, s, r, rho, lam,
    n: int,
    start: str = "C",
    seed: int = 0,
    return_states: bool = False,
    chunk: int = 1 << 20,
) -> dict[str, np.ndarray | float | int]:
    """Simulate n trajectories; return outcome frequencies with their standard errors.

    Keys: asr, asr_se, hrr, frr (NaN if no trajectory visited P), n_visit, n, final_counts [4],
    and `states` [n, T + 1] uint8 when return_states is True. Hazards must be 1-D (length T).
    """
    p, i0 = validated(h, s, r, rho, lam, start)
    if p["h"].ndim != 1:
        raise ValueError(f"simulate takes one parameter set (1-D arrays), got shape {p['h'].shape}")
    if n < 1:
        raise ValueError(f"n = {n!r} must be a positive number of trajectories")
    cum = _thresholds(_matrices(p["h"], p["s"], p["r"], p["rho"], p["lam"]))
    T = cum.shape[0]
    rng = np.random.default_rng(seed)
    states = np.empty((n, T + 1), np.uint8) if return_states else None
    final = np.zeros(4, np.int64)
    n_visit = n_rev = n_rec = 0
    for lo in range(0, n, chunk):
        m = min(chunk, n - lo)
        x = np.full(m, i0, np.uint8)
        visited = x == P
        revised = np.zeros(m, bool)
        if states is not None:
            states[lo:lo + m, 0] = x
        for t in range(T):
            u = rng.random(m, dtype=np.float32)
            c = cum[t]
            nx = (u >= c[:, 0].take(x)).astype(np.uint8)
            nx += u >= c[:, 1].take(x)
            nx += u >= c[:, 2].take(x)
            is_p = nx == P
            revised |= (x == P) & (nx == C)
            visited |= is_p
            x = nx
            if states is not None:
                states[lo:lo + m, t + 1] = x
        final += np.bincount(x, minlength=4)
        n_visit += int(visited.sum())
        n_rev += int(revised.sum())
        n_rec += int((visited & ((x == C) | (x == R))).sum())
    asr = (final[P] + final[H]) / n
    out: dict[str, np.ndarray | float | int] = {
        "asr": float(asr),
        "asr_se": float(np.sqrt(asr * (1 - asr) / n)),
        "hrr": n_rev / n_visit if n_visit else float("nan"),
        "frr": n_rec / n_visit if n_visit else float("nan"),
        "n_visit": n_visit,
        "n": n,
        "final_counts": final,
    }
    if states is not None:
        out["states"] = states
    return out


def state_frequencies(states: np.ndarray) -> np.ndarray:
    """Empirical marginals [T + 1, 4] of simulated (or traced) state sequences [N, T + 1]."""
    n = states.shape[0]
    return np.stack([np.bincount(col, minlength=4)[:4] / n for col in states.T.astype(np.int64)])


__all__ = ["simulate", "state_frequencies", "C", "P", "H", "R"]
