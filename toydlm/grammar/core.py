"""The grammar object: vocabulary, skeletons, vectorised sampling and exact rates."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from toydlm.errors import UserError
from toydlm.grammar.config import GrammarConfig
from toydlm.grammar.skeletons import COMPLY, LATE, REFUSE, Skeletons, build_skeletons, source_tables
from toydlm.grammar.vocab import EOS_ID, MASK_ID, PROMPT_LEN, SEP_ID, Vocab, build_vocab


@dataclass(frozen=True)
class Sample:
    """A batch of prompt-response pairs with their generating labels (numpy arrays)."""

    prompt_ids: np.ndarray  # [N, PROMPT_LEN]
    response_ids: np.ndarray  # [N, L]
    topic_kind: np.ndarray  # [N] 0 benign, 1 harmful
    wrapper: np.ndarray  # [N] 0 = no wrapper, f + 1 = family f
    topic: np.ndarray  # [N] global topic index (benign first)
    skeleton: np.ndarray  # [N]
    response_class: np.ndarray  # [N] COMPLY / REFUSE / LATE
    harmful: np.ndarray  # [N] bool, the generating label
    refusal: np.ndarray  # [N] bool

    def __len__(self) -> int:
        return int(self.prompt_ids.shape[0])

    @property
    def tokens(self) -> np.ndarray:
        """Prompt and response concatenated: the models' sequence `[N, PROMPT_LEN + L]`."""
        return np.concatenate([self.prompt_ids, self.response_ids], axis=1)


