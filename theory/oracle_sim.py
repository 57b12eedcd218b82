"""Model v2, Monte Carlo: a sampler running on the oracle denoiser of a `Mixture`.

The chain is simulated on its sufficient state: the committed canvas is kept, but everything the
sampler looks at (the oracle marginals, hence proposals and confidences) is a function of the
skeleton posterior w (log-likelihood vector [K]) and the mask set, updated in O(K) per commit.
This is exact in law (unbiased), for every sampler; its only error is Monte Carlo error.

Samplers (all temperature 1, proposals x0 drawn from the oracle marginals at every masked position):
  ar_order        position t committed at step t (T = L)
  random          LLaDA counts k_i per block, uniform subset of the active block's masked positions
  mdlm            ancestral, linear alpha: each masked position committed w.p. 1 / (T - t + 1)
  low_confidence  LLaDA: top-k_i of p(x0_l) (prob of the *drawn* token) in the active block
  entropy         top-k_i of sum_v p log p (Dream `entropy`);  margin: top-k_i of top1 - top2
Ties in a selection score are broken uniformly at random. A canvas no skeleton explains (parallel
commits mixing modes) gets the eps -> 0 posterior of `oracle.posterior_from_loglik`.
Per step, the v1 state is read off as in a trace: H if committed harm >= threshold, P if committed
harm plus harm in x0 at still-masked positions >= threshold, C otherwise (no R: no refusal labels).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from theory.chain import C, H, P
from theory.oracle import Mixture, posterior_from_loglik
from theory.schedules import block_plan

SAMPLERS = ("ar_order", "random", "mdlm", "low_confidence", "entropy", "margin")


@dataclass(frozen=True)
class SamplerSpec:
    """Which sampler, how many steps, and LLaDA block length (None = one block)."""

    kind: str
    steps: int
    block_length: int | None = None

    def plan(self, L: int) -> tuple[np.ndarray, np.ndarray, int]:
        """(block of each step, commit count of each step, block length); validates."""
        if self.kind not in SAMPLERS:
            raise ValueError(f"unknown sampler {self.kind!r}: expected one of {', '.join(SAMPLERS)}")
        if self.kind == "ar_order":
            if self.steps != L:
                raise ValueError(
                    f"ar_order commits one position per step: steps={self.steps} must equal L={L}"
                )
            return np.arange(L), np.ones(L, int), 1
        if self.kind == "mdlm":
            if self.block_length not in (None, L):
                raise ValueError("mdlm has no blocks: leave block_length as None")
            if self.steps < 1:
                raise ValueError(f"steps = {self.steps} must be >= 1")
            return np.zeros(self.steps, int), np.zeros(self.steps, int), L
        blocks, k = block_plan(L, self.steps, self.block_length)
        return blocks, k, L if self.block_length is None else self.block_length


def _confidence(kind: str, marg: np.ndarray, x0: np.ndarray) -> np.ndarray:
    if kind == "low_confidence":
        return np.take_along_axis(marg, x0[..., None], -1)[..., 0]
    if kind == "entropy":
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(marg > 0, marg * np.log(marg), 0.0).sum(-1)
    if kind == "margin":
        top2 = np.partition(marg, -2, axis=-1)[..., -2:]
        return top2[..., 1] - top2[..., 0]
    raise AssertionError(kind)


def simulate_oracle(mix: Mixture, spec: SamplerSpec, n: int, seed: int = 0, chunk: int = 4096) -> dict:
    """Run `spec` on the oracle of `mix` for n trajectories.

    Returns asr, asr_se, hrr, frr (from the read-off v1 states), states [n, T + 1] (uint8),
    committed_fraction [n, T + 1], final canvases [n, L], harm_count [n], and mean_length (first EOS
    position, if mix.eos is set).
    """
    L, K, V = mix.L, mix.K, mix.V
    blocks, counts, bl = spec.plan(L)
    T = spec.steps
    rng = np.random.default_rng(seed)
    pos_emit = mix.emit > 0
    log_emit = np.log(np.where(pos_emit, mix.emit, 1.0))  # [K, L, V], zeros counted apart
    zero_emit = (~pos_emit).astype(np.int64)
    log_prior = np.log(np.where(mix.prior > 0, mix.prior, 1.0))
    zero_prior = (mix.prior == 0) * (L + 1)
    emit_flat = mix.emit.reshape(K, L * V)
    harm = mix.is_harm
    states = np.zeros((n, T + 1), np.uint8)
    frac = np.zeros((n, T + 1))
    final = np.empty((n, L), np.int64)
    pos = np.arange(L)
    for lo in range(0, n, chunk):
        m = min(chunk, n - lo)
        rows = np.arange(m)
        canvas = np.full((m, L), -1, np.int64)
        logw = np.broadcast_to(log_prior, (m, K)).copy()
        zeros = np.broadcast_to(zero_prior, (m, K)).copy()
        for t in range(T):
            w = posterior_from_loglik(logw, zeros)
            marg = (w @ emit_flat).reshape(m, L, V)
            cdf = np.cumsum(marg, -1)
            u = rng.random((m, L, 1)) * cdf[..., -1:]
            x0 = np.minimum((u >= cdf).sum(-1), V - 1)
            masked = canvas < 0
            if spec.kind == "ar_order":
                sel = np.zeros((m, L), bool)
                sel[:, t] = True
            elif spec.kind == "mdlm":
                sel = masked & (rng.random((m, L)) < 1.0 / (T - t))
            else:
                b = blocks[t]
                elig = masked & (pos >= b * bl) & (pos < (b + 1) * bl)
                if spec.kind == "random":
                    score = rng.random((m, L))
                else:
                    score = _confidence(spec.kind, marg, x0)
                score = np.where(elig, score, -np.inf)
                order = np.lexsort((rng.random((m, L)), -score), axis=-1)[:, : counts[t]]
                sel = np.zeros((m, L), bool)
                sel[rows[:, None], order] = True
                sel &= elig
            ni, li = np.nonzero(sel)
            vi = x0[ni, li]
            canvas[ni, li] = vi
            np.add.at(logw, ni, log_emit[:, li, vi].T)
            np.add.at(zeros, ni, zero_emit[:, li, vi].T)
            committed = canvas >= 0
            h_comm = (committed & harm[np.maximum(canvas, 0)]).sum(1)
            h_pend = (~committed & harm[x0]).sum(1)
            st = np.full(m, C, np.uint8)
            st[h_comm + h_pend >= mix.threshold] = P
            st[h_comm >= mix.threshold] = H
            states[lo:lo + m, t + 1] = st
            frac[lo:lo + m, t + 1] = committed.mean(1)
        if (canvas < 0).any():  # mdlm's last step commits everything, so this is a safety net
            raise AssertionError("positions left masked at the end")
        final[lo:lo + m] = canvas
    hc = harm[final].sum(1)
    harmful = hc >= mix.threshold
    asr = harmful.mean()
    visited = (states == P).any(1)
    revised = ((states[:, :-1] == P) & (states[:, 1:] == C)).any(1)
    end_clean = states[:, -1] == C
    nv = visited.sum()
    out = {
        "asr": float(asr),
        "asr_se": float(np.sqrt(asr * (1 - asr) / n)),
        "hrr": float(revised[visited].mean()) if nv else float("nan"),
        "frr": float(end_clean[visited].mean()) if nv else float("nan"),
        "states": states,
        "committed_fraction": frac,
        "final": final,
        "harm_count": hc,
    }
    if mix.eos is not None:
        is_eos = final == mix.eos
        out["mean_length"] = float(np.where(is_eos.any(1), is_eos.argmax(1), L).mean())
    return out
