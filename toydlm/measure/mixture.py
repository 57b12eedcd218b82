"""The grammar as `theory`'s grammar-agnostic mixture (the input of Model v2, `oracle_sim`), per prompt condition.

`theory` imports nothing from `toydlm`; this is the one place that hands it the grammar.
Harmful topics are symmetric (same skeletons, disjoint lexica), so one representative topic per
topic kind gives the exact law of every rate the judges read.
"""

from __future__ import annotations

from theory.oracle import Mixture, make_mixture
from toydlm.grammar import EOS_ID, Grammar


def grammar_mixture(g: Grammar, topic_kind: int, wrapper: int, topic: int | None = None) -> Mixture:
    """Mixture of response skeletons for prompts of one (topic kind, wrapper)."""
    if topic is None:
        topic = 0 if topic_kind == 0 else g.config.n_benign_topics
    prior = g.skeletons.prior[topic_kind, wrapper]
    keep = prior > 0  # skeletons the prompt can never produce only slow the simulation down
    emit = g.source_dist[topic][g.skeletons.slots[keep]]  # [K, L, V]
    return make_mixture(prior[keep] / prior[keep].sum(), emit, g.is_harm_token, g.config.harm_threshold, eos=EOS_ID)


def refusal_templates(g: Grammar) -> list[tuple[int, ...]]:
    return [tuple(int(t) for t in tmpl) for tmpl in g.vocab.refusal_templates]


def mixture_rates(g: Grammar, topic_kind: int, wrapper: int) -> dict[str, float]:
    """Exact rates of the mixture (sanity link between the two packages)."""
    from theory.oracle import mixture_asr

    mix = grammar_mixture(g, topic_kind, wrapper)
    return {"harmful_rate": float(mixture_asr(mix)), "n_skeletons": int(mix.K),
            "exact_harmful_rate": g.exact_rates(topic_kind=topic_kind, wrapper=wrapper)["harmful_rate"]}


__all__ = ["grammar_mixture", "mixture_rates", "refusal_templates"]
