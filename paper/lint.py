"""The template's no-hand-typed-numbers rule: digits outside placeholders must be on a short explicit allowlist, and
number words (two and up, multiples, fractions, `-fold`) outside placeholders on a short phrase allowlist of
definitions (`hand_typed_words`)."""

from __future__ import annotations

import re

from paper.render import PLACEHOLDER

# Tokens with digits that are names, not results: the seed paper's arXiv id and year, model names and
# sizes it quotes, the names of this project's two theory models, and the names of the twins' rules R1–R5.
ALLOWED = frozenset({"2602.02600", "2026", "8B", "7B", "7–8B", "LLaDA-1.5", "Qwen-2.5", "LLaMA-3", "v1", "v2",
                     "SmolLM2-135M-Instruct", "Qwen2.5-Coder-0.5B-Instruct", "Qwen2.5-Coder-1.5B-Instruct", "sha256",
                     "R1", "R2", "R3", "R4", "R5", "R1–R5"})
TOKEN = re.compile(r"[\w.@:\-–]*[0-9][\w.@:\-–]*")


def config_identifiers(summary: dict) -> set[str]:
    """Sampler labels and attack names the run defines (identifiers such as `low_confidence_T16`)."""
    p = summary["config"]["run_preset"]
    return {s["label"] for s in p["samplers"]} | set(p["attacks"])


def hand_typed_numbers(template: str, identifiers: set[str] = frozenset()) -> list[str]:
    """Digit-bearing tokens outside placeholders that are neither allowlisted nor run identifiers."""
    bare = PLACEHOLDER.sub(" ", template)
    out = []
    for tok in TOKEN.findall(bare):
        t = tok.strip(".:-–")
        if t not in ALLOWED and t not in identifiers:
            out.append(tok)
    return out


# --- number words -------------------------------------------------------------------------------------------
# Results written in words escape the digit rule above, so the template is also scanned for number words from
# "two" upward, multiples and fractions. "one" and "zero" are not flagged: "one" is far more often a pronoun or an
# article ("one of", "no one", "the one model") and "zero"/"one" are settings ("temperature one", "near zero")
# than a count; ordinals ("first", "second", "third") enumerate prose and are not flagged either.
_CARDINALS = ("two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
              "seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety hundred hundreds "
              "thousand thousands million millions dozen dozens").split()
NUMBER_WORDS = frozenset(_CARDINALS)
MULTIPLES = frozenset("twice thrice double doubled doubles doubling triple tripled triples tripling halve halved "
                      "halves halving half quarter quarters".split())
_FOLD = re.compile(r"^(?:" + "|".join(_CARDINALS) + r"|few|many|multi|n)?fold$")
# A hyphenated word: "thirty-two-token", "few-fold", "n-fold".
WORD = re.compile(r"[A-Za-z]+(?:-[A-Za-z]+)*")

# Phrases that define the method or the design, not a result: stripped before the word scan. Each entry is a
# regex (case-insensitive, matched on word boundaries) with why it is a definition. Never add a phrase that
# states a measured result or a count of results: those must come from a placeholder or a calc.
ALLOWED_PHRASES: tuple[tuple[str, str], ...] = (
    (r"four-state chain", "Model v1's definition: a chain over the states C, P, H, R"),
    (r"one of four states", "Model v1's definition (the states C, P, H, R)"),
    (r"two exact results", "the theory's two theorems, stated in the text (value-blind and value-dependent selection)"),
    (r"two fillers", "the grammar's prompt skeleton (wrapper, verb, topic, two fillers, separator)"),
    (r'two meanings of "remask"', "the two senses of the word the paper defines (selection, re-masking)"),
    (r"the seed paper's two conditions are exactly this chain's two levers",
     "the seed paper's two stated conditions mapped onto Model v1's parameters s and h"),
    (r"two fit samplers", "the theory's design: offsets are read off AR order and random order, named next to it"),
    (r"the two orders", "refers back to the two decoding orders of the controls (AR order, random order)"),
    (r"first half of (?:its )?commits", "the definition of the EOS-first share metric"),
    (r"(?:within|outside) three SE", "the calibration controls' criterion (`within_3se` in summary.json)"),
    (r"within two (?:combined )?standard errors", "the twins agreement rule (`*_within_2se` in twins.json)"),
    (r"the last two columns", "the layout of a generated table (its theory columns), not a count of results"),
    (r"blocks of (?:eight|thirty-two)(?: tokens)?|(?:eight|thirty-two)-token blocks",
     "the twins' block samplers by definition (labels low_confidence@32, and low_confidence_B8_T48 of the first swap)"),
    (r"half HarmBench, half AdvBench", "the real prompt set's definition (`config.prompts` in real_ar.json)"),
    (r"the two automatic judges", "the design's two judges (keyword and LLM), named in the same section"),
    (r"separates the two", "pronoun: the two anchor sets just named"),
    (r"ten-minute GPU session", "the prepared script's design budget (experiments/bridge_gpu.py), not a measurement"),
)
ALLOWED_RE = re.compile("|".join(rf"(?<![\w-])(?:{p})(?![\w-])" for p, _ in ALLOWED_PHRASES), re.I)


def _is_number_word(w: str) -> bool:
    parts = w.lower().split("-")
    return any(p in NUMBER_WORDS or p in MULTIPLES or _FOLD.match(p) for p in parts)


def hand_typed_words(template: str) -> list[str]:
    """Number words outside placeholders and allowlisted phrases: `three`, `thirty-two-token`, `twice`, `half`,
    `few-fold`, `hundredfold`, and `<number word> times` as one phrase (`three times`). Not `one`/`zero`, and not
    `-fold` right after a placeholder (`{{ … | int }}-fold` takes its number from the data)."""
    bare = ALLOWED_RE.sub(" ", PLACEHOLDER.sub("\0", template))
    out = []
    for m in WORD.finditer(bare):
        w = m.group(0)
        if not _is_number_word(w) or (w.lower() == "fold" and bare[max(0, m.start() - 2):m.start()] == "\0-"):
            continue
        nxt = re.match(r"\s+times\b", bare[m.end():])
        out.append(f"{w} times" if nxt and w.lower().split("-")[-1] in NUMBER_WORDS else w)
    return out

