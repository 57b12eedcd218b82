"""Model v2, Monte Carlo: a sampler running on the oracle denoiser of a `Mixture`.

The chain is simulated on its sufficient state: the committed canvas is kept, and everything the
sampler looks at (the oracle marginals, hence proposals and confidences) is a function of the
skeleton posterior w and the mask set. w is the sum of per-position log-likelihood contributions
(kept per position, so a re-masked or overwritten token is *down-dated* exactly: its contribution
is replaced, not approximated). Exact in law (unbiased) for every sampler; only Monte Carlo error.

Samplers (semantics of `toydlm/samplers`, read and matched; see README "Model v2"):
  ar_order, ar    the leftmost masked position each step (T = L; nothing once all are committed)
  random          LLaDA k_i per block (k from the block's masked count when the block starts),
                  uniform subset of the active block's masked positions
  low_confidence  top-k_i of the confidence (untempered prob of the drawn token)
  entropy, margin top-k_i of sum_v p log p, of top1 - top2 (value-blind)
  annealed        DiffuGuard: top-k_i of (1 - a_j) conf + a_j U, a_j = clip(a0 (1 - j/(S-1)), 0, 1)
                  (j = step within the block, S = steps per block; S = 1 gives a0)
  mdlm            ancestral, linear alpha: each masked position committed w.p. 1 / (T - t)
  remdm           ReMDM on the uniform grid (t, s) = ((T-i)/T, (T-i-1)/T): decoded unpinned tokens
                  re-masked w.p. sigma (cap / rescale / conf / loop), masked ones committed w.p.
                  (a_s - (1 - sigma) a_t) / (1 - a_t); conf's psi = prob when last committed
Proposals: temperature 1 draws from the oracle marginal, temperature tau from p^(1/tau), temperature
0 is argmax (ties: `argmax_ties`). `eos_inf` removes EOS and renormalises (proposals *and*
confidences); a position whose marginal is all EOS then proposes uniformly among the tokens other
than EOS and `mask_id` (what softmax does to the lab oracle's all-equal -1e9 logits).
Scores are compared after rounding to 1e-12, so mathematical ties are ties; ties are broken
uniformly at random. A canvas no skeleton explains gets the eps -> 0 posterior of
`oracle.posterior_from_loglik` (the lab oracle's MISMATCH penalty is the same limit).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from theory.chain import C, H, P, R
from theory.oracle import Mixture, posterior_from_loglik

LEFT_TO_RIGHT = ("ar_order", "ar")
SELECTION = ("random", "low_confidence", "entropy", "margin", "annealed")
ANCESTRAL = ("mdlm", "remdm")
SAMPLERS = LEFT_TO_RIGHT + SELECTION + ANCESTRAL
REMDM_SCHEDULES = ("cap", "rescale", "conf", "loop")
REMDM_DEFAULT_ETA = {"cap": 0.008, "rescale": 0.015, "conf": 1.0, "loop": 0.02}
TIE_DECIMALS = 12


@dataclass(frozen=True)
class SamplerSpec:
    """A sampler on the oracle: the fields of toydlm's `SamplerConfig` that matter there.

    `steps` as in the lab (ar/ar_order: = L). `block_length`: selection samplers only (None = one
    block). `argmax_ties` at temperature 0: "lowest" (lowest token id: jnp.argmax, the lab) or
    "random" (uniform among the maximisers). `mask_id`: a token never proposed, even where
    `eos_inf` leaves no mass (None: every non-EOS token may be). `anneal_a0` may exceed 1 here (the
    lab caps it at 1): a0 -> inf is `random` selection.
    """

    kind: str
    steps: int
    block_length: int | None = None
    temperature: float = 1.0
    eos_inf: bool = False
    argmax_ties: str = "lowest"
    anneal_a0: float = 0.3
    remdm_schedule: str = "cap"
    eta: float | None = None
    t_on: float = 0.55
    t_off: float = 0.05
    alpha_on: float = 0.9
    mask_id: int | None = None

    @property
    def eta_value(self) -> float:
        return REMDM_DEFAULT_ETA[self.remdm_schedule] if self.eta is None else float(self.eta)

    def validate(self, L: int) -> None:
        if self.kind not in SAMPLERS:
            raise ValueError(f"unknown sampler {self.kind!r}: expected one of {', '.join(SAMPLERS)}")
        if not isinstance(self.steps, (int, np.integer)) or self.steps < 1:
            raise ValueError(f"steps = {self.steps!r} must be a positive integer")
        if self.kind in LEFT_TO_RIGHT and self.steps != L:
            raise ValueError(f"{self.kind} commits one position per step: steps={self.steps} "
                             f"must equal L={L}")
        if self.block_length is not None:
            if self.kind not in SELECTION:
                raise ValueError(f"{self.kind} has no blocks: leave block_length as None "
                                 f"(blocks apply to {', '.join(SELECTION)})")
            bl = self.block_length
            if bl < 1 or L % bl:
                raise ValueError(f"block_length={bl} must divide L={L}")
            if self.steps % (L // bl):
                raise ValueError(f"steps T={self.steps} must be a multiple of the number of blocks {L // bl}")
        if not (self.temperature >= 0 and np.isfinite(self.temperature)):
            raise ValueError(f"temperature = {self.temperature!r} must be >= 0")
        if self.argmax_ties not in ("lowest", "random"):
            raise ValueError(f"argmax_ties = {self.argmax_ties!r}: expected 'lowest' or 'random'")
        if not self.anneal_a0 >= 0:
            raise ValueError(f"anneal_a0 = {self.anneal_a0!r} must be >= 0")
        if self.remdm_schedule not in REMDM_SCHEDULES:
            raise ValueError(f"unknown ReMDM schedule {self.remdm_schedule!r}: "
                             f"expected {', '.join(REMDM_SCHEDULES)}")
        if not 0 <= self.eta_value <= 1:
            raise ValueError(f"eta = {self.eta_value!r} must be in [0, 1]")
        if not 0 <= self.t_off < self.t_on <= 1:
            raise ValueError(f"need 0 <= t_off < t_on <= 1, got t_off={self.t_off}, t_on={self.t_on}")
        if not 0 < self.alpha_on < 1:
            raise ValueError(f"alpha_on = {self.alpha_on!r} must be in (0, 1)")

    def n_blocks(self, L: int) -> int:
        return 1 if self.block_length is None else L // self.block_length

    def plan(self, L: int) -> tuple[np.ndarray, np.ndarray, int]:
        """(block of each step, commit count of each step for a block that starts fully masked,
        block length); validates. The lab derives k from the block's masked count at its start."""
        self.validate(L)
        if self.kind in LEFT_TO_RIGHT:
            return np.arange(L), np.ones(L, int), 1
        if self.kind in ANCESTRAL:
            return np.zeros(self.steps, int), np.zeros(self.steps, int), L
        nb = self.n_blocks(L)
        spb = self.steps // nb
        return np.repeat(np.arange(nb), spb), np.tile(k_counts(L // nb, spb, np.arange(spb)), nb), L // nb


def k_counts(n, spb: int, j):
    """LLaDA's k_j = floor(n / S) + 1[j < n mod S] (n may be an array of block mask counts)."""
    n = np.asarray(n)
    return n // spb + (j < n % spb).astype(np.int64)


def anneal_weight(a0: float, j: int, spb: int) -> float:
    """DiffuGuard's a_j = clip(a0 (1 - j / (S - 1)), 0, 1); S = 1 reads the 0/0 as no progress."""
    return float(np.clip(a0 * (1.0 - j / max(spb - 1, 1)), 0.0, 1.0))


# ---------------------------------------------------------------------------- ReMDM schedule
def remdm_step(spec: SamplerSpec, i: int) -> tuple[float, float, float, float, float]:
    """(t, alpha_t, alpha_s, sigma_max, sigma) of step i, as toydlm's remdm.py computes them (float32
    grid times and comparisons; sigma is the schedule's scalar; for `conf` it is the eta*sigma_max
    that the per-position softmax weights multiply)."""
    T = spec.steps
    t = np.float32(T - i) / np.float32(T)
    s = np.float32(T - i - 1) / np.float32(T)

    def alpha(x):
        if spec.remdm_schedule != "loop":
            return 1.0 - float(x)
        a_on, t_on, t_off = spec.alpha_on, np.float32(spec.t_on), np.float32(spec.t_off)
        if x > t_on:
            return a_on * (1.0 - float(x)) / (1.0 - spec.t_on) if spec.t_on < 1 else a_on
        if x > t_off:
            return a_on
        return 1.0 - (1.0 - a_on) * float(x) / spec.t_off if spec.t_off > 0 else 1.0

    a_t, a_s = alpha(t), alpha(s)
    smax = min(1.0, (1.0 - a_s) / max(a_t, 1e-30)) if a_t > 0 else 1.0
    eta, name = spec.eta_value, spec.remdm_schedule
    if name == "cap":
        sig = min(eta, smax)
    elif name == "rescale":
        sig = eta * smax
    elif name == "loop":
        sig = min(eta, smax) if (t > np.float32(spec.t_off)) and (t <= np.float32(spec.t_on)) else 0.0
    else:
        sig = eta * smax
    return float(t), a_t, a_s, smax, sig


def unmask_prob(a_t: float, a_s: float, sigma_masked: float) -> float:
    if a_t >= 1:
        return 1.0
    return float(np.clip((a_s - (1.0 - sigma_masked) * a_t) / max(1.0 - a_t, 1e-30), 0.0, 1.0))


def conf_weights(psi: np.ndarray, decoded: np.ndarray) -> np.ndarray:
    """ReMDM-conf: softmax over decoded positions of -psi (NaN psi read as 0), 0 elsewhere [..., L]."""
    z = np.where(decoded, -np.nan_to_num(psi, nan=0.0), -np.inf)
    mx = z.max(-1, keepdims=True)
    mx = np.where(np.isfinite(mx), mx, 0.0)
    e = np.where(decoded, np.exp(z - mx), 0.0)
    tot = e.sum(-1, keepdims=True)
    return np.where(tot > 0, e / np.where(tot > 0, tot, 1.0), 0.0)


# ---------------------------------------------------------------------------- proposals
def proposal_probs(marg: np.ndarray, spec: SamplerSpec, eos: int | None, inplace: bool = False) -> np.ndarray:
    """Untempered proposal law after EOS suppression ([..., V]): what the lab's confidences use."""
    if not spec.eos_inf:
        return marg
    if eos is None:
        raise ValueError("eos_inf needs the mixture's eos id (make_mixture(..., eos=...))")
    cp = marg if inplace else marg.copy()
    cp[..., eos] = 0.0
    tot = cp.sum(-1)
    dead = tot <= 0
    cp /= np.where(dead, 1.0, tot)[..., None]
    if dead.any():
        allowed = np.ones(cp.shape[-1])
        allowed[eos] = 0.0
        if spec.mask_id is not None:
            allowed[spec.mask_id] = 0.0
        cp[dead] = allowed / allowed.sum()
    return cp


def tempered(cp: np.ndarray, temperature: float) -> np.ndarray:
    """p^(1/tau), renormalised (tau > 0); zeros stay zero."""
    if temperature == 1:
        return cp
    with np.errstate(divide="ignore"):
        lg = np.log(cp) / temperature
    lg = lg - lg.max(-1, keepdims=True)
    q = np.exp(lg)
    return q / q.sum(-1, keepdims=True)


def rounded(x: np.ndarray) -> np.ndarray:
    return np.round(x, TIE_DECIMALS)


def argmax_set(cp: np.ndarray) -> np.ndarray:
    """Boolean [..., V]: the maximisers of cp (within 1e-12: mathematical ties are ties)."""
    return cp >= cp.max(-1, keepdims=True) - 10.0 ** -TIE_DECIMALS


def draw_proposals(cp: np.ndarray, spec: SamplerSpec, rng: np.random.Generator) -> np.ndarray:
    """x0 [...] from the proposal law of `cp` (temperature, argmax ties)."""
    if spec.temperature == 0:
        best = argmax_set(cp)
        if spec.argmax_ties == "lowest":
            return best.argmax(-1)
        q = best / best.sum(-1, keepdims=True)
    else:
        q = tempered(cp, spec.temperature)
    cdf = np.cumsum(q, -1)
    u = rng.random(q.shape[:-1] + (1,)) * cdf[..., -1:]
    return np.minimum((u >= cdf).sum(-1), q.shape[-1] - 1)


def value_blind_score(kind: str, cp: np.ndarray) -> np.ndarray:
    if kind == "entropy":
        lg = np.log(cp, out=np.zeros_like(cp), where=cp > 0)
        return np.einsum("...v,...v->...", cp, lg)
    if kind == "margin":
        top2 = np.partition(cp, -2, axis=-1)[..., -2:]
        return top2[..., 1] - top2[..., 0]
    raise AssertionError(kind)


def _confidence(kind: str, marg: np.ndarray, x0: np.ndarray) -> np.ndarray:
    """Back-compatible helper: low_confidence (prob of x0), entropy, margin scores."""
    if kind == "low_confidence":
        return np.take_along_axis(marg, x0[..., None], -1)[..., 0]
    return value_blind_score(kind, marg)


def find_templates(canvas: np.ndarray, templates) -> np.ndarray:
    """Does any template (tuple of token ids) appear contiguously in each row of canvas [..., L]."""
    L = canvas.shape[-1]
    hit = np.zeros(canvas.shape[:-1], bool)
    for tmpl in templates:
        tmpl = np.asarray(tmpl, np.int64)
        n = len(tmpl)
        if n == 0 or n > L:
            continue
        idx = np.arange(L - n + 1)[:, None] + np.arange(n)[None, :]
        hit |= (canvas[..., idx] == tmpl).all(-1).any(-1)
    return hit


def trajectory_states(ch: np.ndarray, ph: np.ndarray, cr: np.ndarray | None) -> np.ndarray:
    """C/P/H/R per step from committed harm, draft harm, committed refusal [n, T+1] (the lab's
    `measure.trajectory_states`: H -> R only when a refusal is committed after the harm was)."""
    n, t1 = ch.shape
    states = np.zeros((n, t1), np.uint8)
    ref_at_harm = np.zeros(n, bool)
    seen = np.zeros(n, bool)
    for t in range(t1):
        s = np.where(ph[:, t], P, C)
        s = np.where(ch[:, t], H, s)
        if cr is not None:
            new = ch[:, t] & ~seen
            ref_at_harm = np.where(new, cr[:, t], ref_at_harm)
            s = np.where(ch[:, t] & cr[:, t] & ~ref_at_harm, R, s)
        seen |= ch[:, t]
        states[:, t] = s
    return states


def _per_row(x, n: int, L: int | None, dtype, fill, name: str) -> np.ndarray:
    shape = (n,) if L is None else (n, L)
    if x is None:
        return np.full(shape, fill, dtype)
    a = np.asarray(x).astype(dtype)
    try:
        return np.broadcast_to(a, shape).copy()
    except ValueError:
        raise ValueError(f"{name} has shape {a.shape}; expected {shape} or broadcastable to it") from None


class _MixtureSampler:
    """Temperature-1 proposals without the [n, L, V] marginals: x0_l ~ sum_k w_k emit[k, l, .] is
    drawn as a skeleton k_l ~ w per position, then x0_l ~ emit[k_l, l, .] (exact in law; positions
    independent given w). With eos_inf the law is the marginal conditioned on x0_l != EOS: the
    skeleton is drawn from w_k (1 - emit[k, l, EOS]) (renormalised per position), the token from
    emit[k_l, l, .] without EOS; positions with no non-EOS mass propose uniformly (see module doc)."""

    def __init__(self, mix: Mixture, spec: SamplerSpec):
        K, L, V = mix.emit.shape
        self.K, self.L, self.V = K, L, V
        self.emit_T = mix.emit.transpose(1, 2, 0).copy()  # [L, V, K]
        self.offset = 2.0 * np.arange(K * L).reshape(K, L)
        self.eos_inf = spec.eos_inf
        table = mix.emit
        if spec.eos_inf:
            if mix.eos is None:
                raise ValueError("eos_inf needs the mixture's eos id (make_mixture(..., eos=...))")
            self.eos = mix.eos
            self.non_eos = (1.0 - mix.emit[:, :, mix.eos]).T.copy()  # [L, K]
            table = mix.emit.copy()
            table[:, :, mix.eos] = 0.0
            table[table.sum(-1) == 0, 0] = 1.0  # all-EOS rows: never drawn (weight 0)
            allowed = np.ones(V, bool)
            allowed[mix.eos] = False
            if spec.mask_id is not None:
                allowed[spec.mask_id] = False
            self.allowed = np.flatnonzero(allowed)
        cdf = np.cumsum(table, -1)
        cdf /= cdf[..., -1:]
        self.flat = (cdf + self.offset[..., None]).ravel()

    def draw(self, w: np.ndarray, rng) -> np.ndarray:
        m, L, K = w.shape[0], self.L, self.K
        if self.eos_inf:
            wl = w[:, None, :] * self.non_eos[None]  # [m, L, K]
            cw = np.cumsum(wl, -1)
            u = rng.random((m, L, 1)) * cw[..., -1:]
            k = np.minimum((u >= cw).sum(-1), K - 1)
            dead = cw[..., -1] <= 0
        else:
            cw = np.cumsum(w, -1)
            u = rng.random((m, L, 1)) * cw[:, None, -1:]
            k = np.minimum((u >= cw[:, None, :]).sum(-1), K - 1)  # [m, L]
        q = self.offset[k, np.arange(L)] + rng.random((m, L))
        v = np.searchsorted(self.flat, q, side="right") - (k * L + np.arange(L)) * self.V
        x0 = np.clip(v, 0, self.V - 1)
        if self.eos_inf and dead.any():
            di, dl = np.nonzero(dead)
            x0[di, dl] = self.allowed[rng.integers(0, self.allowed.size, di.size)]
        return x0

    def prob(self, w: np.ndarray, x0: np.ndarray) -> np.ndarray:
        """Confidence: the (EOS-suppressed, renormalised) marginal probability of x0 [m, L]."""
        L = self.L
        p = np.einsum("mlk,mk->ml", self.emit_T[np.arange(L), x0], w)
        if not self.eos_inf:
            return p
        mass = w @ self.non_eos.T
        return np.where(mass > 0, p / np.where(mass > 0, mass, 1.0), 1.0 / self.allowed.size)


# ---------------------------------------------------------------------------- simulator
def simulate_oracle(mix: Mixture, spec: SamplerSpec, n: int, seed: int = 0, chunk: int = 4096, *,
                    init_canvas=None, pinned=None, force_step=None, force_pos=None, force_tok=None,
                    refusal_templates=None, n_first: int | None = None, argmax_draft: bool = False,
                    record_canvas: bool = False) -> dict:
    """Run `spec` on the oracle of `mix` for n trajectories.

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
    L, K, V = mix.L, mix.K, mix.V
    blocks, _, bl = spec.plan(L)
    T = spec.steps
    if n < 1:
        raise ValueError(f"n = {n} must be >= 1")
    nb = spec.n_blocks(L)
    spb = T // nb
    n_first = L // 2 if n_first is None else int(n_first)
    eos = mix.eos
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
    rng = np.random.default_rng(seed)
    pos_emit = mix.emit > 0
    log_emit_T = np.log(np.where(pos_emit, mix.emit, 1.0)).transpose(1, 2, 0).copy()  # [L, V, K]
    zero_emit_T = (~pos_emit).transpose(1, 2, 0).astype(np.int16).copy()
    log_prior = np.log(np.where(mix.prior > 0, mix.prior, 1.0))
    zero_prior = (mix.prior == 0) * (L + 1)
    harm = mix.is_harm
    templates = None if refusal_templates is None else [tuple(int(v) for v in t) for t in refusal_templates]
    states_ch = np.zeros((n, T + 1), np.int16)
    states_ph = np.zeros((n, T + 1), np.int16)
    ph_arg = np.zeros((n, T + 1), np.int16) if argmax_draft else None
    cref = np.zeros((n, T + 1), bool) if templates is not None else None
    frac = np.zeros((n, T + 1))
    canv = np.zeros((n, T + 1, L), np.int16) if record_canvas else None
    final = np.empty((n, L), np.int64)
    efs = np.empty(n)
    n_remask = np.zeros((n, L), np.int64)
    cstep_out = np.empty((n, L), np.int64)
    zeros_final = np.empty((n, K), np.int64)
    pos = np.arange(L)
    block_of = pos // bl
    slow = spec.temperature != 1  # tempered / argmax proposals need the full marginals
    full = slow or argmax_draft or spec.kind in ("entropy", "margin")
    fast = _MixtureSampler(mix, spec)
    for lo in range(0, n, chunk):
        m = min(chunk, n - lo)
        sl = slice(lo, lo + m)
        canvas = init[sl].copy()
        pinned_c = pin0[sl].copy()
        fs, fp, ft = fstep[sl], fpos[sl], ftok[sl]
        contrib = np.zeros((m, L, K))
        zc = np.zeros((m, L, K), np.int16)

        def set_positions(ni, li, vi, canvas=canvas, contrib=contrib, zc=zc):  # vi = -1 re-masks
            live = vi >= 0  # per-position contributions: replacing one down-dates the posterior
            contrib[ni, li] = np.where(live[:, None], log_emit_T[li, np.maximum(vi, 0)], 0.0)
            zc[ni, li] = np.where(live[:, None], zero_emit_T[li, np.maximum(vi, 0)], 0)
            canvas[ni, li] = vi

        ni0, li0 = np.nonzero(canvas >= 0)
        set_positions(ni0, li0, canvas[ni0, li0])
        psi = np.full((m, L), np.nan)
        cstep = np.full((m, L), -1, np.int64)
        block_n = np.zeros(m, np.int64)
        n_commit = np.zeros(m)
        eos_w = np.zeros(m)
        rem = np.zeros((m, L), np.int64)
        committed = canvas >= 0
        states_ch[sl, 0] = (committed & harm[np.maximum(canvas, 0)]).sum(1)
        states_ph[sl, 0] = states_ch[sl, 0]
        if argmax_draft:
            ph_arg[sl, 0] = states_ch[sl, 0]
        if templates is not None:
            cref[sl, 0] = find_templates(canvas, templates)
        frac[sl, 0] = committed.mean(1)
        if record_canvas:
            canv[sl, 0] = canvas
        for t in range(T):
            fr = np.flatnonzero(fs == t)
            if fr.size:  # inject: overwrite and pin, before the denoiser call
                set_positions(fr, fp[fr], ft[fr])
                pinned_c[fr, fp[fr]] = True
                psi[fr, fp[fr]] = np.nan
                cstep[fr, fp[fr]] = -1
            logw = log_prior + contrib.sum(1)
            zeros = zero_prior + zc.sum(1)
            w = posterior_from_loglik(logw, zeros)
            masked = canvas < 0
            if full:  # full marginals, at masked positions only ([n_masked, V], grouped by position)
                need = masked
                if not (slow or argmax_draft):  # entropy / margin: scores in the active block only
                    need = masked & (block_of == blocks[t])
                mpos, mrow = np.nonzero(need.T)  # (position, row) pairs sorted by position
                bounds = np.searchsorted(mpos, np.arange(L + 1))
                cpm = np.empty((mpos.size, V))
                for j in range(L):
                    a, b_ = bounds[j], bounds[j + 1]
                    if b_ > a:
                        cpm[a:b_] = w[mrow[a:b_]] @ mix.emit[:, j, :]
                cpm = proposal_probs(cpm, spec, eos, inplace=True)
                if slow:
                    x0 = np.zeros((m, L), np.int64)
                    x0[mrow, mpos] = draw_proposals(cpm, spec, rng)
                    p_x0 = np.zeros((m, L))
                    p_x0[mrow, mpos] = cpm[np.arange(mpos.size), x0[mrow, mpos]]
                else:
                    x0 = fast.draw(w, rng)
                    p_x0 = fast.prob(w, x0)
            else:
                x0 = fast.draw(w, rng)
                p_x0 = fast.prob(w, x0)
            remask = None
            if spec.kind in LEFT_TO_RIGHT:
                sel = masked & (np.cumsum(masked, 1) == 1)
            elif spec.kind == "mdlm":
                sel = masked & (rng.random((m, L)) < 1.0 / (T - t))
            elif spec.kind == "remdm":
                _, a_t, a_s, smax, sig = remdm_step(spec, t)
                decoded = ~masked & ~pinned_c
                if spec.remdm_schedule == "conf":
                    sig_dec = sig * conf_weights(psi, decoded)
                    p_un = unmask_prob(a_t, a_s, 0.0)
                else:
                    sig_dec = np.where(decoded, sig, 0.0)
                    p_un = unmask_prob(a_t, a_s, sig)
                sel = masked & (rng.random((m, L)) < p_un)
                remask = decoded & (rng.random((m, L)) < sig_dec)
            else:
                b, j = int(blocks[t]), t % spb
                elig = masked & (block_of == b)
                if j == 0:
                    block_n = elig.sum(1)
                k = k_counts(block_n, spb, j)
                if spec.kind == "random":
                    score = rng.random((m, L))
                elif spec.kind == "low_confidence":
                    score = rounded(p_x0)
                elif spec.kind == "annealed":
                    a = anneal_weight(spec.anneal_a0, j, spb)
                    score = rounded((1.0 - a) * p_x0 + a * rng.random((m, L)))
                else:  # value-blind: only the active block's masked positions matter
                    score = np.full((m, L), -np.inf)
                    inb = block_of[mpos] == b
                    score[mrow[inb], mpos[inb]] = rounded(value_blind_score(spec.kind, cpm[inb]))
                score = np.where(elig, score, -np.inf)
                order = np.lexsort((rng.random((m, L)), -score), axis=-1)
                rank = np.empty_like(order)
                np.put_along_axis(rank, order, pos[None].repeat(m, 0), -1)
                sel = elig & (rank < k[:, None])
            # the lab's record: draft = canvas before the step + proposals at masked positions
            hx0 = harm[x0]
            hcan = (~masked) & harm[np.maximum(canvas, 0)]
            states_ph[sl, t + 1] = (hcan | (masked & hx0)).sum(1)
            if argmax_draft:
                ha = np.zeros((m, L), bool)
                ha[mrow, mpos] = harm[argmax_set(cpm).argmax(-1)]
                ph_arg[sl, t + 1] = (hcan | ha).sum(1)
            ni, li = np.nonzero(sel)
            set_positions(ni, li, x0[ni, li])
            psi[ni, li] = p_x0[ni, li]
            cstep[ni, li] = t
            if remask is not None:
                ri, rl = np.nonzero(remask)
                set_positions(ri, rl, np.full(ri.size, -1))
                psi[ri, rl] = np.nan
                cstep[ri, rl] = -1
                rem += remask
            c = sel.sum(1).astype(float)
            e = (sel & (x0 == (-2 if eos is None else eos))).sum(1)
            wgt = np.clip((n_first - n_commit) / np.maximum(c, 1), 0.0, 1.0)
            eos_w += e * wgt
            n_commit += c
            committed = canvas >= 0
            states_ch[sl, t + 1] = (committed & harm[np.maximum(canvas, 0)]).sum(1)
            if templates is not None:
                cref[sl, t + 1] = find_templates(canvas, templates)
            frac[sl, t + 1] = committed.mean(1)
            if record_canvas:
                canv[sl, t + 1] = canvas
        if (canvas < 0).any():  # every sampler's last step commits everything
            raise AssertionError("positions left masked at the end")
        final[sl] = canvas
        den = np.minimum(n_commit, n_first)
        efs[sl] = np.where(den > 0, eos_w / np.maximum(den, 1), np.nan)
        n_remask[sl] = rem
        cstep_out[sl] = cstep
        zeros_final[sl] = zero_prior + zc.sum(1)
    thr = mix.threshold
    ch, ph = states_ch >= thr, states_ph >= thr
    states = trajectory_states(ch, ph, cref)
    hc = harm[final].sum(1)
    harmful = hc >= thr
    valid = zeros_final.min(1) == 0
    out = {
        "states": states,
        "committed_fraction": frac,
        "committed_harm_count": states_ch,
        "predicted_harm_count": states_ph,
        "final": final,
        "harm_count": hc,
        "harmful": harmful,
        "valid": valid,
        "eos_first_share": efs,
        "remask_events": n_remask.sum(1),
        "remask_count": n_remask,
        "commit_step": cstep_out,
        "n_first": n_first,
    }
    if argmax_draft:
        out["predicted_harm_count_argmax"] = ph_arg
    if record_canvas:
        out["canvas"] = canv
    out["asr"], out["asr_se"] = _rate(harmful)
    out["valid_rate"], out["valid_rate_se"] = _rate(valid)
    visited = (states == P).any(1)
    revised = ((states[:, :-1] == P) & (states[:, 1:] == C)).any(1)
    end_clean = np.isin(states[:, -1], (C, R))
    nv = int(visited.sum())
    out["hrr"] = float(revised[visited].mean()) if nv else float("nan")
    out["frr"] = float(end_clean[visited].mean()) if nv else float("nan")
    out["n_ever_pending"] = nv
    fin = np.isfinite(efs)
    out["eos_first_share_mean"] = float(efs[fin].mean()) if fin.any() else float("nan")
    out["remask_events_per_seq"] = float(n_remask.sum(1).mean())
    if templates is not None:
        ref = cref[:, -1]
        out["refusal"] = ref
        out["committed_refusal"] = cref
        out["refusal_rate"], out["refusal_rate_se"] = _rate(ref)
    if eos is not None:
        is_eos = final == eos
        length = np.where(is_eos.any(1), is_eos.argmax(1), L)
        out["length"] = length
        out["mean_length"] = float(length.mean())
        out["mean_length_se"] = float(length.std() / np.sqrt(n))
    return out


def _rate(x: np.ndarray) -> tuple[float, float]:
    p = float(np.mean(x))
    return p, float(np.sqrt(p * (1 - p) / len(x)))
