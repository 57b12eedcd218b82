"""The toy harmful/benign grammar: exact distribution, judges, oracle denoiser."""

from toydlm.grammar.config import GrammarConfig
from toydlm.grammar.core import Grammar, Sample, load_grammar
from toydlm.grammar.judges import (
    harm_count,
    is_harmful,
    is_refusal,
    is_valid,
    refusal_found,
    stepwise_verdicts,
)
from toydlm.grammar.oracle import grammar_oracle, oracle_apply, skeleton_posterior
from toydlm.grammar.presets import PRESETS, get_config
from toydlm.grammar.skeletons import CLASS_NAMES, COMPLY, LATE, REFUSE
from toydlm.grammar.vocab import EOS_ID, MASK_ID, PROMPT_LEN, SEP_ID

__all__ = [
    "CLASS_NAMES", "COMPLY", "EOS_ID", "Grammar", "GrammarConfig", "LATE", "MASK_ID", "PRESETS",
    "PROMPT_LEN", "REFUSE", "SEP_ID", "Sample", "get_config", "grammar_oracle", "harm_count",
    "is_harmful", "is_refusal", "is_valid", "load_grammar", "oracle_apply", "refusal_found",
    "skeleton_posterior", "stepwise_verdicts",
]
