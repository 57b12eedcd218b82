"""Model v2, exact by enumeration: the law of a sampler's run on a small oracle (the test oracle).

Forward recursion over sampler states (canvas, pins, ReMDM-conf's psi, the block's mask count,
and the commit / EOS / re-mask tallies the read-offs need), merging equal states; exponential in
L and V, so for L <= ~5. It is the ground truth `oracle_sim` must match within sampling error, for
every sampler and feature of `oracle_sim` (temperature, argmax ties, eos_inf, start canvases, pins,
forced tokens, annealed selection, ReMDM re-masking), and it proves numerically the identity
`ASR = mixture_asr` for ar_order and one-position-per-step value-blind selection.

Shared with `oracle_sim`: the selection rules' scores and exact set laws (`theory.selection_rules`,
annealed selection by a 1-D quadrature) and the ReMDM formulas of `theory.schedules`. Written out
again here, so that the simulator is tested against a second implementation: the proposal laws,
the posterior (from the canvas, never down-dated), ReMDM's time grid and conf weights, the tallies.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from typing import NamedTuple

import numpy as np

from theory.oracle import Mixture, marginals
from theory.oracle_readouts import find_templates
from theory.sampler_spec import SamplerSpec
from theory.schedules import llada_counts, loop_alpha, remdm_sigma, remdm_sigma_max, remdm_unmask_prob
from theory.selection_rules import SELECTION_RULES, ScoreInputs, exact_set_law, rounded

TIE = 1e-12
Move = tuple[float, dict[int, int]]  # (probability, {position: token, or -1 to re-mask})


class State(NamedTuple):
    canvas: tuple[int, ...]
    pinned: tuple[bool, ...]
    psi: tuple[float, ...]  # ReMDM-conf only (else all -1): prob when committed; -1 = none (NaN in the lab)
    block_n: int
    n_commit: int  # commits so far, capped at n_first (later commits get weight 0 in eos_first_share)


def _psi_key(x: float) -> float:
    return float(rounded(x))


def _remdm(spec: SamplerSpec, i: int) -> tuple[float, float, float, float]:
    """(alpha_t, alpha_s, decoded sigma scalar or conf's eta*sigma_max, sigma for masked) of step i."""
    T = spec.steps
    t32, s32 = np.float32(T - i) / np.float32(T), np.float32(T - i - 1) / np.float32(T)
    if spec.remdm_schedule == "loop":
        al = lambda x: float(loop_alpha(float(x), spec.t_on, spec.t_off, spec.alpha_on))  # noqa: E731
        a_t, a_s = al(t32), al(s32)
    else:
        a_t, a_s = 1 - float(t32), 1 - float(s32)
    in_loop = np.float32(spec.t_off) < t32 <= np.float32(spec.t_on)
    sig = float(remdm_sigma(spec.remdm_schedule, spec.eta_value, float(remdm_sigma_max(a_t, a_s)), in_loop))
    return a_t, a_s, sig, (0.0 if spec.remdm_schedule == "conf" else sig)


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


def _proposal_law(cp_row: np.ndarray, spec: SamplerSpec) -> list[tuple[int, float]]:
    if spec.temperature == 0:
        best = [v for v in range(len(cp_row)) if cp_row[v] >= max(cp_row) - TIE]
        if spec.argmax_ties == "lowest":
            return [(best[0], 1.0)]
        return [(v, 1.0 / len(best)) for v in best]
    q = {v: float(p) ** (1.0 / spec.temperature) for v, p in enumerate(cp_row) if p > 0}
    z = sum(q.values())
    return [(v, p / z) for v, p in q.items()]


@dataclasses.dataclass
class _Enumeration:
    """The fixed inputs of one enumeration, and the proposal laws of the canvases seen so far."""

    mix: Mixture
    spec: SamplerSpec
    force: tuple[int, int, int] | None
    n_first: int
    blocks: np.ndarray
    steps_per_block: int
    block_length: int
    cache: dict[tuple[int, ...], np.ndarray] = dataclasses.field(default_factory=dict)

    def probs(self, canvas: tuple[int, ...]) -> np.ndarray:
        """Proposal law [L, V] (before temperature) of every position given the canvas."""
        if canvas not in self.cache:
            mg = marginals(self.mix, np.array(canvas))
            self.cache[canvas] = np.array([_cp(row, self.spec, self.mix.eos) for row in mg])
        return self.cache[canvas]


class _Here(NamedTuple):
    """A state at step t after the forced token: mutable copies and the proposal law."""

    canvas: list[int]
    pins: list[bool]
    psi: list[float]  # NaN = none
    cp: np.ndarray


def _with_values(here: _Here, spec: SamplerSpec, positions, p_set: float) -> list[Move]:
    """Commit `positions` (probability p_set) with every combination of proposed values."""
    laws = [_proposal_law(here.cp[j], spec) for j in positions]
    return [(p_set * math.prod(p for _, p in combo), {j: v for j, (v, _) in zip(positions, combo, strict=True)})
            for combo in itertools.product(*laws)]


def _moves_leftmost(run: _Enumeration, here: _Here, t: int, block_n: int) -> tuple[list[Move], int]:
    """ar_order / ar: the leftmost masked position."""
    masked = [j for j in range(len(here.canvas)) if here.canvas[j] < 0]
    return _with_values(here, run.spec, tuple(masked[:1]), 1.0), block_n


def _remask_probs(run: _Enumeration, here: _Here, sig: float) -> np.ndarray:
    """ReMDM's per-position re-mask probability of the decoded, unpinned tokens (0 elsewhere)."""
    L = len(here.canvas)
    dec = [j for j in range(L) if here.canvas[j] >= 0 and not here.pins[j]]
    sig_dec = np.zeros(L)
    if run.spec.remdm_schedule == "conf" and dec:  # softmax of -psi over the decoded positions
        z = {j: math.exp(-(0.0 if here.psi[j] != here.psi[j] else here.psi[j])) for j in dec}
        for j in dec:
            sig_dec[j] = sig * z[j] / sum(z.values())
    elif run.spec.remdm_schedule != "conf":
        sig_dec[dec] = sig
    return sig_dec


def _moves_ancestral(run: _Enumeration, here: _Here, t: int, block_n: int) -> tuple[list[Move], int]:
    """mdlm / remdm: each masked position committed independently, decoded ones re-masked (ReMDM)."""
    L, spec = len(here.canvas), run.spec
    if spec.name == "mdlm":
        p_un, sig_dec = 1.0 / (spec.steps - t), np.zeros(L)
    else:
        a_t, a_s, sig, sig_m = _remdm(spec, t)
        sig_dec = _remask_probs(run, here, sig)
        p_un = float(remdm_unmask_prob(a_t, a_s, sig_m))
    per_pos = []
    for j in range(L):
        if here.canvas[j] < 0:
            opts = [((j, None), 1.0 - p_un)]
            opts += [((j, v), p_un * p) for v, p in _proposal_law(here.cp[j], spec)]
        elif sig_dec[j] > 0:
            opts = [((j, None), 1.0 - sig_dec[j]), ((j, -1), sig_dec[j])]
        else:
            continue
        per_pos.append([o for o in opts if o[1] > 0])
    moves = [(math.prod(p for _, p in combo), {j: v for (j, v), _ in combo if v is not None})
             for combo in itertools.product(*per_pos)]
    return moves, block_n


def _moves_top_k(run: _Enumeration, here: _Here, t: int, block_n: int) -> tuple[list[Move], int]:
    """Selection: the law of the top-k_j set of the active block, by the sampler's selection rule.
    A value-blind rule picks the set first, then the values; one that reads the drawn tokens'
    confidence enumerates the values first."""
    spec, rule = run.spec, SELECTION_RULES[run.spec.name]
    b, j = int(run.blocks[t]), t % run.steps_per_block
    lo, hi = b * run.block_length, (b + 1) * run.block_length
    elig = [p for p in range(len(here.canvas)) if here.canvas[p] < 0 and lo <= p < hi]
    if j == 0:
        block_n = len(elig)
    k = int(llada_counts(block_n, run.steps_per_block)[j])
    x = ScoreInputs(np.array(elig, int), j, run.steps_per_block, spec,
                    probs=here.cp[elig] if rule.reads_probs else None)
    if not rule.reads_confidence:
        return [mv for ls, ps in exact_set_law(rule, x, k) for mv in _with_values(here, spec, ls, ps)], block_n
    moves = []
    for combo in itertools.product(*(_proposal_law(here.cp[p], spec) for p in elig)):
        px = math.prod(q for _, q in combo)
        x0 = {p: v for p, (v, _) in zip(elig, combo, strict=True)}
        conf = np.array([here.cp[p, x0[p]] for p in elig], float)
        for ls, ps in exact_set_law(rule, dataclasses.replace(x, confidence=conf), k):
            if ps > 0:
                moves.append((px * ps, {p: x0[p] for p in ls}))
    return moves, block_n


_MOVES = {"ar_order": _moves_leftmost, "ar": _moves_leftmost, "mdlm": _moves_ancestral, "remdm": _moves_ancestral}


def _after(run: _Enumeration, st: State, here: _Here, block_n: int, mv: dict[int, int]):
    """(next state, EOS commits weighted for eos_first_share, re-mask indicator [L]) of a move."""
    L, eos = len(here.canvas), run.mix.eos
    keep_psi = run.spec.name == "remdm" and run.spec.remdm_schedule == "conf"
    c2, psi2 = list(here.canvas), list(here.psi)
    c = e = 0
    r = np.zeros(L)
    for j, v in mv.items():
        if v < 0:
            c2[j], psi2[j] = -1, -1.0
            r[j] = 1.0
        else:
            c2[j], psi2[j] = v, _psi_key(here.cp[j, v]) if keep_psi else -1.0
            c += 1
            e += int(eos is not None and v == eos)
    wgt = min(max((run.n_first - st.n_commit) / max(c, 1), 0.0), 1.0)
    psi2 = [-1.0 if (x != x) else x for x in psi2]  # NaN (forced) -> -1
    nxt = State(tuple(c2), tuple(here.pins), tuple(psi2), block_n, min(st.n_commit + c, run.n_first))
    return nxt, e * wgt, r


def _successors(run: _Enumeration, st: State, t: int):
    """(next state, probability, weighted EOS commits, re-mask indicator [L]) for every move of step t."""
    canvas, pins = list(st.canvas), list(st.pinned)
    psi = [float("nan") if v < 0 else v for v in st.psi]
    if run.force is not None and int(run.force[0]) == t:
        p_, v_ = int(run.force[1]), int(run.force[2])
        canvas[p_], pins[p_], psi[p_] = v_, True, float("nan")
    here = _Here(canvas, pins, psi, run.probs(tuple(canvas)))
    moves, block_n = _MOVES.get(run.spec.name, _moves_top_k)(run, here, t, st.block_n)
    for p, mv in moves:
        nxt, ew, r = _after(run, st, here, block_n, mv)
        yield nxt, p, ew, r


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
    run = _Enumeration(mix, spec, force, L // 2 if n_first is None else int(n_first), blocks,
                       spec.steps // spec.n_blocks(L), bl)
    canvas0 = tuple([-1] * L) if init_canvas is None else tuple(int(v) for v in init_canvas)
    pin0 = tuple(v >= 0 for v in canvas0) if pinned is None else tuple(bool(p) for p in pinned)
    if any(p and v < 0 for p, v in zip(pin0, canvas0, strict=True)):
        raise ValueError("a pinned position is masked in init_canvas")
    start = State(canvas0, pin0, tuple([-1.0] * L), 0, 0)
    layers = [{start: np.zeros(L + 2)}]
    layers[0][start][0] = 1.0
    for t in range(spec.steps):
        nxt: dict[State, np.ndarray] = {}
        for st, v in layers[-1].items():
            p, me, mr = v[0], v[1], v[2:]
            for s2, q, ew, r in _successors(run, st, t):
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
