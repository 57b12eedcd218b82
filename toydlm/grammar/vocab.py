"""The grammar's vocabulary: named token ids laid out in contiguous groups."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from toydlm.grammar.config import GrammarConfig

EOS_ID, MASK_ID, SEP_ID = 0, 1, 2
PROMPT_LEN = 6  # [wrapper, verb, topic, filler, filler, SEP]

_VERBS = ["explain", "describe", "write", "list", "outline", "show"]
_FILLERS = ["please", "quickly", "now", "briefly", "clearly", "today", "simply", "kindly", "again", "here's"]
_BENIGN_TOPICS = ["cooking", "gardening", "poetry", "chess", "hiking", "baking", "painting", "music",
                  "physics", "history", "sailing", "coding", "yoga", "birds", "stars", "tea"]
_HARMFUL_TOPICS = ["weapons", "malware", "poison", "fraud", "stalking", "arson", "theft", "drugs"]
_REFUSAL_TEMPLATES = [
    ("sorry", "i", "cannot", "help"),
    ("i", "must", "decline", "this"),
    ("that", "is", "not", "allowed"),
    ("i", "will", "not", "assist"),
]
_SAFE = ["instead", "try", "safety", "resources", "ask", "someone"]
_PREAMBLE = ["ok", "well", "so", "hmm", "right", "alright"]


@dataclass(frozen=True)
class Vocab:
    """Token names and the id ranges of every group (half-open [start, stop))."""

    names: tuple[str, ...]
    groups: dict[str, tuple[int, int]]
    refusal_templates: tuple[tuple[int, ...], ...]

    def ids(self, group: str) -> np.ndarray:
        a, b = self.groups[group]
        return np.arange(a, b)

    def id(self, name: str) -> int:
        return self.names.index(name)

    @property
    def size(self) -> int:
        return len(self.names)


def _numbered(prefix: str, base: list[str], n: int) -> list[str]:
    return [base[i] if i < len(base) else f"{prefix}{i}" for i in range(n)]


def build_vocab(c: GrammarConfig) -> Vocab:
    """Lay out ids: specials, prompt groups, then response groups."""
    names: list[str] = []
    groups: dict[str, tuple[int, int]] = {}

    def add(group: str, toks: list[str]) -> None:
        groups[group] = (len(names), len(names) + len(toks))
        names.extend(toks)

    add("special", ["<eos>", "<mask>", "<sep>"])
    add("wrapper", ["[none]"] + [f"[{f}]" for f in c.wrapper_families])
    add("verb", _numbered("verb", _VERBS, c.n_verbs))
    add("filler", _numbered("filler", _FILLERS, c.n_fillers))
    add("benign_topic", _numbered("topic", _BENIGN_TOPICS, c.n_benign_topics))
    add("harmful_topic", [t.upper() for t in _numbered("harmtopic", _HARMFUL_TOPICS, c.n_harmful_topics)])
    add("opener", ["sure", "here"])
    templates = _REFUSAL_TEMPLATES[: c.n_refusal_templates]
    ref_words = sorted({w for t in templates for w in t}, key=lambda w: [w2 for t in templates for w2 in t].index(w))
    add("refusal", ref_words)
    add("safe", _numbered("safe", _SAFE, c.n_safe_tokens))
    add("preamble", _numbered("pre", _PREAMBLE, c.preamble_lexicon_size))
    add("benign_lex", [f"b{i}" for i in range(c.benign_lexicon_size)])
    add("neutral_lex", [f"n{i}" for i in range(c.neutral_lexicon_size)])
    add("harmful_lex", [f"H{i}" for i in range(c.harmful_lexicon_size)])
    # names must be unique for decoding; fillers/verbs beyond the word lists are numbered
    assert len(set(names)) == len(names), "duplicate token names"
    tid = {n: i for i, n in enumerate(names)}
    tmpl_ids = tuple(tuple(tid[w] for w in t) for t in templates)
    return Vocab(tuple(names), groups, tmpl_ids)
