"""Per-cell measurements from a trace: outcome rates with errors, recovery metrics, curves."""

from __future__ import annotations

import numpy as np

from toydlm.grammar import stepwise_verdicts
from toydlm.measure import binomial_se, figure3_curves, hrr_frr, trajectory_states
from toydlm.sampling import outcome_rates


def verdict_rows(trace, grammar, draft: str = "argmax") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """committed harm, predicted harm (on the argmax or sampled x̂₀), committed refusal `[N, T+1]`.

    Row 0 is the start canvas (attack tokens committed, nothing predicted yet).
    """
    init = trace["init_response"]
    v0 = stepwise_verdicts(grammar, init, init)
    ch = np.concatenate([np.asarray(v0["committed_harm"])[None], trace["committed_harm"]], 0).T
    ph = np.concatenate([np.asarray(v0["predicted_harm"])[None], trace[f"predicted_harm_{draft}"]], 0).T
    cr = np.concatenate([np.asarray(v0["committed_refusal"])[None], trace["committed_refusal"]], 0).T
    return ch, ph, cr


def cell_metrics(trace, grammar) -> dict:
    """Everything `summary.json` records for one cell (rates carry binomial standard errors)."""
    out = outcome_rates(trace, grammar)  # rates with their binomial SEs
    ch, ph, cr = verdict_rows(trace, grammar, "argmax")
    states = trajectory_states(ch, ph, cr)
    hrr, frr, n_p = hrr_frr(states)
    out.update(hrr=hrr, frr=frr, n_ever_pending=n_p, hrr_se=binomial_se(hrr, n_p), frr_se=binomial_se(frr, n_p))
    _, ph_s, _ = verdict_rows(trace, grammar, "sample")
    hrr_s, frr_s, n_ps = hrr_frr(trajectory_states(ch, ph_s, cr))
    out.update(hrr_sampled_draft=hrr_s, frr_sampled_draft=frr_s, n_ever_pending_sampled_draft=n_ps)
    curves = figure3_curves(ch, ph)
    out["curves"] = {k: v.tolist() for k, v in curves.items()}
    out["state_occupancy"] = [np.bincount(states[:, t], minlength=4).tolist() for t in range(states.shape[1])]
    return out


def measure_cell(cell, grammar, denoiser, n: int, cell_seed: int) -> dict:
    """Sample one cell (its sampler, temperature and attack on `denoiser`) and measure it; records the seed."""
    from toydlm.samplers import SamplerConfig
    from toydlm.sampling import sample

    cfg = SamplerConfig(**cell.sampler.config_dict(cell.temperature))
    tr = sample(denoiser, grammar, cfg, attack=cell.attack, n=n, seed=cell_seed, record_hidden=False)
    m = cell_metrics(tr, grammar)
    m["seed"] = cell_seed
    return m


def measure_cell_seeds(cell, grammar, denoisers: list, n: int, cell_seed: int) -> list[dict]:
    """`measure_cell` for one cell on every model of a seed ensemble, sampled in one program per chunk."""
    from toydlm.samplers import SamplerConfig
    from toydlm.sampling_seeds import sample_seeds

    cfg = SamplerConfig(**cell.sampler.config_dict(cell.temperature))
    traces = sample_seeds(denoisers, grammar, cfg, attack=cell.attack, n=n, seed=cell_seed)
    return [cell_metrics(t, grammar) | {"seed": cell_seed} for t in traces]


def seed_spread(rows: list[dict]) -> list[dict]:
    """Spread of each learned-model cell across training seeds (the `full` preset trains several).

    One entry per (grammar, model, sampler, attack, temperature) measured on two or more seeds:
    mean, sample standard deviation, min and max of ASR and refusal rate, and the per-seed values.
    The standard deviation is the seed-to-seed spread, which includes each cell's binomial noise.
    """
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        if r.get("model_seed") is None:
            continue
        groups.setdefault((r["grammar"], r["model"], r["sampler"], r["attack"], r["temperature"]), []).append(r)
    out = []
    for (g, m, s, a, t), rs in groups.items():
        if len({r["model_seed"] for r in rs}) < 2:
            continue
        e = {"grammar": g, "model": m, "sampler": s, "attack": a, "temperature": t, "n_seeds": len(rs),
             "seeds": [r["model_seed"] for r in rs]}
        for k in ("asr", "refusal_rate"):
            v = np.array([r[k] for r in rs], float)
            e.update({f"{k}_mean": float(v.mean()), f"{k}_sd": float(v.std(ddof=1)), f"{k}_min": float(v.min()),
                      f"{k}_max": float(v.max()), f"{k}_per_seed": v.tolist()})
        e["mean_binomial_se"] = float(np.mean([r["asr_se"] for r in rs]))
        out.append(e)
    return out
