"""Measurements on traces: outcome rates with errors, recovery states and metrics, curves."""

from toydlm.measure.recovery import (
    STATE_NAMES,
    binomial_se,
    figure3_curves,
    hrr_frr,
    rate,
    trajectory_states,
)

__all__ = ["STATE_NAMES", "binomial_se", "figure3_curves", "hrr_frr", "rate", "trajectory_states"]
