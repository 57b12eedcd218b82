"""Position-level companion: sampler-side quantities derived from a sampler's schedule.

Each position is masked, or committed (clean or harmful). From the schedule alone we derive, per
step t = 1..T: how many positions are committed (selection), the probability that a given
still-masked position is committed at step t (the chain's s_t for a single pending position),
the committed-fraction schedule, the re-mask probability (ReMDM's sigma_t = the chain's rho_t),
and the law of how many of a given set of m harmful positions are committed by step t.

Samplers: `ar_order` (position t at step t; s = 1), `random` (LLaDA: k_i = floor(N/S) +
1[i < N mod S] per block of N masked positions and S steps, blocks left to right, uniformly random
subset), `mdlm` (ancestral, linear alpha: a position's decode step is uniform on 1..T,
independently), `remdm` (MDLM plus sigma re-masking; cap / rescale / loop schedules).
"""

from __future__ import annotations

import math

import numpy as np


def llada_counts(n_masked, steps: int) -> np.ndarray:
    """LLaDA's per-step commit counts k_i = floor(N/S) + 1[i < N mod S], i = 0..S-1.

    `n_masked` may be an array of N (one per trajectory): the result is then [..., S].
    """
    n_masked = np.asarray(n_masked)
    if steps < 1 or (n_masked < 0).any():
        raise ValueError(f"need steps >= 1 and n_masked >= 0, got steps={steps}, n_masked={n_masked}")
    base, extra = np.divmod(n_masked[..., None], steps)
    return base + (np.arange(steps) < extra).astype(int)


