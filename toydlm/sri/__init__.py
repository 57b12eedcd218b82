"""SRI: the step-wise refusal internal signal, internal recovery rate, and SRI Guard."""

from toydlm.sri.guard import GuardConfig, SRIGuard, fit_guard
from toydlm.sri.metrics import auroc, roc_curve, tpr_at_fpr
from toydlm.sri.signal import compute_centres, cosine_distance, internal_recovery_rate, sri_signal

__all__ = ["GuardConfig", "SRIGuard", "auroc", "compute_centres", "cosine_distance", "fit_guard",
           "internal_recovery_rate", "roc_curve", "sri_signal", "tpr_at_fpr"]
