"""SRI: the step-wise refusal internal signal, internal recovery rate, SRI Guard and detector metrics.

The baselines SRI Guard is compared with are in `toydlm.sri.baselines`; their evaluation in
`toydlm.experiment.sri_eval`; what each detector costs in `toydlm.bench.detector_cost`.
"""

from toydlm.sri.guard import GuardConfig, SRIGuard, fit_guard
from toydlm.sri.metrics import BENIGN_QUANTILE, MIN_POS, auroc, auroc_ci, detector_report, roc_curve, tpr_at_fpr
from toydlm.sri.signal import compute_centres, cosine_distance, internal_recovery_rate, pooled_states, sri_signal
from toydlm.sri.summaries import irr_table, trajectory_summary

__all__ = ["BENIGN_QUANTILE", "MIN_POS", "GuardConfig", "SRIGuard", "auroc", "auroc_ci", "compute_centres",
           "cosine_distance", "detector_report", "fit_guard", "internal_recovery_rate", "irr_table", "pooled_states",
           "roc_curve", "sri_signal", "tpr_at_fpr", "trajectory_summary"]
