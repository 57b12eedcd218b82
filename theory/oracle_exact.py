"""Model v2, exact by enumeration: the law of a sampler's run on a small oracle (the test oracle).

Forward recursion over sampler states (canvas, pins, ReMDM-conf's psi, the block's mask count,
and the commit / EOS / re-mask tallies the read-offs need), merging equal states; exponential in
L and V, so for L <= ~5. It is the ground truth `oracle_sim` must match within sampling error, for
every sampler and feature of `oracle_sim` (temperature, argmax ties, eos_inf, start canvases, pins,
forced tokens, annealed selection, ReMDM re-masking), and it proves numerically the identity
`ASR = mixture_asr` for ar_order and one-position-per-step value-blind selection.

Annealed selection ranks (1 - a) c_l + a U_l with U_l iid uniform: the law of the top-k set is a
1-D integral of a piecewise polynomial (breakpoints (1-a) c_l and (1-a) c_l + a), computed exactly
by Gauss-Legendre quadrature on each piece.
"""

from __future__ import annotations

import itertools
import math
from typing import NamedTuple

import numpy as np

from theory.oracle import Mixture, marginals
from theory.oracle_sim import (
    LEFT_TO_RIGHT,
    SamplerSpec,
    _confidence,  # noqa: F401  (re-exported for older callers)
    find_templates,
)
from theory.schedules import llada_counts, loop_alpha

# The sampler semantics below are written out again, independently of oracle_sim's helpers, so that
# the simulator is tested against a second implementation (shared code could hide a shared bug).
TIE = 1e-12


def _r(x):
    return float(np.round(x, 12))


def _anneal_a(a0: float, j: int, S: int) -> float:
    frac = 0.0 if S == 1 else j / (S - 1)
    return min(max(a0 * (1 - frac), 0.0), 1.0)


def _remdm(spec: SamplerSpec, i: int):
    """(alpha_t, alpha_s, decoded sigma scalar or conf's eta*sigma_max, sigma for masked) of step i."""
    T = spec.steps
    t32, s32 = np.float32(T - i) / np.float32(T), np.float32(T - i - 1) / np.float32(T)
    if spec.remdm_schedule == "loop":
        al = lambda x: float(loop_alpha(float(x), spec.t_on, spec.t_off, spec.alpha_on))  # noqa: E731
        a_t, a_s = al(t32), al(s32)
    else:
        a_t, a_s = 1 - float(t32), 1 - float(s32)
    smax = 1.0 if a_t <= 0 else min(1.0, (1 - a_s) / a_t)
    eta = spec.eta_value
    in_loop = np.float32(spec.t_off) < t32 <= np.float32(spec.t_on)
    sig = {"cap": min(eta, smax), "rescale": eta * smax, "conf": eta * smax,
           "loop": min(eta, smax) if in_loop else 0.0}[spec.remdm_schedule]
    return a_t, a_s, sig, (0.0 if spec.remdm_schedule == "conf" else sig)


def _p_unmask(a_t, a_s, sig):
    return 1.0 if a_t >= 1 else min(max((a_s - (1 - sig) * a_t) / (1 - a_t), 0.0), 1.0)


def _cp(mg_row: np.ndarray, spec: SamplerSpec, eos) -> np.ndarray:
    """Confidence law of one masked position: the marginal, with eos_inf renormalised without EOS."""
    if not spec.eos_inf:
        return mg_row
    if eos is None:
        raise ValueError("eos_inf needs the mixture's eos id")
    r = mg_row.copy()
    r[eos] = 0.0
    if r.sum() > 0:
        return r / r.sum()
    ok = [v for v in range(len(r)) if v != eos and v != spec.mask_id]
    r[ok] = 1.0 / len(ok)
    return r


def _score(kind: str, row: np.ndarray) -> float:
    if kind == "entropy":
        return _r(sum(p * math.log(p) for p in row if p > 0))
    s = sorted(row, reverse=True)
    return _r(s[0] - s[1])


_GL_X, _GL_W = np.polynomial.legendre.leggauss(12)


class State(NamedTuple):
    canvas: tuple[int, ...]
    pinned: tuple[bool, ...]
    psi: tuple[float, ...]  # ReMDM-conf only (else all -1): prob when committed; -1 = none (NaN in the lab)
    block_n: int
    n_commit: int  # commits so far, capped at n_first (later commits get weight 0 in eos_first_share)


