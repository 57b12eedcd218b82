"""Selection rules: which masked positions a top-k sampler commits at a step, decided by a score.

A selection sampler (LLaDA / Dream style) commits, at step j of a block, the k_j eligible masked
positions (those of the active block) with the highest score; how many (k_j) comes from the
shared schedule `config.k_at`, so a rule is only its score function. The built-in rules are
below (`BUILTIN_RULES`); `toydlm.samplers.register_selection_rule` adds one under a new sampler
name. Re-masking (putting a committed token back, only `remdm`) is not selection: see `remdm.py`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

if TYPE_CHECKING:
    from toydlm.samplers.config import SamplerConfig


class ScoreInputs(NamedTuple):
    """What a score function may read, for one row of L response positions (float32).

    Scores are compared only among eligible positions (masked and in the active block), so a
    rule need not mask anything itself.
    """

    position: np.ndarray  # [L] int32 response position 0 .. L-1
    confidence: jax.Array  # [L] probability of the drawn proposal under the untempered softmax
    probs: jax.Array  # [L, V] untempered proposal distribution (mask id, and with eos_inf EOS, at 0)
    uniform: jax.Array  # [L] keyed U(0, 1) noise of this row and step (not the tie-break noise)
    step_in_block: jax.Array  # int32 scalar: the step j within the current block
    steps_per_block: int
    cfg: SamplerConfig


ScoreFn = Callable[[ScoreInputs], jax.Array]  # [L] scores; the highest are committed first


def anneal_weight(a0: float, i, steps: int):
    """DiffuGuard's stochastic-annealing weight `a_i = clip(a0 (1 - i / (S - 1)), 0, 1)`.

    `i` is the step within the current block and `S` the steps per block; with S = 1 the
    weight stays a0 (the formula's 0/0 is read as "no annealing progress").
    """
    frac = i / max(steps - 1, 1)
    return jnp.clip(a0 * (1.0 - frac), 0.0, 1.0)


def entropy_score(p_LV: jax.Array) -> jax.Array:
    """Negative predictive entropy `sum p log p` (higher = more certain); value-independent."""
    return jnp.sum(jnp.where(p_LV > 0, p_LV * jnp.log(jnp.where(p_LV > 0, p_LV, 1.0)), 0.0), axis=-1)


def margin_score(p_LV: jax.Array) -> jax.Array:
    """Top-1 minus top-2 probability (Dream's `topk_margin`, Kim et al. 2502.06768)."""
    top2 = jax.lax.top_k(p_LV, 2)[0]
    return top2[..., 0] - top2[..., 1]


def _annealed(x: ScoreInputs) -> jax.Array:
    """DiffuGuard: blend confidence with noise, the noise weight annealed to 0 within the block."""
    a = anneal_weight(x.cfg.anneal_a0, x.step_in_block, x.steps_per_block)
    return (1.0 - a) * x.confidence + a * x.uniform


BUILTIN_RULES: dict[str, ScoreFn] = {
    "low_confidence": lambda x: x.confidence,  # LLaDA: the most probable proposals first
    "random": lambda x: x.uniform,  # LLaDA: a uniformly random subset
    "margin": lambda x: margin_score(x.probs),  # Dream `topk_margin`
    "entropy": lambda x: entropy_score(x.probs),  # Dream `entropy`
    "annealed": _annealed,  # DiffuGuard's stochastic annealing
}


def top_k_mask(score_L: jax.Array, eligible_L: jax.Array, k, tie_L: jax.Array,
               last_L: jax.Array | None = None) -> jax.Array:
    """The k highest-scoring eligible positions; exact ties broken by keyed uniforms `tie_L`.

    Never by position: an argsort that resolves ties to the left-most index silently turns
    confidence decoding into left-to-right decoding (Dream#72). Positions flagged in `last_L`
    (the EOS-last control) rank below every other eligible one, by score among themselves.
    """
    L = score_L.shape[0]
    primary = jnp.where(eligible_L, -score_L, jnp.inf)  # ascending sort = descending score
    keys = (tie_L, primary)
    if last_L is not None:
        keys = (*keys, jnp.where(eligible_L, last_L.astype(jnp.int32), 2))
    order = jnp.lexsort(keys)
    rank = jnp.zeros(L, jnp.int32).at[order].set(jnp.arange(L, dtype=jnp.int32))
    return eligible_L & (rank < k)
