"""Named grammar presets: the default experiment and its controls."""

from __future__ import annotations

from pathlib import Path

from toydlm.errors import UserError
from toydlm.grammar.config import GrammarConfig

PRESETS: dict[str, GrammarConfig] = {
    # refusals are short (4-8 tokens), compliances long (8-14): the setting of docs/prior-evidence.md
    "default": GrammarConfig(),
    # refusal lengths follow the compliance length distribution: the length control
    "length_matched": GrammarConfig(name="length_matched", length_mode="matched"),
    # every response has the same length (no length signal at all)
    "fixed_length": GrammarConfig(name="fixed_length", length_mode="fixed"),
    # the refuse/comply decision becomes visible only after a 2-token neutral preamble
    "midway": GrammarConfig(name="midway", preamble_len=2),
    # only the last 2 content tokens of a compliance carry harm
    "sparse_harm": GrammarConfig(name="sparse_harm", harm_carriers=2),
}


def get_config(spec: str | None) -> GrammarConfig:
    """Resolve a preset name or a TOML file path to a config."""
    if spec is None:
        return PRESETS["default"]
    if spec in PRESETS:
        return PRESETS[spec]
    if spec.endswith(".toml") or Path(spec).exists():
        return GrammarConfig.from_toml(spec)
    raise UserError(f"unknown grammar preset {spec!r} (presets: {', '.join(PRESETS)}; or a .toml path)")
