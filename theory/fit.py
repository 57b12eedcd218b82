"""Fitting v1 hazards from traces: transition counts -> maximum likelihood + Beta-posterior intervals.

Likelihood of one step's counts n[x, y] factorises once the P row is written with the conditional
revision hazard r' = r / (1 - s) (revision given not committed) and the H row as a Dirichlet:

  L = (1-h)^{n_CC} h^{n_CP + n_CH}  *  s^{n_CH + n_PH} (1-s)^{n_CP + n_PC + n_PP}
      * r'^{n_PC} (1-r')^{n_PP}  *  rho^{n_HC} lam^{n_HR} (1-rho-lam)^{n_HH}

so h, s and r' have independent Beta posteriors (Jeffreys prior 0.5), rho and lam Dirichlet ones
(whose marginals are Beta), and the MLEs are closed-form: s = (n_CH + n_PH) / (n_CH + n_CP + n_P.),
r = (1 - s) n_PC / (n_PC + n_PP). When the sampler's s_t is known (pass `s`), it is not estimated
and r = (1 - s) r' has an exact scaled-Beta interval; otherwise r's interval is the Monte Carlo
quantile of (1 - s) r' under the joint posterior (fixed seed).
"""

from __future__ import annotations

import numpy as np

from theory.chain import C, H, P, R
from theory.intervals import beta_interval


def check_states(states) -> np.ndarray:
    """Validate an int array [N, T + 1] of states in 0..3; ValueError naming the bad entry."""
    a = np.asarray(states)
    if a.ndim != 2 or a.shape[1] < 2:
        raise ValueError(f"states must have shape [N, T + 1] with T >= 1, got {a.shape}")
    if not np.issubdtype(a.dtype, np.integer):
        raise ValueError(f"states must be integers 0..3 (C, P, H, R), got dtype {a.dtype}")
    bad = (a < 0) | (a > 3)
    if bad.any():
        i, t = (int(v) for v in np.argwhere(bad)[0])
        raise ValueError(f"states[{i}, {t}] = {int(a[i, t])} is not a state in 0..3 (C, P, H, R)")
    return a.astype(np.int64)


def transition_counts(states) -> np.ndarray:
    """Counts n[t, x, y] of X_{t} = x -> X_{t+1} = y at step t + 1, shape [T, 4, 4]."""
    a = check_states(states)
    T = a.shape[1] - 1
    code = (np.arange(T)[None, :] * 16 + a[:, :-1] * 4 + a[:, 1:]).ravel()
    return np.bincount(code, minlength=16 * T).reshape(T, 4, 4).astype(float)


def _est(k, n, conf, prior):
    with np.errstate(invalid="ignore", divide="ignore"):
        mle = np.where(n > 0, k / np.where(n > 0, n, 1), np.nan)
    lo, hi = beta_interval(k, n, conf, prior)
    return {"mle": mle, "lo": lo, "hi": hi, "k": k, "n": n}


def fit_hazards(
    counts, s=None, conf: float = 0.95, prior: float = 0.5, draws: int = 4000, seed: int = 0
) -> dict[str, dict[str, np.ndarray]]:
    """Per-step ML hazards with intervals from counts [T, 4, 4] (or [..., 4, 4] bins, e.g. c-bins).

    Returns {name: {"mle", "lo", "hi", "k", "n"}} for h, s, r, r_cond (= r / (1 - s)), rho, lam,
    and two diagnostics of v1's shared-s assumption: q = P(C -> H | left C) and
    s_pending = P(P -> H | in P), each estimated from its own row (v1 says both equal s).
    Steps with no trajectory in the source state get NaN. `s`, if given, is the sampler's known
    commit probability per step (not estimated).
    """
    n = np.asarray(counts, float)
    if n.shape[-2:] != (4, 4) or (n < 0).any():
        raise ValueError(f"counts must be non-negative with shape [..., 4, 4], got {n.shape}")
    out = {}
    out["h"] = _est(n[..., C, P] + n[..., C, H], n[..., C, :].sum(-1), conf, prior)
    # diagnostics of v1's shared-s assumption: the two rows' own commit frequencies
    out["q"] = _est(n[..., C, H], n[..., C, P] + n[..., C, H], conf, prior)
    out["s_pending"] = _est(n[..., P, H], n[..., P, :].sum(-1), conf, prior)
    k_rc, n_rc = n[..., P, C], n[..., P, C] + n[..., P, P]
    out["r_cond"] = _est(k_rc, n_rc, conf, prior)
    if s is None:
        k_s = n[..., C, H] + n[..., P, H]
        n_s = k_s + n[..., C, P] + n[..., P, C] + n[..., P, P]
        out["s"] = _est(k_s, n_s, conf, prior)
        s_hat = out["s"]["mle"]
        rng = np.random.default_rng(seed)
        a_s, b_s = k_s + prior, n_s - k_s + prior
        a_r, b_r = k_rc + prior, n_rc - k_rc + prior
        ok = (n_rc > 0) & (n_s > 0)
        sd = rng.beta(np.where(ok, a_s, 1)[..., None], np.where(ok, b_s, 1)[..., None], a_s.shape + (draws,))
        rd = rng.beta(np.where(ok, a_r, 1)[..., None], np.where(ok, b_r, 1)[..., None], a_r.shape + (draws,))
        q = (1 - conf) / 2
        lo, hi = np.quantile((1 - sd) * rd, [q, 1 - q], axis=-1)
        r_lo, r_hi = np.where(ok, lo, np.nan), np.where(ok, hi, np.nan)
        r_lo = np.where(k_rc > 0, r_lo, 0.0 * r_lo)
    else:
        s_known = np.broadcast_to(np.asarray(s, float), n.shape[:-2])
        out["s"] = {"mle": s_known, "lo": s_known, "hi": s_known,
                    "k": np.full(s_known.shape, np.nan), "n": np.full(s_known.shape, np.nan)}
        s_hat = s_known
        r_lo, r_hi = (1 - s_known) * out["r_cond"]["lo"], (1 - s_known) * out["r_cond"]["hi"]
    out["r"] = {"mle": (1 - s_hat) * out["r_cond"]["mle"], "lo": r_lo, "hi": r_hi, "k": k_rc, "n": n_rc}
    n_h = n[..., H, :].sum(-1)
    out["rho"] = _est(n[..., H, C], n_h, conf, prior)
    out["lam"] = _est(n[..., H, R], n_h, conf, prior)
    return out


def binned_counts(states, covariate, edges) -> np.ndarray:
    """Transition counts per covariate bin (e.g. committed clean fraction before the step).

    states [N, T + 1]; covariate [N, T + 1], value at t is the covariate *before* step t + 1;
    edges: increasing bin edges (right-open, last bin closed). Returns [n_bins, 4, 4].
    """
    a = check_states(states)
    c = np.asarray(covariate, float)
    if c.shape != a.shape:
        raise ValueError(f"covariate shape {c.shape} must equal states shape {a.shape}")
    e = np.asarray(edges, float)
    nb = len(e) - 1
    b = np.clip(np.searchsorted(e, c[:, :-1], side="right") - 1, 0, nb - 1)
    code = (b * 16 + a[:, :-1] * 4 + a[:, 1:]).ravel()
    return np.bincount(code, minlength=16 * nb).reshape(nb, 4, 4).astype(float)
