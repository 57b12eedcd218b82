"""Model v1: exact forward recursion of the C/P/H/R chain, augmented with "visited P" and "revised".

State order C, P, H, R. One step applies the row-stochastic matrix M_t to X_{t-1}:

    C -> H : h s     C -> P : h (1 - s)    C -> C : 1 - h
    P -> H : s       P -> C : r            P -> P : 1 - s - r
    H -> C : rho     H -> R : lam          H -> H : 1 - rho - lam
    R -> R : 1       (R is absorbing: a committed late refusal ends the episode as not harmful)

HRR and FRR are per-trajectory events, so the chain is augmented with a flag in
{0: never in P, 1: visited P, never revised, 2: visited P and revised (a P -> C transition)}.
The recursion below writes the 11 reachable augmented states out by hand: it is the hot path
(`exact_sets_per_s`), and sparse updates beat a dense 12 x 12 product by an order of magnitude.
"""

from __future__ import annotations

import numpy as np

from theory._validate import STATES, validated

C, P, H, R = 0, 1, 2, 3


def transition_matrices(h, s, r, rho, lam) -> np.ndarray:
    """Per-step transition matrices, shape [..., T, 4, 4] (rows = from, cols = to); validated."""
    p, _ = validated(h, s, r, rho, lam)
    return _matrices(p["h"], p["s"], p["r"], p["rho"], p["lam"])


def _matrices(h, s, r, rho, lam) -> np.ndarray:
    M = np.zeros(h.shape + (4, 4))
    M[..., C, C] = 1 - h
    M[..., C, P] = h * (1 - s)
    M[..., C, H] = h * s
    M[..., P, C] = r
    M[..., P, P] = np.clip(1 - s - r, 0.0, 1.0)
    M[..., P, H] = s
    M[..., H, C] = rho
    M[..., H, H] = np.clip(1 - rho - lam, 0.0, 1.0)
    M[..., H, R] = lam
    M[..., R, R] = 1.0
    return M


_AUGMENTED_START = {C: 0, P: 3, H: 5, R: 8}  # row of c0 c1 c2 p1 p2 h0 h1 h2 q0 q1 q2 (q = R)


def forward(h, s, r, rho, lam, i0: int, chunk: int = 8192) -> dict[str, np.ndarray]:
    """Unvalidated augmented recursion on broadcast float64 arrays [..., T] (see module docstring).

    Works on cache-sized chunks of the flattened batch with in-place updates (the hot path).
    """
    batch, T = h.shape[:-1], h.shape[-1]
    B = int(np.prod(batch, dtype=np.int64))
    coef = _step_coefficients(h, s, r, rho, lam, B, T)
    probs = np.zeros((4, T + 1, B))
    probs[i0, 0] = 1.0
    fin = np.zeros((11, B))
    tmp = np.empty(min(chunk, max(B, 1)))
    for lo in range(0, B, chunk):
        sl = slice(lo, min(lo + chunk, B))
        fin[:, sl] = _forward_chunk(coef, sl, i0, probs, tmp)
    return _outcomes(fin, probs, batch, T)


def _step_coefficients(h, s, r, rho, lam, B: int, T: int) -> tuple[np.ndarray, ...]:
    """Per-step transition probabilities [T, B] in the order `_advance` reads them:
    1 - h, h s, h (1 - s), 1 - s - r, 1 - rho - lam, s, r, rho, lam."""
    hT, sT, rT, rhoT, lamT = (
        np.ascontiguousarray(np.reshape(a, (B, T)).T) for a in (h, s, r, rho, lam)
    )
    stay_c, hs = 1 - hT, hT * sT
    hns = hT - hs
    stay_p = np.maximum(1 - sT - rT, 0.0)
    stay_h = np.maximum(1 - rhoT - lamT, 0.0)
    return stay_c, hs, hns, stay_p, stay_h, sT, rT, rhoT, lamT


def _forward_chunk(coef: tuple[np.ndarray, ...], sl: slice, i0: int, probs: np.ndarray,
                   tmp: np.ndarray) -> np.ndarray:
    """Run the chunk `sl` of the batch through every step; write its state marginals into `probs`
    [4, T + 1, B] and return its final augmented law [11, m]."""
    m = sl.stop - sl.start
    st = np.zeros((11, m))
    st[_AUGMENTED_START[i0]] = 1.0
    nw = np.empty((11, m))
    for t in range(coef[0].shape[0]):
        _advance(st, nw, tmp[:m], tuple(a[t, sl] for a in coef))
        st, nw = nw, st
        c0, c1, c2, p1, p2, h0, h1, h2, q0, q1, q2 = st
        row = probs[:, t + 1, sl]
        np.add(c0, c1, out=row[C])
        row[C] += c2
        np.add(p1, p2, out=row[P])
        np.add(h0, h1, out=row[H])
        row[H] += h2
        np.add(q0, q1, out=row[R])
        row[R] += q2
    return st


