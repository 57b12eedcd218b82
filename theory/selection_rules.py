"""Selection rules: which masked positions a top-k sampler commits at a step (Model v2).

A selection sampler (LLaDA / Dream style) commits, at step j of a block, the k_j eligible masked
positions (those of the active block) with the highest score; k_j comes from
`schedules.llada_counts`. A rule is only its score, so the Monte Carlo (`oracle_sim`) and the exact
enumeration (`oracle_exact`) read the same definitions. Scores are rounded to 1e-12 so that
mathematical ties are ties, and ties are broken uniformly at random.

Built-in rules: `random` (uniform noise), `low_confidence` (probability of the drawn token),
`entropy` (sum_v p log p), `margin` (top1 - top2), `annealed` (DiffuGuard: (1 - a_j) conf + a_j U).
`register_selection_rule` adds one by name. Re-masking (ReMDM) is not selection: see `theory.remdm`.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from theory.sampler_spec import SamplerSpec

TIE_DECIMALS = 12
SetLaw = list[tuple[tuple[int, ...], float]]  # [(committed positions, probability)]


@dataclass(frozen=True)
class ScoreInputs:
    """What a rule may read at the positions it scores (arrays of one shape; `probs` adds [V]).

    `probs` (the proposal law), `confidence` (untempered probability of the drawn token) and
    `uniform` (iid U(0, 1) noise) are None unless the rule was registered as reading them.
    """

    position: np.ndarray
    step_in_block: int
    steps_per_block: int
    spec: SamplerSpec
    probs: np.ndarray | None = None
    confidence: np.ndarray | None = None
    uniform: np.ndarray | None = None


@dataclass(frozen=True)
class SelectionRule:
    """A top-k rule: `score(inputs)` per position, higher committed first.

    A rule that reads `uniform` noise is random given the canvas, so the exact enumeration needs
    its `exact_law(inputs, k)`: the law of the committed set of the candidates `inputs.position`.
    """

    name: str
    score: Callable[[ScoreInputs], np.ndarray]
    reads_probs: bool = False
    reads_confidence: bool = False
    reads_uniform: bool = False
    exact_law: Callable[[ScoreInputs, int], SetLaw] | None = None


def rounded(x: np.ndarray) -> np.ndarray:
    """Scores rounded to 1e-12: mathematical ties become exact ties."""
    return np.round(x, TIE_DECIMALS)


def anneal_weight(a0: float, j: int, spb: int) -> float:
    """DiffuGuard's a_j = clip(a0 (1 - j / (S - 1)), 0, 1); S = 1 reads the 0/0 as no progress."""
    return float(np.clip(a0 * (1.0 - j / max(spb - 1, 1)), 0.0, 1.0))


# ---------------------------------------------------------------------------- built-in scores
def random_score(x: ScoreInputs) -> np.ndarray:
    """LLaDA `random`: a uniform subset (continuous noise has no ties, so no rounding)."""
    return x.uniform


def low_confidence_score(x: ScoreInputs) -> np.ndarray:
    """LLaDA `low_confidence`: the probability of the drawn token (mode-seeking, value-aware)."""
    return rounded(x.confidence)


def entropy_score(x: ScoreInputs) -> np.ndarray:
    """Dream `entropy`: sum_v p log p of the proposal law (value-blind)."""
    lg = np.log(x.probs, out=np.zeros_like(x.probs), where=x.probs > 0)
    return rounded(np.einsum("...v,...v->...", x.probs, lg))


def margin_score(x: ScoreInputs) -> np.ndarray:
    """Dream `margin`: top1 - top2 of the proposal law (value-blind)."""
    top2 = np.partition(x.probs, -2, axis=-1)[..., -2:]
    return rounded(top2[..., 1] - top2[..., 0])


def annealed_score(x: ScoreInputs) -> np.ndarray:
    """DiffuGuard: (1 - a_j) confidence + a_j U, a_j annealed from a0 to 0 within the block."""
    a = anneal_weight(x.spec.anneal_a0, x.step_in_block, x.steps_per_block)
    return rounded((1.0 - a) * x.confidence + a * x.uniform)


def _random_law(x: ScoreInputs, k: int) -> SetLaw:
    return uniform_k_subsets([int(p) for p in x.position], k)


def _annealed_law(x: ScoreInputs, k: int) -> SetLaw:
    a = anneal_weight(x.spec.anneal_a0, x.step_in_block, x.steps_per_block)
    conf = {int(p): float(c) for p, c in zip(x.position, rounded(x.confidence), strict=True)}
    return annealed_top_k_sets(conf, k, a)


SELECTION_RULES: dict[str, SelectionRule] = {
    r.name: r for r in (
        SelectionRule("random", random_score, reads_uniform=True, exact_law=_random_law),
        SelectionRule("low_confidence", low_confidence_score, reads_confidence=True),
        SelectionRule("entropy", entropy_score, reads_probs=True),
        SelectionRule("margin", margin_score, reads_probs=True),
        SelectionRule("annealed", annealed_score, reads_confidence=True, reads_uniform=True,
                      exact_law=_annealed_law),
    )
}
BUILTIN_SELECTION = tuple(SELECTION_RULES)
_RESERVED = ("ar_order", "ar", "mdlm", "remdm")  # sampler_spec's LEFT_TO_RIGHT + ANCESTRAL: no score


