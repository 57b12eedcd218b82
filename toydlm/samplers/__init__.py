"""Samplers as pure JAX policies `step(state, logits, keys) -> state`, run by two drivers.

Names (the CLI values): `ar`, `ar_order`, `low_confidence`, `random`, `margin`, `entropy`,
`annealed`, `mdlm`, `remdm`, plus any selection rule added with `register_selection_rule`. See
`config.py` for the selection / re-masking vocabulary. This layer knows only the Denoiser
protocol (`toydlm.denoiser`); sampling on the toy grammar (prompts, attacks, traces) is
`toydlm.sampling`.
"""

from toydlm.samplers.config import (
    ANCESTRAL,
    LEFT_TO_RIGHT,
    REMDM_SCHEDULES,
    SAMPLERS,
    SELECTION,
    SamplerConfig,
    check_pairing,
    k_schedule,
    register_selection_rule,
    sampler_names,
    selection_names,
)
from toydlm.samplers.drivers import SEED_STREAM, loop_run, row_keys, run_key, scan_run
from toydlm.samplers.policies import make_policy, row_step
from toydlm.samplers.selection import ScoreInputs, anneal_weight
from toydlm.samplers.state import Force, SamplerState, apply_force, init_state, no_force

__all__ = [
    "ANCESTRAL", "LEFT_TO_RIGHT", "REMDM_SCHEDULES", "SAMPLERS", "SEED_STREAM", "SELECTION", "Force",
    "SamplerConfig", "SamplerState", "ScoreInputs", "anneal_weight", "apply_force", "check_pairing", "init_state",
    "k_schedule", "loop_run", "make_policy", "no_force", "register_selection_rule", "row_keys", "row_step",
    "run_key", "sampler_names", "scan_run", "selection_names",
]