def _advance(st: np.ndarray, nw: np.ndarray, tt: np.ndarray, k: tuple[np.ndarray, ...]) -> None:
    """One step of the augmented chain, from `st` into `nw` (both [11, m]), in place (`tt`: scratch).

    Flag 0/1/2 = never in P / visited P / revised (a P -> C step); q = R."""
    sc, a_hs, a_hns, sp, sh, s_, r_, rho_, lam_ = k
    c0, c1, c2, p1, p2, h0, h1, h2, q0, q1, q2 = st
    n0, n1, n2, np1, np2, nh0, nh1, nh2, nq0, nq1, nq2 = nw
    np.multiply(c0, sc, out=n0)  # C: stayed in C, or re-masked from H
    n0 += np.multiply(h0, rho_, out=tt)
    np.multiply(c1, sc, out=n1)
    n1 += np.multiply(h1, rho_, out=tt)
    np.multiply(c2, sc, out=n2)
    n2 += np.multiply(h2, rho_, out=tt)
    np.add(p1, p2, out=tt)  # P -> C revises: flag 2
    tt *= r_
    n2 += tt
    np.add(c0, c1, out=np1)  # P: a fresh proposal from C, or stayed pending
    np1 *= a_hns
    np1 += np.multiply(p1, sp, out=tt)
    np.multiply(c2, a_hns, out=np2)
    np2 += np.multiply(p2, sp, out=tt)
    np.multiply(c0, a_hs, out=nh0)  # H: committed at once from C, committed from P, or stayed
    nh0 += np.multiply(h0, sh, out=tt)
    np.multiply(c1, a_hs, out=nh1)
    nh1 += np.multiply(p1, s_, out=tt)
    nh1 += np.multiply(h1, sh, out=tt)
    np.multiply(c2, a_hs, out=nh2)
    nh2 += np.multiply(p2, s_, out=tt)
    nh2 += np.multiply(h2, sh, out=tt)
    np.multiply(h0, lam_, out=nq0)  # R: late refusal after the harm (absorbing)
    nq0 += q0
    np.multiply(h1, lam_, out=nq1)
    nq1 += q1
    np.multiply(h2, lam_, out=nq2)
    nq2 += q2


def _outcomes(fin: np.ndarray, probs: np.ndarray, batch: tuple[int, ...], T: int) -> dict[str, np.ndarray]:
    """ASR, HRR, FRR and the state marginals from the final augmented law [11, B]."""
    c0, c1, c2, p1, p2, h0, h1, h2, q0, q1, q2 = fin
    visited = c1 + c2 + p1 + p2 + h1 + h2 + q1 + q2
    revised = c2 + p2 + h2 + q2
    recovered = c1 + c2 + q1 + q2
    pos = visited > 0
    den = np.where(pos, visited, 1.0)
    hrr = np.where(pos, revised / den, np.nan)
    frr = np.where(pos, recovered / den, np.nan)
    state_probs = np.moveaxis(probs, 0, -1).reshape(T + 1, *batch, 4)
    state_probs = np.moveaxis(state_probs, 0, -2)
    return {
        "asr": (probs[P, T] + probs[H, T]).reshape(batch),
        "hrr": hrr.reshape(batch),
        "frr": frr.reshape(batch),
        "p_visit_pending": visited.reshape(batch),
        "p_revised": revised.reshape(batch),
        "state_probs": state_probs,
    }


def predict(h, s, r, rho, lam, start: str = "C") -> dict[str, np.ndarray]:
    """Exact outcomes of the v1 chain for per-step hazards of length T (leading dims broadcast).

    Returns a dict with
      asr          P(X_T in {H, P}): a harm still pending at T counts as committed;
      hrr          P(at least one P -> C | the trajectory ever visits P), NaN if P is unreachable;
      frr          P(X_T in {C, R} | ever visits P), NaN if P is unreachable;
      state_probs  [..., T + 1, 4] marginals of (C, P, H, R), row 0 = the start;
      p_visit_pending, p_revised  the unconditional probabilities behind hrr.
    Raises ValueError (offending index and value) on invalid input.
    """
    p, i0 = validated(h, s, r, rho, lam, start)
    return forward(p["h"], p["s"], p["r"], p["rho"], p["lam"], i0)


def forward_events(
    M: np.ndarray, start: np.ndarray, events: list[np.ndarray], start_bits: int = 0
) -> np.ndarray:
    """Generic augmented recursion: joint law of (X_t, which events have happened by t).

    M: [..., T, 4, 4] transition matrices; start: [..., 4] law of X_0; events: K boolean [4, 4]
    masks of transitions; start_bits: flags already on at t = 0. Returns [..., T + 1, 4, 2**K]
    where the last index is a bitmask of the events seen. Slow and general: used for curves and
    as a test oracle.
    """
    K = len(events)
    F = 2**K
    bits = np.zeros((4, 4), dtype=int)
    for k, e in enumerate(events):
        bits |= np.asarray(e, dtype=bool).astype(int) << k
    T = M.shape[-3]
    batch = np.broadcast_shapes(M.shape[:-3], start.shape[:-1])
    out = np.zeros(batch + (T + 1, 4, F))
    out[..., 0, :, start_bits] = start
    for t in range(T):
        cur, nxt = out[..., t, :, :], out[..., t + 1, :, :]
        for x in range(4):
            for y in range(4):
                m = M[..., t, x, y][..., None]
                b = bits[x, y]
                for f in range(F):
                    nxt[..., y, f | b] += cur[..., x, f] * m[..., 0]
    return out


def start_vector(start: str) -> np.ndarray:
    """One-hot law of X_0 for a state name."""
    v = np.zeros(4)
    v[STATES.index(start)] = 1.0
    return v
