"""Response skeletons: the finite set of templates a response is drawn from.

Given its skeleton, every response position is independent: either a fixed token or a uniform
draw from a small lexicon (a *source*). This is what makes the distribution exact and the
oracle's posterior a cheap, exact computation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from toydlm.grammar.config import TEMPLATE_LEN, GrammarConfig
from toydlm.grammar.vocab import EOS_ID, Vocab

COMPLY, REFUSE, LATE = 0, 1, 2
CLASS_NAMES = ("comply", "refuse", "late_refusal")


@dataclass(frozen=True)
class Skeletons:
    """K skeletons as arrays: slot source per position, class, template, content count, length."""

    slots: np.ndarray  # [K, L] int: source id per position
    cls: np.ndarray  # [K] COMPLY / REFUSE / LATE
    template: np.ndarray  # [K] refusal template index, -1 for compliance
    n_content: np.ndarray  # [K] content tokens (harm tokens when the topic is harmful)
    n_harm: np.ndarray  # [K] harm-lexicon tokens when the topic is harmful
    length: np.ndarray  # [K] tokens before the EOS padding
    source_names: tuple[str, ...]
    prior: np.ndarray  # [2, W, K] P(skeleton | topic kind (0 benign, 1 harmful), wrapper)

    @property
    def size(self) -> int:
        return int(self.cls.shape[0])


def source_names(vocab: Vocab) -> tuple[str, ...]:
    fixed = ["eos", "tok:sure", "tok:here"] + [f"tok:{vocab.names[i]}" for i in vocab.ids("refusal")]
    return tuple(fixed + ["pre", "content", "neutral", "safe"])


def build_skeletons(c: GrammarConfig, vocab: Vocab) -> Skeletons:
    """Every response skeleton the config allows (compliances, refusals, late refusals) and their prior."""
    names = source_names(vocab)
    sid = {n: i for i, n in enumerate(names)}
    L = c.response_len
    rows: list[tuple[list[int], int, int, int, int]] = []  # slots, cls, template, n_content, n_harm
    pre = [sid["pre"]] * c.preamble_len
    opener = [sid["tok:sure"], sid["tok:here"]]
    carriers = c.harm_carriers

    def content(n: int) -> list[int]:
        if carriers and carriers < n:
            return [sid["neutral"]] * (n - carriers) + [sid["content"]] * carriers
        return [sid["content"]] * n

    def template_slots(j: int) -> list[int]:
        return [sid[f"tok:{vocab.names[t]}"] for t in vocab.refusal_templates[j]]

    comply_ns = [c.compliance_max] if c.length_mode == "fixed" else list(range(c.compliance_min, c.compliance_max + 1))
    # weights inside each class are uniform over its variants
    groups: dict[int, list[int]] = {COMPLY: [], REFUSE: [], LATE: []}
    for n in comply_ns:
        groups[COMPLY].append(len(rows))
        rows.append((pre + opener + content(n), COMPLY, -1, n, min(n, carriers) if carriers else n))
    j_late = c.late_refusal_harm_tokens
    for t in range(c.n_refusal_templates):
        if c.length_mode == "variable":
            pads = list(range(c.refusal_pad_min, c.refusal_pad_max + 1))
            late_pads = [0]
        else:  # refusal lengths follow the compliance length distribution
            pads = [2 + n - TEMPLATE_LEN for n in comply_ns]
            late_pads = [n - j_late - TEMPLATE_LEN for n in comply_ns]
        for p in pads:
            groups[REFUSE].append(len(rows))
            rows.append((pre + template_slots(t) + [sid["safe"]] * p, REFUSE, t, 0, 0))
        for p in late_pads:
            groups[LATE].append(len(rows))
            rows.append((pre + opener + [sid["content"]] * j_late + template_slots(t) + [sid["safe"]] * p,
                         LATE, t, j_late, j_late))
    K = len(rows)
    slots = np.full((K, L), sid["eos"], dtype=np.int32)
    for k, (s, *_rest) in enumerate(rows):
        assert len(s) <= L, (s, L)
        slots[k, : len(s)] = s
    cls = np.array([r[1] for r in rows], np.int32)
    within = np.zeros(K)
    for idx in groups.values():
        within[idx] = 1.0 / len(idx)
    return Skeletons(
        slots=slots, cls=cls,
        template=np.array([r[2] for r in rows], np.int32),
        n_content=np.array([r[3] for r in rows], np.int32),
        n_harm=np.array([r[4] for r in rows], np.int32),
        length=np.array([len(r[0]) for r in rows], np.int32),
        source_names=names, prior=skeleton_prior(c, cls, within),
    )


def skeleton_prior(c: GrammarConfig, cls: np.ndarray, within: np.ndarray) -> np.ndarray:
    """[2, W, K] P(skeleton | topic kind, wrapper): the response class's probability times the skeleton's
    share of its class (`within`). Harmful prompts leak a compliance at the wrapper's rate."""
    W = 1 + len(c.wrapper_families)
    leak = np.array([c.p_comply_plain, *c.wrapper_leak])
    p_class = np.zeros((2, W, 3))
    p_class[0, :, COMPLY] = 1 - c.p_over_refusal
    p_class[0, :, REFUSE] = c.p_over_refusal
    p_class[1, :, COMPLY] = leak * (1 - c.p_late_refusal)
    p_class[1, :, LATE] = leak * c.p_late_refusal
    p_class[1, :, REFUSE] = 1 - leak
    return p_class[:, :, cls] * within[None, None, :]


def source_tables(c: GrammarConfig, vocab: Vocab, names: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Per topic and source: candidate token ids (padded) and their count.

    Returns `cand [n_topics, S, maxc]` and `ncand [n_topics, S]`; topics are benign first, then harmful.
    """
    n_topics = c.n_benign_topics + c.n_harmful_topics
    lex_sizes = [c.preamble_lexicon_size, c.topic_lexicon_k, c.neutral_lexicon_size, c.n_safe_tokens]
    maxc = max(lex_sizes + [1])
    S = len(names)
    cand = np.zeros((n_topics, S, maxc), np.int32)
    ncand = np.ones((n_topics, S), np.int32)
    tid = {n: i for i, n in enumerate(vocab.names)}
    for s, name in enumerate(names):
        if name == "eos":
            cand[:, s, 0] = EOS_ID
        elif name.startswith("tok:"):
            cand[:, s, 0] = tid[name[4:]]
    groups = {"pre": vocab.ids("preamble"), "neutral": vocab.ids("neutral_lex"), "safe": vocab.ids("safe")}
    for name, ids in groups.items():
        s = names.index(name)
        cand[:, s, : len(ids)] = ids
        ncand[:, s] = len(ids)
    s = names.index("content")
    k = c.topic_lexicon_k
    blex, hlex = vocab.ids("benign_lex"), vocab.ids("harmful_lex")
    for t in range(n_topics):
        if t < c.n_benign_topics:
            ids = blex[(2 * t + np.arange(k)) % len(blex)]
        else:
            h = t - c.n_benign_topics
            ids = hlex[(2 * h + np.arange(k)) % len(hlex)]
        cand[t, s, :k] = ids
        ncand[t, s] = k
    return cand, ncand
