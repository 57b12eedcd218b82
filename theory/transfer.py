"""Cross-sampler prediction with v1: model-side hazards from sampler A, sampler side from B.

Fit h(c), r'(c), lam'(c) on sampler A's traces (`fit_hazard_model`), then evaluate them on
sampler B's committed-fraction schedule c_B and combine with B's s_B, rho_B. Uncertainty of the
prediction comes from redrawing the logistic coefficients from their Gaussian approximation.
"""

from __future__ import annotations

import numpy as np

from theory.chain import predict
from theory.curves import step_curves
from theory.hazard_model import HazardModel, fit_hazard_model, sigmoid


def predict_with_model(
    model: HazardModel, s, rho, committed_before, start: str = "C",
    draws: int = 0, seed: int = 0, conf: float = 0.95,
) -> dict[str, np.ndarray]:
    """Predict asr, hrr, frr, state_probs and the Figure-3 curves for a sampler (s, rho [T]) whose
    expected committed fraction before step t is committed_before[t - 1] ([T]).

    With draws > 0, also `asr_lo`/`asr_hi` (and hrr, frr): equal-tailed intervals over coefficient
    draws (parameter uncertainty of the fitted model-side hazards only).
    """
    s, rho, c = (np.asarray(v, float) for v in (s, rho, committed_before))
    hz = model.hazards(c, s, rho)
    out = dict(predict(hz["h"], s, hz["r"], rho, hz["lam"], start))
    out.update(step_curves(hz["h"], s, hz["r"], rho, hz["lam"], start))
    out["h"], out["r"], out["lam"] = hz["h"], hz["r"], hz["lam"]
    if draws > 0:
        rng = np.random.default_rng(seed)
        ch, cr, cl = (m.draw(rng, draws) for m in (model.h, model.r_cond, model.lam_cond))
        h = sigmoid(ch[:, :1] + ch[:, 1:] * c)
        r = (1 - s) * sigmoid(cr[:, :1] + cr[:, 1:] * c)
        lam = (1 - rho) * sigmoid(cl[:, :1] + cl[:, 1:] * c)
        batch = predict(h, np.broadcast_to(s, h.shape), r, np.broadcast_to(rho, h.shape), lam, start)
        q = (1 - conf) / 2
        for key in ("asr", "hrr", "frr"):
            v = batch[key]
            v = v[~np.isnan(v)]
            lo, hi = (np.quantile(v, [q, 1 - q]) if v.size else (np.nan, np.nan))
            out[key + "_lo"], out[key + "_hi"] = float(lo), float(hi)
    return out


def cross_sampler(
    states_a, committed_a, s_b, rho_b, committed_before_b, start: str = "C", draws: int = 200,
) -> dict[str, np.ndarray]:
    """Fit model-side hazards on sampler A (states [N, T_A + 1], committed clean fraction
    [N, T_A + 1]) and predict sampler B from its s_b, rho_b and committed-fraction schedule ([T_B])."""
    model = fit_hazard_model(states_a, committed_a)
    out = predict_with_model(model, s_b, rho_b, committed_before_b, start, draws=draws)
    out["model"] = model
    return out
