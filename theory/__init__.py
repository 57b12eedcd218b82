"""Markov-chain theory of remasking recovery (pure math; imports nothing from toydlm).

Model v1 (code name chain: a trajectory-level chain on C, P, H, R; docs/theory-spec.md):
  predict                 exact outcomes (stable public entry point)
  step_curves, first_hit_pmf   Figure-3 curves and first-hit-time laws
  simulate                Monte Carlo of the same chain
  transition_counts, fit_hazards, binned_counts, fit_hazard_model   fitting from traces
  predict_with_model, cross_sampler   cross-sampler prediction
Model v2 (code name oracle_sim: a sampler on a grammar-agnostic oracle; theory/README.md):
  make_mixture, mixture_asr, SamplerSpec, simulate_oracle, exact_asr, exact_output
  register_selection_rule   add a top-k selection sampler by name
Submodules: closed_form, sensitivity, schedules, selection_rules, intervals, bench.
"""

from theory import bench, closed_form, schedules, sensitivity
from theory._validate import STATES
from theory.chain import forward_events, predict, transition_matrices
from theory.curves import first_hit_pmf, mean_first_hit, step_curves
from theory.fit import binned_counts, fit_hazards, transition_counts
from theory.hazard_model import HazardModel, Logistic, fit_hazard_model, fit_logistic
from theory.oracle import Mixture, harm_count_pmf, make_mixture, marginals, mixture_asr, posterior
from theory.oracle_exact import exact_asr, exact_output
from theory.oracle_sim import simulate_oracle
from theory.sampler_spec import SAMPLERS, SamplerSpec
from theory.selection_rules import register_selection_rule
from theory.simulate import simulate, state_frequencies
from theory.transfer import cross_sampler, predict_with_model

__all__ = [
    "STATES", "predict", "transition_matrices", "forward_events",
    "step_curves", "first_hit_pmf", "mean_first_hit",
    "simulate", "state_frequencies",
    "transition_counts", "fit_hazards", "binned_counts",
    "fit_logistic", "fit_hazard_model", "Logistic", "HazardModel",
    "predict_with_model", "cross_sampler",
    "Mixture", "make_mixture", "mixture_asr", "harm_count_pmf", "posterior", "marginals",
    "SamplerSpec", "SAMPLERS", "simulate_oracle", "exact_asr", "exact_output", "register_selection_rule",
    "bench", "closed_form", "schedules", "sensitivity",
]