def block_plan(L: int, T: int, block_length: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(block index of each step [T], commit count of each step [T]) for LLaDA semi-AR blocks.

    Follows LLaDA: L % block_length == 0 and T % n_blocks == 0, else ValueError.
    """
    bl = L if block_length is None else block_length
    if bl < 1 or L % bl:
        raise ValueError(f"block_length={bl} must divide L={L}")
    nb = L // bl
    if T % nb:
        raise ValueError(f"steps T={T} must be a multiple of the number of blocks {nb}")
    S = T // nb
    return np.repeat(np.arange(nb), S), np.tile(llada_counts(bl, S), nb)


def random_position_s(L: int, T: int, block_length: int | None = None) -> np.ndarray:
    """s[l, t]: P(position l committed at step t | still masked before t) under `random` selection.

    k_t / m_t inside the active block (m_t masks left in it), 0 elsewhere. Shape [L, T].
    """
    blocks, k = block_plan(L, T, block_length)
    bl = L if block_length is None else block_length
    s = np.zeros((L, T))
    left = {}
    for t in range(T):
        b = blocks[t]
        m = left.setdefault(b, bl)
        s[b * bl:(b + 1) * bl, t] = k[t] / m if m else 0.0
        left[b] = m - k[t]
    return s


def committed_fraction(
    L: int, T: int, sampler: str = "random", block_length: int | None = None
) -> np.ndarray:
    """Expected fraction of the L positions committed before step t = 1..T (shape [T]).

    For `ar_order` T must equal L; for `mdlm` it is (t-1)/T; for `random` cumsum(k)/L.
    """
    if sampler == "ar_order":
        if T != L:
            raise ValueError(f"ar_order commits one position per step: T={T} must equal L={L}")
        return np.arange(T) / L
    if sampler == "mdlm":
        return np.arange(T) / T
    if sampler == "random":
        _, k = block_plan(L, T, block_length)
        return np.concatenate([[0], np.cumsum(k)[:-1]]) / L
    raise ValueError(f"unknown sampler {sampler!r}: expected ar_order, mdlm or random")


def chain_s(
    L: int, T: int, sampler: str = "random", block_length: int | None = None, weights=None
) -> np.ndarray:
    """The chain's s_t for one pending harmful position: ar_order 1, mdlm 1/(T-t+1), random k_t/m_t.

    With blocks, s_t is the weighted average over positions of the per-position s[l, t], weighted by
    `weights[l]` (where harm is predicted; default uniform) times P(l still masked before t).
    """
    if sampler == "ar_order":
        return np.ones(T)
    if sampler == "mdlm":
        return 1.0 / (T - np.arange(T))
    if sampler != "random":
        raise ValueError(f"unknown sampler {sampler!r}: expected ar_order, mdlm or random")
    sl = random_position_s(L, T, block_length)
    w = np.ones(L) if weights is None else np.asarray(weights, float)
    alive = np.cumprod(np.concatenate([np.ones((L, 1)), 1 - sl[:, :-1]], 1), 1)  # masked before t
    num = (w[:, None] * alive * sl).sum(0)
    den = (w[:, None] * alive).sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), 1.0)


def _hypergeom(N: int, K: int, n: int) -> np.ndarray:
    """pmf of the number of K marked items in a uniform n-subset of N, j = 0..K."""
    j = np.arange(K + 1)
    out = np.array([math.comb(K, int(i)) * math.comb(N - K, n - int(i)) if n - int(i) >= 0 else 0
                    for i in j], float)
    return out / math.comb(N, n)


def committed_harm_pmf(positions, L: int, T: int, sampler: str = "random",
                       block_length: int | None = None) -> np.ndarray:
    """P(j of the given harmful positions are committed by step t), shape [T + 1, m + 1].

    random: per block a hypergeometric (block of N positions, K_b,t committed so far, m_b harmful),
    convolved over blocks; mdlm: Binomial(m, t/T); ar_order: deterministic (#positions < t).
    """
    pos = np.asarray(sorted(set(int(p) for p in positions)), int)
    if pos.size and (pos.min() < 0 or pos.max() >= L):
        raise ValueError(f"positions must lie in 0..{L - 1}, got {pos.tolist()}")
    m = pos.size
    out = np.zeros((T + 1, m + 1))
    if sampler == "ar_order":
        if T != L:
            raise ValueError(f"ar_order commits one position per step: T={T} must equal L={L}")
        for t in range(T + 1):
            out[t, int((pos < t).sum())] = 1.0
        return out
    if sampler == "mdlm":
        j = np.arange(m + 1)
        comb = np.array([math.comb(m, int(i)) for i in j], float)
        for t in range(T + 1):
            q = t / T
            out[t] = comb * q**j * (1 - q) ** (m - j)
        return out
    if sampler != "random":
        raise ValueError(f"unknown sampler {sampler!r}: expected ar_order, mdlm or random")
    blocks, k = block_plan(L, T, block_length)
    bl = L if block_length is None else block_length
    done = np.zeros(L // bl, int)
    for t in range(T + 1):
        pmf = np.ones(1)
        for b in range(L // bl):
            mb = int(((pos >= b * bl) & (pos < (b + 1) * bl)).sum())
            pmf = np.convolve(pmf, _hypergeom(bl, mb, int(done[b])))
        out[t] = pmf
        if t < T:
            done[blocks[t]] += k[t]
    return out


def loop_alpha(x, t_on: float = 0.55, t_off: float = 0.05, alpha_on: float = 0.9) -> np.ndarray:
    """ReMDM-loop's alpha(x): MDLM rescaled to reach alpha_on at t_on, frozen until t_off, then to 1."""
    x = np.asarray(x, float)
    return np.where(x > t_on, alpha_on * (1 - x) / (1 - t_on),
                    np.where(x > t_off, alpha_on, 1 - (1 - alpha_on) * x / t_off))


def remdm_sigma_max(alpha_t, alpha_s) -> np.ndarray:
    """Largest valid re-mask probability: min(1, (1 - alpha_s) / alpha_t), 1 where alpha_t = 0."""
    alpha_t = np.asarray(alpha_t, float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(alpha_t > 0, np.minimum(1.0, (1 - alpha_s) / np.where(alpha_t > 0, alpha_t, 1)), 1.0)


def remdm_sigma(schedule: str, eta: float, sigma_max, in_loop=True) -> np.ndarray:
    """ReMDM's sigma: cap min(eta, sigma_max); rescale and conf eta sigma_max (conf's per-position
    softmax weights multiply it); loop min(eta, sigma_max) inside the loop phase, else 0; mdlm 0."""
    if schedule == "cap":
        return np.minimum(eta, sigma_max)
    if schedule in ("rescale", "conf"):
        return eta * np.asarray(sigma_max)
    if schedule == "loop":
        return np.where(in_loop, np.minimum(eta, sigma_max), 0.0)
    if schedule == "mdlm":
        return np.zeros_like(np.asarray(sigma_max, float))
    raise ValueError(f"unknown ReMDM schedule {schedule!r}: expected cap, rescale, conf, loop or mdlm")


def remdm_unmask_prob(alpha_t, alpha_s, sigma) -> np.ndarray:
    """P(a masked position is committed): (alpha_s - (1 - sigma) alpha_t) / (1 - alpha_t), clipped to
    [0, 1]; 1 where alpha_t = 1. It keeps P(masked) = 1 - alpha, ReMDM's defining property."""
    alpha_t = np.asarray(alpha_t, float)
    with np.errstate(invalid="ignore", divide="ignore"):
        s = np.where(alpha_t < 1, (alpha_s - (1 - sigma) * alpha_t) / np.where(alpha_t < 1, 1 - alpha_t, 1), 1.0)
    return np.clip(s, 0.0, 1.0)


def remdm_schedule(T: int, schedule: str = "cap", eta: float = 0.008, t_on: float = 0.55,
                   t_off: float = 0.05, alpha_on: float = 0.9) -> dict[str, np.ndarray]:
    """Per-step sigma (= rho, re-mask prob of a committed token) and s (unmask prob of a masked one).

    `schedule`: cap, rescale, loop (see `remdm_sigma`) or mdlm (sigma = 0), on the float64 grid
    t_k = (T - k + 1) / T; nothing is re-masked before the first unmask (alpha_t = 0).
    """
    if schedule not in ("cap", "rescale", "loop", "mdlm"):
        raise ValueError(f"unknown ReMDM schedule {schedule!r}: expected cap, rescale, loop or mdlm")
    k = np.arange(1, T + 1)
    tt, ss = (T - k + 1) / T, (T - k) / T
    if schedule == "loop":
        a_t, a_s = loop_alpha(tt, t_on, t_off, alpha_on), loop_alpha(ss, t_on, t_off, alpha_on)
    else:
        a_t, a_s = 1 - tt, 1 - ss
    sigma = remdm_sigma(schedule, eta, remdm_sigma_max(a_t, a_s), (tt > t_off) & (tt <= t_on))
    sigma = np.where(a_t > 0, sigma, 0.0)  # nothing is committed before the first unmask
    s = remdm_unmask_prob(a_t, a_s, sigma)
    return {"sigma": sigma, "rho": sigma, "s": s, "alpha_t": a_t, "alpha_s": a_s}