def _top_k_sets(score: np.ndarray, cand: list[int], k: int) -> list[tuple[tuple[int, ...], float]]:
    """Law of the top-k subset of `cand` by `score`, ties at the boundary broken uniformly."""
    if k >= len(cand):
        return [(tuple(sorted(cand)), 1.0)]
    if k <= 0:
        return [((), 1.0)]
    vals = sorted((score[c] for c in cand), reverse=True)
    cut = vals[k - 1]
    above = [c for c in cand if score[c] > cut]
    tied = [c for c in cand if score[c] == cut]
    need = k - len(above)
    combos = list(itertools.combinations(tied, need))
    return [(tuple(sorted(above + list(c))), 1.0 / len(combos)) for c in combos]


def _uniform_sets(cand: list[int], k: int) -> list[tuple[tuple[int, ...], float]]:
    if k >= len(cand):
        return [(tuple(sorted(cand)), 1.0)]
    combos = list(itertools.combinations(sorted(cand), max(k, 0)))
    return [(c, 1.0 / len(combos)) for c in combos]


def annealed_top_k_sets(conf: dict[int, float], k: int, a: float) -> list[tuple[tuple[int, ...], float]]:
    """Law of the top-k set of positions by (1 - a) conf_l + a U_l (U iid uniform(0, 1))."""
    cand = sorted(conf)
    if k >= len(cand) or k <= 0:
        return _uniform_sets(cand, k)
    if a <= 0:
        return _top_k_sets({c: conf[c] for c in cand}, cand, k)
    if a >= 1:
        return _uniform_sets(cand, k)
    b = {c: (1 - a) * conf[c] for c in cand}
    knots = sorted({b[c] for c in cand} | {b[c] + a for c in cand})

    def F(c, x):
        return np.clip((x - b[c]) / a, 0.0, 1.0)

    out = []
    for S in itertools.combinations(cand, k):
        rest = [c for c in cand if c not in S]
        total = 0.0
        for lo, hi in zip(knots[:-1], knots[1:], strict=True):
            if hi <= lo:
                continue
            x = 0.5 * (hi - lo) * _GL_X + 0.5 * (hi + lo)
            dens = np.zeros_like(x)
            for c in rest:  # d/dx prod_{rest} F
                f = np.where((x > b[c]) & (x < b[c] + a), 1.0 / a, 0.0)
                dens += f * np.prod([F(o, x) for o in rest if o != c], axis=0)
            surv = np.prod([1.0 - F(s, x) for s in S], axis=0)
            total += 0.5 * (hi - lo) * float((_GL_W * dens * surv).sum())
        out.append((tuple(S), total))
    return out


def _proposal_law(cp_row: np.ndarray, spec: SamplerSpec) -> list[tuple[int, float]]:
    if spec.temperature == 0:
        best = [v for v in range(len(cp_row)) if cp_row[v] >= max(cp_row) - TIE]
        if spec.argmax_ties == "lowest":
            return [(best[0], 1.0)]
        return [(v, 1.0 / len(best)) for v in best]
    q = {v: float(p) ** (1.0 / spec.temperature) for v, p in enumerate(cp_row) if p > 0}
    z = sum(q.values())
    return [(v, p / z) for v, p in q.items()]


def exact_layers(mix: Mixture, spec: SamplerSpec, init_canvas=None, pinned=None, force=None,
                 n_first: int | None = None, min_prob: float = 0.0) -> list[dict[State, float]]:
    """Law of the sampler state after each step (T + 1 layers, layer 0 = the start).

    `init_canvas` [L] (-1 masked), `pinned` [L] (default: the initially committed positions),
    `force` = (step, pos, tok) or None: one start condition (oracle_sim takes them per row).
    """
    return [{s: float(v[0]) for s, v in lay.items()}
            for lay in _layers(mix, spec, init_canvas, pinned, force, n_first, min_prob)]


