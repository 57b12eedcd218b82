"""The grammar's frozen configuration: every rate and structural choice, validated, TOML-loadable."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from toydlm.errors import UserError

LENGTH_MODES = ("variable", "matched", "fixed")
TEMPLATE_LEN = 4  # every refusal template has four tokens
MAX_REFUSAL_TEMPLATES = 4
MAX_VOCAB = 128


@dataclass(frozen=True)
class GrammarConfig:
    """Rates and structure of the toy harmful/benign grammar.

    `length_mode` decides which way length-sensitive samplers behave (docs/prior-evidence.md):
    `variable` = refusals shorter than compliances, `matched` = refusal lengths drawn from the
    compliance length distribution, `fixed` = every response has the same length.
    """

    name: str = "default"
    response_len: int = 16
    n_verbs: int = 3
    n_fillers: int = 6
    n_benign_topics: int = 8
    n_harmful_topics: int = 4
    topic_lexicon_k: int = 4  # content tokens available to one topic
    benign_lexicon_size: int = 16
    harmful_lexicon_size: int = 8
    neutral_lexicon_size: int = 6  # non-harmful filler content inside harmful compliances
    preamble_lexicon_size: int = 3
    n_safe_tokens: int = 3  # safe-alternative tokens that pad refusals
    n_refusal_templates: int = 3
    p_harmful_prompt: float = 0.5
    wrapper_families: tuple[str, ...] = ("roleplay", "hypothetical", "prefix", "cipher")
    wrapper_leak: tuple[float, ...] = (0.3, 0.5, 0.7, 0.6)  # P(comply | harmful, family)
    unseen_families: tuple[str, ...] = ("cipher",)  # never used when fitting detectors
    wrapper_probs: tuple[float, ...] = (0.2, 0.2, 0.2, 0.2, 0.2)  # none, then each family
    p_comply_plain: float = 0.05  # P(comply | harmful, no wrapper)
    p_over_refusal: float = 0.02  # P(refuse | benign)
    p_late_refusal: float = 0.1  # share of harmful compliances that turn into a refusal
    late_refusal_harm_tokens: int = 1  # harm tokens emitted before the late refusal
    compliance_min: int = 6  # content tokens of a compliance
    compliance_max: int = 12
    refusal_pad_min: int = 0  # safe tokens after a refusal template (variable mode)
    refusal_pad_max: int = 4
    length_mode: str = "variable"
    preamble_len: int = 0  # neutral tokens before the decision becomes visible
    harm_threshold: int = 2  # a response is harmful iff it holds >= this many harm tokens
    harm_carriers: int = 0  # 0: every compliance content token is harmful; m: only the last m
    extra: dict = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        for k in ("wrapper_families", "wrapper_leak", "unseen_families", "wrapper_probs"):
            object.__setattr__(self, k, tuple(getattr(self, k)))
        validate(self)

    # ------------------------------------------------------------------ io
    @classmethod
    def from_dict(cls, d: dict) -> GrammarConfig:
        known = {f.name for f in dataclasses.fields(cls) if f.name != "extra"}
        unknown = sorted(set(d) - known)
        if unknown:
            raise UserError(f"unknown grammar config field {unknown[0]!r} (valid: {', '.join(sorted(known))})")
        return cls(**d)

    @classmethod
    def from_toml(cls, path: str | Path) -> GrammarConfig:
        p = Path(path)
        if not p.is_file():
            raise UserError(f"grammar config file not found: {p}")
        try:
            data = tomllib.loads(p.read_text())
        except tomllib.TOMLDecodeError as e:
            raise UserError(f"grammar config {p} is not valid TOML: {e}") from None
        return cls.from_dict(data.get("grammar", data))

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d.pop("extra")
        return d

    def config_hash(self) -> str:
        """Stable short hash of every field: checkpoints and caches are keyed on it."""
        blob = json.dumps(self.to_dict(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def replace(self, **kw) -> GrammarConfig:
        return dataclasses.replace(self, **kw)


def _require(cond: bool, field_name: str, value, why: str) -> None:
    if not cond:
        raise UserError(f"grammar config field {field_name!r} = {value!r}: {why}")


def validate(c: GrammarConfig) -> None:
    """Raise UserError naming the first offending field and value."""
    _validate_rates_and_counts(c)
    _validate_families(c)
    _validate_lengths(c)


def _validate_rates_and_counts(c: GrammarConfig) -> None:
    """Every rate is a probability, every count a positive integer."""
    for name in ("p_harmful_prompt", "p_comply_plain", "p_over_refusal", "p_late_refusal"):
        v = getattr(c, name)
        _require(isinstance(v, (int, float)) and 0.0 <= v <= 1.0, name, v, "must be a probability in [0, 1]")
    for i, v in enumerate(c.wrapper_leak):
        _require(isinstance(v, (int, float)) and 0.0 <= v <= 1.0, f"wrapper_leak[{i}]", v, "must be in [0, 1]")
    for i, v in enumerate(c.wrapper_probs):
        _require(isinstance(v, (int, float)) and 0.0 <= v <= 1.0, f"wrapper_probs[{i}]", v, "must be in [0, 1]")
    for name in ("n_verbs", "n_fillers", "n_benign_topics", "n_harmful_topics", "topic_lexicon_k",
                 "benign_lexicon_size", "harmful_lexicon_size", "neutral_lexicon_size",
                 "preamble_lexicon_size", "n_safe_tokens", "response_len", "harm_threshold"):
        v = getattr(c, name)
        _require(isinstance(v, int) and v >= 1, name, v, "must be a positive integer (an empty set is not allowed)")


def _validate_families(c: GrammarConfig) -> None:
    """Wrapper families: unique, one leak rate each, a prompt distribution over them, some left seen."""
    _require(len(c.wrapper_families) >= 1, "wrapper_families", c.wrapper_families, "needs at least one family")
    _require(len(set(c.wrapper_families)) == len(c.wrapper_families), "wrapper_families", c.wrapper_families,
             "names must be unique")
    _require(len(c.wrapper_leak) == len(c.wrapper_families), "wrapper_leak", c.wrapper_leak,
             f"needs one rate per wrapper family ({len(c.wrapper_families)})")
    _require(len(c.wrapper_probs) == 1 + len(c.wrapper_families), "wrapper_probs", c.wrapper_probs,
             f"needs {1 + len(c.wrapper_families)} entries (no wrapper, then each family)")
    _require(abs(sum(c.wrapper_probs) - 1.0) < 1e-6, "wrapper_probs", c.wrapper_probs, "must sum to 1")
    _require(all(u in c.wrapper_families for u in c.unseen_families), "unseen_families", c.unseen_families,
             "must name wrapper families")
    _require(len(c.unseen_families) < len(c.wrapper_families), "unseen_families", c.unseen_families,
             "at least one family must remain seen")


def _validate_lengths(c: GrammarConfig) -> None:
    """Templates, lexica and response lengths fit together, and the vocabulary fits in MAX_VOCAB ids."""
    _require(1 <= c.n_refusal_templates <= MAX_REFUSAL_TEMPLATES, "n_refusal_templates", c.n_refusal_templates,
             f"must be in 1..{MAX_REFUSAL_TEMPLATES}")
    _require(c.topic_lexicon_k <= c.benign_lexicon_size, "topic_lexicon_k", c.topic_lexicon_k,
             f"exceeds benign_lexicon_size={c.benign_lexicon_size}")
    _require(c.topic_lexicon_k <= c.harmful_lexicon_size, "topic_lexicon_k", c.topic_lexicon_k,
             f"exceeds harmful_lexicon_size={c.harmful_lexicon_size}")
    _require(c.length_mode in LENGTH_MODES, "length_mode", c.length_mode, f"must be one of {LENGTH_MODES}")
    _require(isinstance(c.preamble_len, int) and c.preamble_len >= 0, "preamble_len", c.preamble_len, "must be >= 0")
    _require(isinstance(c.compliance_min, int) and c.compliance_min >= 1, "compliance_min", c.compliance_min,
             "must be >= 1")
    _require(c.compliance_max >= c.compliance_min, "compliance_max", c.compliance_max, "must be >= compliance_min")
    _require(0 <= c.refusal_pad_min <= c.refusal_pad_max, "refusal_pad_min", c.refusal_pad_min,
             "must satisfy 0 <= refusal_pad_min <= refusal_pad_max")
    carriers = c.harm_carriers or c.compliance_min
    _require(0 <= c.harm_carriers <= c.compliance_min, "harm_carriers", c.harm_carriers,
             f"must be in 0..compliance_min={c.compliance_min}")
    _require(carriers >= c.harm_threshold, "harm_threshold", c.harm_threshold,
             f"a harmful compliance carries only {carriers} harm tokens, so it would not be judged harmful")
    _require(0 <= c.late_refusal_harm_tokens < c.harm_threshold, "late_refusal_harm_tokens",
             c.late_refusal_harm_tokens,
             f"must be below harm_threshold={c.harm_threshold} (a late refusal is not harm)")
    pre = c.preamble_len
    longest = max(pre + 2 + c.compliance_max,
                  pre + TEMPLATE_LEN + c.refusal_pad_max,
                  pre + 2 + c.late_refusal_harm_tokens + TEMPLATE_LEN)
    _require(longest <= c.response_len, "response_len", c.response_len,
             f"too short for the templates (the longest response needs {longest} tokens)")
    if c.length_mode in ("matched", "fixed"):
        shortest = c.compliance_max if c.length_mode == "fixed" else c.compliance_min
        _require(shortest >= c.late_refusal_harm_tokens + TEMPLATE_LEN,
                 "compliance_min" if c.length_mode == "matched" else "compliance_max", shortest,
                 "too short to length-match a (late) refusal to a compliance")
    n_vocab = vocab_size_of(c)
    _require(n_vocab <= MAX_VOCAB, "n_benign_topics", c.n_benign_topics,
             f"the vocabulary would have {n_vocab} ids (max {MAX_VOCAB})")


def vocab_size_of(c: GrammarConfig) -> int:
    from toydlm.grammar.vocab import build_vocab

    return len(build_vocab(c).names)
