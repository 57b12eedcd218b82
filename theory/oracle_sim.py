"""Model v2 (code name oracle_sim), Monte Carlo: a sampler running on the oracle denoiser of a `Mixture`.

The chain is simulated on its sufficient state: the committed canvas is kept, and everything the
sampler looks at (the oracle marginals, hence proposals and confidences) is a function of the
skeleton posterior w and the mask set. w is the sum of per-position log-likelihood contributions
(kept per position, so a re-masked or overwritten token is *down-dated* exactly: its contribution
is replaced, not approximated). Exact in law (unbiased) for every sampler; only Monte Carlo error.

One step (semantics of `toydlm/samplers`, read and matched; see theory/README.md "Model v2"):
forced tokens are written, proposals x0 are drawn (`theory.proposals`), then the sampler's *step
rule* picks the positions to commit, and for ReMDM only, the positions to re-mask:
  ar_order, ar    the leftmost masked position (T = L; nothing once all are committed)
  selection       top-k_j of a score in the active block, k_j = LLaDA's count from the block's
                  masked count when it starts (`theory.selection_rules`: random, low_confidence,
                  entropy, margin, annealed, and any rule added by `register_selection_rule`)
  mdlm            ancestral, linear alpha: each masked position committed w.p. 1 / (T - t)
  remdm           ancestral with re-masking (`theory.remdm`): decoded unpinned tokens re-masked
                  w.p. sigma, masked ones committed w.p. (a_s - (1 - sigma) a_t) / (1 - a_t)
A canvas no skeleton explains gets the eps -> 0 posterior of `oracle.posterior_from_loglik` (the
lab oracle's MISMATCH penalty is the same limit).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from theory import remdm
from theory.oracle import Mixture, posterior_from_loglik
from theory.oracle_readouts import Records, summarise
from theory.proposals import (
    Proposals,
    SkeletonSampler,
    argmax_set,
    marginal_argmax,
    masked_marginals,
    proposal_probs,
    propose,
)
from theory.sampler_spec import SamplerSpec
from theory.schedules import llada_counts
from theory.selection_rules import SELECTION_RULES, ScoreInputs, SelectionRule, top_k_mask


class Plan(NamedTuple):
    """Where each step acts: the block of each step [T], steps per block, the block of each position [L]."""

    blocks: np.ndarray
    steps_per_block: int
    block_of: np.ndarray


class StepView(NamedTuple):
    """What a step rule reads at step t of m trajectories ([m, L] unless noted)."""

    t: int
    masked: np.ndarray
    pinned: np.ndarray
    psi: np.ndarray  # probability of each decoded token when it was committed (NaN: none)
    proposals: Proposals
    block_n: np.ndarray  # [m] the active block's masked count when the block started


# (commit [m, L], remask [m, L] or None when the sampler never re-masks, block_n [m])
StepRule = Callable[[SamplerSpec, Plan, StepView, np.random.Generator],
                    tuple[np.ndarray, np.ndarray | None, np.ndarray]]


# ---------------------------------------------------------------------------- step rules
def commit_leftmost(spec: SamplerSpec, plan: Plan, v: StepView, rng: np.random.Generator):
    """ar_order / ar: commit the leftmost masked position."""
    return v.masked & (np.cumsum(v.masked, 1) == 1), None, v.block_n


def commit_mdlm(spec: SamplerSpec, plan: Plan, v: StepView, rng: np.random.Generator):
    """MDLM (ancestral, linear alpha): each masked position is committed w.p. 1 / (T - t)."""
    m, L = v.masked.shape
    return v.masked & (rng.random((m, L)) < 1.0 / (spec.steps - v.t)), None, v.block_n


def commit_and_remask_remdm(spec: SamplerSpec, plan: Plan, v: StepView, rng: np.random.Generator):
    """ReMDM: ancestral commits plus re-masking of decoded, unpinned tokens (`theory.remdm`)."""
    commit, remask = remdm.commit_and_remask(spec, v.t, v.masked, v.pinned, v.psi, rng)
    return commit, remask, v.block_n


def commit_top_k(spec: SamplerSpec, plan: Plan, v: StepView, rng: np.random.Generator):
    """Selection: the k_j masked positions of the active block with the highest score of the
    sampler's selection rule; k_j from the block's masked count when the block starts."""
    rule = SELECTION_RULES[spec.name]
    b, j = int(plan.blocks[v.t]), v.t % plan.steps_per_block
    eligible = v.masked & (plan.block_of == b)
    block_n = eligible.sum(1) if j == 0 else v.block_n
    k = llada_counts(block_n, plan.steps_per_block)[:, j]
    score = selection_scores(rule, spec, plan, v, b, rng)
    return top_k_mask(score, eligible, k, rng), None, block_n


def selection_scores(rule: SelectionRule, spec: SamplerSpec, plan: Plan, v: StepView, block: int,
                     rng: np.random.Generator) -> np.ndarray:
    """Scores [m, L] of `rule`; noise is drawn on the whole [m, L] grid (the lab's u_sel). A rule that
    reads the proposal law is scored only at the active block's masked positions (-inf elsewhere)."""
    m, L = v.masked.shape
    j = v.t % plan.steps_per_block
    uniform = rng.random((m, L)) if rule.reads_uniform else None
    p = v.proposals
    if not rule.reads_probs:
        x = ScoreInputs(np.broadcast_to(np.arange(L), (m, L)), j, plan.steps_per_block, spec,
                        confidence=p.confidence if rule.reads_confidence else None, uniform=uniform)
        return rule.score(x)
    inb = plan.block_of[p.positions] == block
    rows, pos = p.rows[inb], p.positions[inb]
    x = ScoreInputs(pos, j, plan.steps_per_block, spec, probs=p.probs[inb],
                    confidence=p.confidence[rows, pos] if rule.reads_confidence else None,
                    uniform=None if uniform is None else uniform[rows, pos])
    score = np.full((m, L), -np.inf)
    score[rows, pos] = rule.score(x)
    return score


STEP_RULES: dict[str, StepRule] = {
    "ar_order": commit_leftmost, "ar": commit_leftmost, "mdlm": commit_mdlm, "remdm": commit_and_remask_remdm,
}


def step_rule(name: str) -> StepRule:
    """The step rule of a sampler name: a fixed rule, else top-k by the registered selection rule."""
    return STEP_RULES.get(name, commit_top_k)


# ---------------------------------------------------------------------------- sampler state
class Tables(NamedTuple):
    """Per-position log-likelihood tables of a mixture ([L, V, K]) and of its prior ([K])."""

    log_emit: np.ndarray
    zero_emit: np.ndarray  # int16: 1 where emit = 0 (a contradicted skeleton)
    log_prior: np.ndarray
    zero_prior: np.ndarray  # L + 1 where prior = 0 (never the least contradicted)

    @classmethod
    def of(cls, mix: Mixture) -> Tables:
        pos_emit = mix.emit > 0
        return cls(np.log(np.where(pos_emit, mix.emit, 1.0)).transpose(1, 2, 0).copy(),
                   (~pos_emit).transpose(1, 2, 0).astype(np.int16).copy(),
                   np.log(np.where(mix.prior > 0, mix.prior, 1.0)), (mix.prior == 0) * (mix.L + 1))


@dataclass
class Chunk:
    """Mutable sampler state of m trajectories ([m, L] unless noted)."""

    canvas: np.ndarray  # token ids, -1 = masked
    pinned: np.ndarray
    contrib: np.ndarray  # [m, L, K] log-likelihood contribution of each committed position
    zero_count: np.ndarray  # [m, K] zero factors (contradicted committed positions), kept up to date
    psi: np.ndarray  # probability of the token when it was last committed (NaN: none)
    commit_step: np.ndarray  # step of the last sampler commit (-1: start / forced token)
    block_n: np.ndarray  # [m] the active block's masked count when it started
    n_commit: np.ndarray  # [m] sampler commits so far
    eos_weight: np.ndarray  # [m] EOS commits among the first n_first (fractional at the boundary)
    remasks: np.ndarray  # re-mask events per position

    @classmethod
    def start(cls, canvas: np.ndarray, pinned: np.ndarray, tables: Tables) -> Chunk:
        m, L = canvas.shape
        K = tables.log_prior.shape[0]
        ch = cls(np.full_like(canvas, -1), pinned, np.zeros((m, L, K)), np.zeros((m, K), np.int64),
                 np.full((m, L), np.nan), np.full((m, L), -1, np.int64), np.zeros(m, np.int64), np.zeros(m),
                 np.zeros(m), np.zeros((m, L), np.int64))
        rows, pos = np.nonzero(canvas >= 0)
        ch.write(tables, rows, pos, canvas[rows, pos])
        return ch

    def write(self, tables: Tables, rows: np.ndarray, pos: np.ndarray, tokens: np.ndarray) -> None:
        """Write tokens (-1 re-masks); replacing a position's contribution down-dates the posterior."""
        live = tokens >= 0
        self.contrib[rows, pos] = np.where(live[:, None], tables.log_emit[pos, np.maximum(tokens, 0)], 0.0)
        old = self.canvas[rows, pos]
        delta = zero_flags(tables, pos, tokens).astype(np.int64) - zero_flags(tables, pos, old)
        add_rows(self.zero_count, rows, delta)
        self.canvas[rows, pos] = tokens

    def zero_factors(self, tables: Tables) -> np.ndarray:
        """Contradicted positions per skeleton [m, K]."""
        return tables.zero_prior + self.zero_count

    def posterior(self, tables: Tables) -> np.ndarray:
        """Skeleton posterior w [m, K] of the current canvas."""
        return posterior_from_loglik(tables.log_prior + self.contrib.sum(1), self.zero_factors(tables))

    def inject(self, tables: Tables, rows: np.ndarray, pos: np.ndarray, tokens: np.ndarray) -> None:
        """Forced tokens: overwrite and pin (not a sampler commit)."""
        self.write(tables, rows, pos, tokens)
        self.pinned[rows, pos] = True
        self.psi[rows, pos] = np.nan
        self.commit_step[rows, pos] = -1

    def apply(self, tables: Tables, t: int, commit: np.ndarray, remask: np.ndarray | None, props: Proposals,
              eos: int | None, n_first: int) -> None:
        """Commit the proposals at `commit`, re-mask `remask`, and count commits for the EOS-first share."""
        rows, pos = np.nonzero(commit)
        self.write(tables, rows, pos, props.x0[rows, pos])
        self.psi[rows, pos] = props.confidence[rows, pos]
        self.commit_step[rows, pos] = t
        if remask is not None:
            rows, pos = np.nonzero(remask)
            self.write(tables, rows, pos, np.full(rows.size, -1))
            self.psi[rows, pos] = np.nan
            self.commit_step[rows, pos] = -1
            self.remasks += remask
        c = commit.sum(1).astype(float)
        e = (commit & (props.x0 == (-2 if eos is None else eos))).sum(1)
        self.eos_weight += e * np.clip((n_first - self.n_commit) / np.maximum(c, 1), 0.0, 1.0)
        self.n_commit += c


def zero_flags(tables: Tables, pos: np.ndarray, tokens: np.ndarray) -> np.ndarray:
    """[N, K] int16: 1 where skeleton k cannot emit tokens[i] at pos[i] (0 for a masked position, -1)."""
    return np.where((tokens >= 0)[:, None], tables.zero_emit[pos, np.maximum(tokens, 0)], 0)


def add_rows(acc: np.ndarray, rows: np.ndarray, x: np.ndarray) -> None:
    """acc[rows[i]] += x[i] for every i, repeated rows included (integers: exact in any order)."""
    if rows.size == 0:
        return
    if (np.diff(rows) < 0).any():
        order = np.argsort(rows, kind="stable")
        rows, x = rows[order], x[order]
    start = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
    acc[rows[start]] += np.add.reduceat(x, start, axis=0)


class Run(NamedTuple):
    """Everything a step needs that does not change during a simulation."""

    mix: Mixture
    spec: SamplerSpec
    plan: Plan
    tables: Tables
    sampler: SkeletonSampler
    rule: StepRule
    n_first: int
    argmax_draft: bool
    templates: list[tuple[int, ...]] | None


class StartConditions(NamedTuple):
    """Per-trajectory start canvas and pins [n, L], forced step, position and token [n]."""

    canvas: np.ndarray
    pinned: np.ndarray
    force_step: np.ndarray
    force_pos: np.ndarray
    force_tok: np.ndarray


# ---------------------------------------------------------------------------- driver
def sampler_step(run: Run, ch: Chunk, rec: Records, rows: slice, start: StartConditions, t: int,
                 rng: np.random.Generator) -> None:
    """Step t of one chunk: inject, propose, commit / re-mask by the step rule, record."""
    forced = np.flatnonzero(start.force_step == t)
    if forced.size:  # inject: before the denoiser call
        ch.inject(run.tables, forced, start.force_pos[forced], start.force_tok[forced])
    masked = ch.canvas < 0
    w = ch.posterior(run.tables)
    props = propose(run.mix, run.spec, run.sampler, w, _need(run, masked, t), rng, masked)
    view = StepView(t, masked, ch.pinned, ch.psi, props, ch.block_n)
    commit, remask, ch.block_n = run.rule(run.spec, run.plan, view, rng)
    argmax_harm = masked & run.mix.is_harm[argmax_proposals(run, w, masked)] if run.argmax_draft else None
    rec.draft(rows, t + 1, ch.canvas, props.x0, argmax_harm, run.mix.is_harm)
    ch.apply(run.tables, t, commit, remask, props, run.mix.eos, run.n_first)
    rec.committed(rows, t + 1, ch.canvas, run.mix.is_harm, run.templates)


def argmax_proposals(run: Run, w: np.ndarray, masked: np.ndarray) -> np.ndarray:
    """[m, L] the lowest-id maximiser of each position's untempered proposal law (`argmax_set`'s ties:
    the lab's `xhat_argmax`), meaningful at masked positions. Without eos_inf the law is the oracle
    marginal, whose maximiser is read off its support (`marginal_argmax`); with it, off the full law."""
    if not run.spec.eos_inf:
        return marginal_argmax(w, run.sampler.support)
    rows, positions, probs = masked_marginals(w, masked, run.mix.emit, run.sampler.support)
    out = np.zeros(masked.shape, np.int64)
    out[rows, positions] = argmax_set(proposal_probs(probs, run.spec, run.mix.eos, inplace=True)).argmax(-1)
    return out


def _need(run: Run, masked: np.ndarray, t: int) -> np.ndarray | None:
    """Where the full proposal law is needed: every masked position for tempered / argmax proposals,
    the active block's for rules that read it, else nowhere (None; the argmax draft reads the support)."""
    if run.spec.temperature != 1:
        return masked
    rule = SELECTION_RULES.get(run.spec.name)
    if rule is not None and rule.reads_probs:
        return masked & (run.plan.block_of == run.plan.blocks[t])
    return None


def run_chunk(run: Run, rec: Records, rows: slice, start: StartConditions, rng: np.random.Generator) -> None:
    """Simulate the trajectories `rows` from their start conditions to the end; fill `rec`."""
    ch = Chunk.start(start.canvas[rows].copy(), start.pinned[rows].copy(), run.tables)
    rec.committed(rows, 0, ch.canvas, run.mix.is_harm, run.templates)
    rec.start_draft(rows)
    chunk_start = StartConditions(*(a[rows] for a in start))
    for t in range(run.spec.steps):
        sampler_step(run, ch, rec, rows, chunk_start, t, rng)
    if (ch.canvas < 0).any():  # every sampler's last step commits everything
        raise AssertionError("positions left masked at the end")
    rec.final[rows] = ch.canvas
    den = np.minimum(ch.n_commit, run.n_first)
    rec.eos_first_share[rows] = np.where(den > 0, ch.eos_weight / np.maximum(den, 1), np.nan)
    rec.remask_count[rows] = ch.remasks
    rec.commit_step[rows] = ch.commit_step
    rec.zero_factors[rows] = ch.zero_factors(run.tables)


def simulate_oracle(mix: Mixture, spec: SamplerSpec, n: int, seed: int = 0, chunk: int = 4096, *,
                    init_canvas=None, pinned=None, force_step=None, force_pos=None, force_tok=None,
                    refusal_templates=None, n_first: int | None = None, argmax_draft: bool = False,
                    record_canvas: bool = False) -> dict:
    """Run `spec` on the oracle of `mix` for n trajectories (in chunks of `chunk`, one RNG stream).

    Start canvas `init_canvas` ([L] or [n, L], -1 = masked); `pinned` ([L] or [n, L] bool; default:
    every initially committed position, as toydlm's attacks pin all their tokens) is never re-masked
    nor selected. Forced tokens ([n] or scalars; step -1 = none): before step `force_step` the token
    `force_tok` is written at `force_pos` (overwriting whatever is there) and pinned (inject).

    Per-trajectory: `final` [n, L], `harm_count`, `harmful`, `valid` (positive probability under
    the mixture), `length` (first EOS, L if none; needs mix.eos), `refusal` (a template appears
    contiguously; needs refusal_templates), `eos_first_share` (share of EOS among the first
    n_first = L//2 commit events, a boundary step counted fractionally: toydlm's trace definition;
    NaN with no commits), `remask_events` (and per position `remask_count` [n, L]), `commit_step`
    [n, L] (step of the sampler's last commit of the position; -1 for start / forced tokens), per
    step [n, T + 1] (row 0 = the start canvas):
    `states` (C/P/H, and R with templates), `committed_harm_count`, `predicted_harm_count` (draft
    x0 = canvas before the step + proposals at positions masked before it; row 0 = the start),
    `committed_fraction`, optionally `predicted_harm_count_argmax` (draft with argmax proposals, lowest
    id on ties: the lab's `xhat_argmax`) and `canvas` [n, T + 1, L] (-1 = masked). Summary: asr, refusal_rate,
    valid_rate, mean_length (each with _se), eos_first_share (mean over rows with commits),
    remask_events_per_seq, hrr, frr.
    """
    L = mix.L
    blocks, _, bl = spec.plan(L)
    if n < 1:
        raise ValueError(f"n = {n} must be >= 1")
    start = _start_conditions(mix, n, init_canvas, pinned, force_step, force_pos, force_tok)
    rng = np.random.default_rng(seed)
    templates = None if refusal_templates is None else [tuple(int(v) for v in t) for t in refusal_templates]
    run = Run(mix, spec, Plan(blocks, spec.steps // spec.n_blocks(L), np.arange(L) // bl), Tables.of(mix),
              SkeletonSampler(mix, spec), step_rule(spec.name), L // 2 if n_first is None else int(n_first),
              argmax_draft, templates)
    rec = Records.empty(n, spec.steps, L, mix.K, argmax_draft, templates, record_canvas)
    for lo in range(0, n, chunk):
        run_chunk(run, rec, slice(lo, min(lo + chunk, n)), start, rng)
    return summarise(rec, mix.is_harm, mix.threshold, mix.eos, run.n_first)


def _start_conditions(mix: Mixture, n: int, init_canvas, pinned, force_step, force_pos,
                      force_tok) -> StartConditions:
    """Per-row start conditions, broadcast and checked (ValueError naming the argument)."""
    L, V = mix.L, mix.V
    init = _per_row(init_canvas, n, L, np.int64, -1, "init_canvas")
    if ((init < -1) | (init >= V)).any():
        raise ValueError(f"init_canvas holds ids outside -1..{V - 1}")
    pin0 = (init >= 0) if pinned is None else _per_row(pinned, n, L, bool, False, "pinned")
    if (pin0 & (init < 0)).any():
        raise ValueError("a pinned position is masked in init_canvas")
    fstep = _per_row(force_step, n, None, np.int64, -1, "force_step")
    fpos = _per_row(force_pos, n, None, np.int64, 0, "force_pos")
    ftok = _per_row(force_tok, n, None, np.int64, 0, "force_tok")
    if ((fstep >= 0) & ((fpos < 0) | (fpos >= L) | (ftok < 0) | (ftok >= V))).any():
        raise ValueError("force_pos / force_tok out of range")
    return StartConditions(init, pin0, fstep, fpos, ftok)


def _per_row(x, n: int, L: int | None, dtype, fill, name: str) -> np.ndarray:
    shape = (n,) if L is None else (n, L)
    if x is None:
        return np.full(shape, fill, dtype)
    a = np.asarray(x).astype(dtype)
    try:
        return np.broadcast_to(a, shape).copy()
    except ValueError:
        raise ValueError(f"{name} has shape {a.shape}; expected {shape} or broadcastable to it") from None
