"""The template's no-hand-typed-numbers rule: digits outside placeholders must be on a short explicit allowlist."""

from __future__ import annotations

import re

from paper.render import PLACEHOLDER

# Tokens with digits that are names, not results: the seed paper's arXiv id and year, model names and
# sizes it quotes, and the names of this project's two theory models.
ALLOWED = frozenset({"2602.02600", "2026", "8B", "7B", "7–8B", "LLaDA-1.5", "Qwen-2.5", "LLaMA-3", "v1", "v2",
                     "SmolLM2-135M-Instruct", "Qwen2.5-Coder-0.5B-Instruct", "Qwen2.5-Coder-1.5B-Instruct", "sha256"})
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