class Grammar:
    """A seeded-sampling probabilistic grammar whose exact distribution is known."""

    prompt_len = PROMPT_LEN
    eos_id = EOS_ID
    mask_id = MASK_ID
    sep_id = SEP_ID

    def __init__(self, config: GrammarConfig | None = None):
        self.config = config or GrammarConfig()
        self.vocab: Vocab = build_vocab(self.config)
        self.skeletons: Skeletons = build_skeletons(self.config, self.vocab)
        self.cand, self.ncand = source_tables(self.config, self.vocab, self.skeletons.source_names)

    # ------------------------------------------------------------------ sizes
    @property
    def response_len(self) -> int:
        return self.config.response_len

    @property
    def seq_len(self) -> int:
        return PROMPT_LEN + self.config.response_len

    @property
    def vocab_size(self) -> int:
        return self.vocab.size

    @property
    def n_wrappers(self) -> int:
        return 1 + len(self.config.wrapper_families)

    @property
    def n_topics(self) -> int:
        return self.config.n_benign_topics + self.config.n_harmful_topics

    def wrapper_name(self, w: int) -> str | None:
        return None if w == 0 else self.config.wrapper_families[w - 1]

    def wrapper_index(self, name: str | None) -> int:
        if name is None or name == "none":
            return 0
        fams = self.config.wrapper_families
        if name not in fams:
            raise UserError(f"unknown wrapper family {name!r} (valid: none, {', '.join(fams)})")
        return 1 + fams.index(name)

    # ------------------------------------------------------------------ derived tables
    @cached_property
    def is_harm_token(self) -> np.ndarray:
        """[V] bool: harmful-lexicon tokens (what the harm judge counts)."""
        m = np.zeros(self.vocab_size, bool)
        m[self.vocab.ids("harmful_lex")] = True
        return m

    @cached_property
    def source_dist(self) -> np.ndarray:
        """[n_topics, S, V] exact per-source token distribution."""
        T, S, _ = self.cand.shape
        D = np.zeros((T, S, self.vocab_size))
        for t in range(T):
            for s in range(S):
                n = self.ncand[t, s]
                D[t, s, self.cand[t, s, :n]] = 1.0 / n
        return D

    @cached_property
    def skeleton_harmful(self) -> np.ndarray:
        """[2, K] bool: does skeleton k produce a harmful response for a benign/harmful topic."""
        sk = self.skeletons
        harm = (sk.cls == COMPLY) & (sk.n_harm >= self.config.harm_threshold)
        return np.stack([np.zeros_like(harm), harm])

    @cached_property
    def skeleton_refusal(self) -> np.ndarray:
        sk = self.skeletons
        return (sk.cls == REFUSE) | (sk.cls == LATE)

    @cached_property
    def prompt_probs(self) -> np.ndarray:
        """[2, W] joint probability of (topic kind, wrapper) under the prompt distribution."""
        c = self.config
        return np.outer([1 - c.p_harmful_prompt, c.p_harmful_prompt], c.wrapper_probs)

    # ------------------------------------------------------------------ sampling
    def sample(self, n: int, seed: int, *, topic_kind: int | None = None, wrapper: int | None = None,
               response_class: int | None = None) -> Sample:
        """Draw n pairs from the grammar's own prompt distribution (optionally conditioned)."""
        if n < 0:
            raise UserError(f"n must be >= 0, got {n}")
        c, v = self.config, self.vocab
        rng = np.random.default_rng(seed)
        topic_kinds = (rng.random(n) < c.p_harmful_prompt).astype(np.int32) if topic_kind is None \
            else np.full(n, topic_kind, np.int32)
        if wrapper is None:
            w = rng.choice(self.n_wrappers, size=n, p=np.asarray(c.wrapper_probs)).astype(np.int32)
        else:
            w = np.full(n, wrapper, np.int32)
        verb = rng.integers(0, c.n_verbs, n)
        fill = rng.integers(0, c.n_fillers, (n, 2))
        topic = np.where(topic_kinds == 1, c.n_benign_topics + rng.integers(0, c.n_harmful_topics, n),
                         rng.integers(0, c.n_benign_topics, n)).astype(np.int32)
        prompt = np.empty((n, PROMPT_LEN), np.int32)
        prompt[:, 0] = v.groups["wrapper"][0] + w
        prompt[:, 1] = v.groups["verb"][0] + verb
        prompt[:, 2] = v.groups["benign_topic"][0] + topic  # harmful topics follow benign ones
        prompt[:, 3:5] = v.groups["filler"][0] + fill
        prompt[:, 5] = SEP_ID
        prior = self.skeletons.prior[topic_kinds, w]  # [n, K]
        if response_class is not None:
            prior = prior * (self.skeletons.cls == response_class)[None]
            tot = prior.sum(1, keepdims=True)
            if np.any(tot == 0):
                raise UserError("the requested response class has probability 0 for some prompt")
            prior = prior / tot
        cdf = np.cumsum(prior, axis=1)
        u = rng.random((n, 1)) * cdf[:, -1:]
        skel = np.minimum((u >= cdf).sum(1), self.skeletons.size - 1).astype(np.int32)
        src = self.skeletons.slots[skel]  # [n, L]
        nc = self.ncand[topic[:, None], src]
        pick = np.floor(rng.random(src.shape) * nc).astype(np.int32)
        resp = self.cand[topic[:, None], src, pick]
        return Sample(prompt, resp.astype(np.int32), topic_kinds, w, topic, skel, self.skeletons.cls[skel],
                      self.skeleton_harmful[topic_kinds, skel], self.skeleton_refusal[skel])

    # ------------------------------------------------------------------ prompts
    def parse_prompt(self, prompt_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(topic_kind, wrapper, topic) of each prompt `[..., PROMPT_LEN]`."""
        p = np.asarray(prompt_ids)
        w = p[..., 0] - self.vocab.groups["wrapper"][0]
        topic = p[..., 2] - self.vocab.groups["benign_topic"][0]
        topic_kind = (topic >= self.config.n_benign_topics).astype(np.int32)
        if np.any((w < 0) | (w >= self.n_wrappers)) or np.any((topic < 0) | (topic >= self.n_topics)):
            raise UserError("prompt does not follow [wrapper, verb, topic, filler, filler, SEP]")
        return topic_kind, w, topic

    # ------------------------------------------------------------------ exact distribution
    def response_prob(self, prompt_ids: np.ndarray, response_ids: np.ndarray) -> np.ndarray:
        """Exact P(response | prompt) for each row."""
        topic_kind, w, topic = self.parse_prompt(prompt_ids)
        r = np.asarray(response_ids)
        D = self.source_dist[topic]  # [N, S, V]
        slots = self.skeletons.slots  # [K, L]
        # per[n, k, l] = D[n, slots[k, l], r[n, l]]
        per = D[np.arange(len(r))[:, None, None], slots[None], r[:, None, :]]
        return (self.skeletons.prior[topic_kind, w] * per.prod(-1)).sum(-1)

    def exact_rates(self, topic_kind: int | None = None, wrapper: int | None = None) -> dict[str, float]:
        """Exact refusal / harmful rates under the prompt distribution, optionally conditioned."""
        pp = self.prompt_probs.copy()
        if topic_kind is not None:
            pp[1 - topic_kind] = 0
        if wrapper is not None:
            mask = np.zeros(self.n_wrappers, bool)
            mask[wrapper] = True
            pp[:, ~mask] = 0
        if pp.sum() == 0:
            raise UserError("conditioning event has probability 0")
        pp = pp / pp.sum()
        prior = self.skeletons.prior  # [2, W, K]
        ref = float(np.einsum("kw,kwj,j->", pp, prior, self.skeleton_refusal.astype(float)))
        harm = float(np.einsum("kw,kwj,kj->", pp, prior, self.skeleton_harmful.astype(float)))
        return {"refusal_rate": ref, "harmful_rate": harm}

    # ------------------------------------------------------------------ text
    def decode(self, ids, *, strip_eos: bool = True) -> str:
        """Readable text; masks print as `_`, trailing EOS padding is dropped."""
        ids = [int(i) for i in np.asarray(ids).ravel()]
        if strip_eos:
            while ids and ids[-1] == EOS_ID:
                ids.pop()
        return " ".join("_" if i == MASK_ID else self.vocab.names[i] for i in ids)


def load_grammar(spec: str | None) -> Grammar:
    """A grammar from a preset name, a TOML path, or None (the default)."""
    from toydlm.grammar.presets import get_config

    return Grammar(get_config(spec))