def _layers(mix, spec, init_canvas, pinned, force, n_first, min_prob) -> list[dict[State, np.ndarray]]:
    """Per state [probability, E[eos-weighted commits; state], E[re-mask events at l; state] (L)]: additive
    rewards ride along as masses, so the tallies need not be part of the state."""
    L = mix.L
    blocks, _, bl = spec.plan(L)
    T = spec.steps
    nb = spec.n_blocks(L)
    spb = T // nb
    n_first = L // 2 if n_first is None else int(n_first)
    canvas0 = tuple([-1] * L) if init_canvas is None else tuple(int(v) for v in init_canvas)
    pin0 = tuple(v >= 0 for v in canvas0) if pinned is None else tuple(bool(p) for p in pinned)
    if any(p and v < 0 for p, v in zip(pin0, canvas0, strict=True)):
        raise ValueError("a pinned position is masked in init_canvas")
    nan = float("nan")
    keep_psi = spec.kind == "remdm" and spec.remdm_schedule == "conf"
    start = State(canvas0, pin0, tuple([-1.0] * L), 0, 0)
    cache: dict[tuple[int, ...], np.ndarray] = {}

    def cprobs(canvas):
        if canvas not in cache:
            mg = marginals(mix, np.array(canvas))
            cache[canvas] = np.array([_cp(row, spec, mix.eos) for row in mg])
        return cache[canvas]

    def successors(st: State, t: int):
        canvas, pins = list(st.canvas), list(st.pinned)
        psi = [nan if v < 0 else v for v in st.psi]
        if force is not None and int(force[0]) == t:
            p_, v_ = int(force[1]), int(force[2])
            canvas[p_], pins[p_], psi[p_] = v_, True, nan
        cp = cprobs(tuple(canvas))
        masked = [j for j in range(L) if canvas[j] < 0]
        block_n = st.block_n
        # moves: (prob, {pos: value or -1 (re-mask)})
        moves: list[tuple[float, dict[int, int]]] = []

        def with_values(ls, p_set):
            laws = [_proposal_law(cp[j], spec) for j in ls]
            for combo in itertools.product(*laws):
                vals = {j: v for j, (v, _) in zip(ls, combo, strict=True)}
                moves.append((p_set * math.prod(p for _, p in combo), vals))

        if spec.kind in LEFT_TO_RIGHT:
            with_values(tuple(masked[:1]), 1.0)
        elif spec.kind in ("mdlm", "remdm"):
            if spec.kind == "mdlm":
                p_un, sig_dec = 1.0 / (T - t), np.zeros(L)
            else:
                a_t, a_s, sig, sig_m = _remdm(spec, t)
                dec = [j for j in range(L) if canvas[j] >= 0 and not pins[j]]
                sig_dec = np.zeros(L)
                if spec.remdm_schedule == "conf" and dec:
                    z = {j: math.exp(-(0.0 if psi[j] != psi[j] else psi[j])) for j in dec}
                    for j in dec:
                        sig_dec[j] = sig * z[j] / sum(z.values())
                elif spec.remdm_schedule != "conf":
                    sig_dec[dec] = sig
                p_un = _p_unmask(a_t, a_s, sig_m)
            per_pos = []
            for j in range(L):
                if canvas[j] < 0:
                    opts = [((j, None), 1.0 - p_un)]
                    opts += [((j, v), p_un * p) for v, p in _proposal_law(cp[j], spec)]
                elif sig_dec[j] > 0:
                    opts = [((j, None), 1.0 - sig_dec[j]), ((j, -1), sig_dec[j])]
                else:
                    continue
                per_pos.append([o for o in opts if o[1] > 0])
            for combo in itertools.product(*per_pos):
                moves.append((math.prod(p for _, p in combo), {j: v for (j, v), _ in combo if v is not None}))
        else:
            b, jj = int(blocks[t]), t % spb
            elig = [j for j in masked if b * bl <= j < (b + 1) * bl]
            if jj == 0:
                block_n = len(elig)
            k = int(llada_counts(block_n, spb)[jj])
            if spec.kind == "random":
                for ls, ps in _uniform_sets(elig, k):
                    with_values(ls, ps)
            elif spec.kind in ("entropy", "margin"):
                score = np.full(L, -np.inf)
                for j in elig:
                    score[j] = _score(spec.kind, cp[j])
                for ls, ps in _top_k_sets(score, elig, k):
                    with_values(ls, ps)
            else:  # low_confidence / annealed: the score sees the drawn values
                a = _anneal_a(spec.anneal_a0, jj, spb) if spec.kind == "annealed" else 0.0
                laws = [_proposal_law(cp[j], spec) for j in elig]
                for combo in itertools.product(*laws):
                    px = math.prod(p for _, p in combo)
                    x0 = {j: v for j, (v, _) in zip(elig, combo, strict=True)}
                    confs = {j: _r(cp[j, x0[j]]) for j in elig}
                    for ls, ps in annealed_top_k_sets(confs, k, a):
                        if ps > 0:
                            moves.append((px * ps, {j: x0[j] for j in ls}))
        for p, mv in moves:
            c2, psi2 = list(canvas), list(psi)
            c = e = 0
            r = np.zeros(L)
            for j, v in mv.items():
                if v < 0:
                    c2[j], psi2[j] = -1, -1.0
                    r[j] = 1.0
                else:
                    c2[j], psi2[j] = v, _r(cp[j, v]) if keep_psi else -1.0
                    c += 1
                    e += int(mix.eos is not None and v == mix.eos)
            wgt = min(max((n_first - st.n_commit) / max(c, 1), 0.0), 1.0)
            psi2 = [-1.0 if (x != x) else x for x in psi2]  # NaN (forced) -> -1
            yield (State(tuple(c2), tuple(pins), tuple(psi2), block_n, min(st.n_commit + c, n_first)), p,
                   e * wgt, r)

    layers = [{start: np.zeros(L + 2)}]
    layers[0][start][0] = 1.0
    for t in range(T):
        nxt: dict[State, np.ndarray] = {}
        for st, v in layers[-1].items():
            p, me, mr = v[0], v[1], v[2:]
            for s2, q, ew, r in successors(st, t):
                if p * q > min_prob:
                    add = np.concatenate([[p * q, q * me + p * q * ew], q * mr + p * q * r])
                    if s2 in nxt:
                        nxt[s2] += add
                    else:
                        nxt[s2] = add
        layers.append(nxt)
    return layers


