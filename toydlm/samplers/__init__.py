"""Samplers as pure JAX policies `step(state, logits, keys) -> state`, run by two drivers.

Names (the CLI values): `ar`, `ar_order`, `low_confidence`, `random`, `margin`, `entropy`,
`annealed`, `mdlm`, `remdm`. See `config.py` for the selection / re-masking vocabulary.
"""

from toydlm.samplers.config import (
    ANCESTRAL,
    LEFT_TO_RIGHT,
    REMDM_SCHEDULES,
    SAMPLERS,
    SELECTION,
    SamplerConfig,
    anneal_weight,
    k_schedule,
)
from toydlm.samplers.drivers import loop_run, row_keys, scan_run
from toydlm.samplers.policies import make_policy, row_step
from toydlm.samplers.run import outcome_rates, params_hash, sample
from toydlm.samplers.state import Force, SamplerState, apply_force, init_state, no_force

__all__ = [
    "ANCESTRAL", "LEFT_TO_RIGHT", "REMDM_SCHEDULES", "SAMPLERS", "SELECTION", "Force", "SamplerConfig",
    "SamplerState", "anneal_weight", "apply_force", "init_state", "k_schedule", "loop_run", "make_policy",
    "no_force", "outcome_rates", "params_hash", "row_keys", "row_step", "sample", "scan_run",
]