def register_selection_rule(name: str, score: Callable[[ScoreInputs], np.ndarray], *,
                            reads_probs: bool = False, reads_confidence: bool = False,
                            reads_uniform: bool = False,
                            exact_law: Callable[[ScoreInputs, int], SetLaw] | None = None) -> SelectionRule:
    """Make `SamplerSpec(name, ...)` a top-k sampler that commits the positions of highest `score`.

    `score(inputs)` returns one score per position, elementwise over `inputs.position`'s shape
    (e.g. `lambda x: x.position` commits the rightmost first); it is rounded to 1e-12 here. Declare
    what it reads (`reads_probs`, `reads_confidence`, `reads_uniform`); a rule reading noise needs
    `exact_law` for `oracle_exact`. Registering a name again replaces it; built-in names raise.
    """
    if name in BUILTIN_SELECTION or name in _RESERVED:
        raise ValueError(f"{name!r} is a built-in sampler: choose another name")

    def rounded_score(x: ScoreInputs) -> np.ndarray:
        return rounded(score(x))

    rule = SelectionRule(name, rounded_score, reads_probs=reads_probs, reads_confidence=reads_confidence,
                         reads_uniform=reads_uniform, exact_law=exact_law)
    SELECTION_RULES[name] = rule
    return rule


# ---------------------------------------------------------------------------- Monte Carlo
def top_k_mask(score: np.ndarray, eligible: np.ndarray, k: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Boolean [m, L]: the k[i] eligible positions of highest score per row, ties uniformly at random."""
    m, L = score.shape
    score = np.where(eligible, score, -np.inf)
    order = np.lexsort((rng.random((m, L)), -score), axis=-1)
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(L)[None].repeat(m, 0), -1)
    return eligible & (rank < k[:, None])


# ---------------------------------------------------------------------------- exact laws
def top_k_sets(score: dict[int, float], k: int) -> SetLaw:
    """Law of the top-k subset of the candidates `score` keys, ties at the boundary broken uniformly."""
    cand = list(score)
    if k >= len(cand):
        return [(tuple(sorted(cand)), 1.0)]
    if k <= 0:
        return [((), 1.0)]
    cut = sorted(score.values(), reverse=True)[k - 1]
    above = [c for c in cand if score[c] > cut]
    tied = [c for c in cand if score[c] == cut]
    combos = list(itertools.combinations(tied, k - len(above)))
    return [(tuple(sorted(above + list(c))), 1.0 / len(combos)) for c in combos]


def uniform_k_subsets(cand: list[int], k: int) -> SetLaw:
    """Law of a uniformly random k-subset of `cand` (all of it when k >= len(cand))."""
    if k >= len(cand):
        return [(tuple(sorted(cand)), 1.0)]
    combos = list(itertools.combinations(sorted(cand), max(k, 0)))
    return [(c, 1.0 / len(combos)) for c in combos]


_GL_X, _GL_W = np.polynomial.legendre.leggauss(12)


def annealed_top_k_sets(conf: dict[int, float], k: int, a: float) -> SetLaw:
    """Law of the top-k set of positions by (1 - a) conf_l + a U_l (U iid uniform(0, 1)).

    A 1-D integral of a piecewise polynomial (breakpoints (1 - a) c_l and (1 - a) c_l + a),
    exact by Gauss-Legendre quadrature on each piece.
    """
    cand = sorted(conf)
    if k >= len(cand) or k <= 0:
        return uniform_k_subsets(cand, k)
    if a <= 0:
        return top_k_sets({c: conf[c] for c in cand}, k)
    if a >= 1:
        return uniform_k_subsets(cand, k)
    b = {c: (1 - a) * conf[c] for c in cand}
    knots = sorted({b[c] for c in cand} | {b[c] + a for c in cand})
    return [(tuple(S), _p_top_set(S, cand, b, a, knots)) for S in itertools.combinations(cand, k)]


def _p_top_set(S: tuple[int, ...], cand: list[int], b: dict[int, float], a: float, knots: list[float]) -> float:
    """P(every member of S beats every other candidate): integral over the best outsider's value x."""
    rest = [c for c in cand if c not in S]

    def F(c, x):
        return np.clip((x - b[c]) / a, 0.0, 1.0)

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
    return total


def exact_set_law(rule: SelectionRule, x: ScoreInputs, k: int) -> SetLaw:
    """Exact law of the committed set among the candidates `x.position` (ascending)."""
    if rule.exact_law is not None:
        return rule.exact_law(x, k)
    if rule.reads_uniform:
        raise ValueError(f"selection rule {rule.name!r} reads noise but has no exact_law")
    score = rule.score(x)
    return top_k_sets({int(p): s for p, s in zip(x.position, score, strict=True)}, k)