def exact_output(mix: Mixture, spec: SamplerSpec, min_prob: float = 0.0,
                 **kw) -> dict[tuple[int, ...], float]:
    """Exact law of the final canvas {tokens: probability} of `spec` on the oracle of `mix`
    (keyword arguments: the start condition of `exact_layers`)."""
    out: dict[tuple[int, ...], float] = {}
    for st, p in exact_layers(mix, spec, min_prob=min_prob, **kw)[-1].items():
        if min(st.canvas) < 0:
            raise AssertionError("positions left masked at the end")
        out[st.canvas] = out.get(st.canvas, 0.0) + p
    return out


def exact_asr(mix: Mixture, spec: SamplerSpec, **kw) -> float:
    """Exact ASR of `spec` on the oracle of `mix` (by enumeration; small instances only)."""
    law = exact_output(mix, spec, **kw)
    return float(sum(p for c, p in law.items() if mix.is_harm[list(c)].sum() >= mix.threshold))


def exact_outcomes(mix: Mixture, spec: SamplerSpec, refusal_templates=None, **kw) -> dict:
    """Exact values of oracle_sim's summary rates: asr, valid_rate, mean_length, refusal_rate,
    eos_first_share_mean (over runs with at least one commit), remask_events_per_seq, per step
    `p_committed_harm` [T + 1] = P(committed harm >= threshold after step t), and `law` (the final
    canvas law, as `exact_output`)."""
    kw = {"init_canvas": None, "pinned": None, "force": None, "n_first": None, "min_prob": 0.0, **kw}
    layers = _layers(mix, spec, kw["init_canvas"], kw["pinned"], kw["force"], kw["n_first"], kw["min_prob"])
    L, thr = mix.L, mix.threshold
    pmix = mix.prior > 0
    asr = valid = length = refusal = share = share_n = remask = 0.0
    remask_pos = np.zeros(L)
    for st, v in layers[-1].items():
        p, me, mr = v[0], v[1], v[2:]
        x = np.array(st.canvas)
        asr += p * (mix.is_harm[x].sum() >= thr)
        valid += p * bool((mix.emit[pmix][:, np.arange(L), x] > 0).all(1).any())
        if mix.eos is not None:
            is_eos = x == mix.eos
            length += p * (int(is_eos.argmax()) if is_eos.any() else L)
        if refusal_templates is not None:
            refusal += p * bool(find_templates(x, refusal_templates))
        if st.n_commit > 0:  # n_commit is already capped at n_first: the share's denominator
            share += me / st.n_commit
            share_n += p
        remask += mr.sum()
        remask_pos += mr
    harm_t = [sum(v[0] for st, v in lay.items()
                  if sum(mix.is_harm[v] for v in st.canvas if v >= 0) >= thr) for lay in layers]
    law: dict[tuple[int, ...], float] = {}
    for st, v in layers[-1].items():
        law[st.canvas] = law.get(st.canvas, 0.0) + float(v[0])
    out = {"asr": asr, "valid_rate": valid, "remask_events_per_seq": remask, "law": law,
           "remask_per_position": remask_pos,
           "eos_first_share_mean": share / share_n if share_n > 0 else float("nan"),
           "p_committed_harm": np.array(harm_t)}
    if mix.eos is not None:
        out["mean_length"] = length
    if refusal_templates is not None:
        out["refusal_rate"] = refusal
    return out
