"""From a cell's samples and the judge's verdicts to the audit's tables (the `audit.json` contract).

Refusal is the keyword judge on what the model wrote; harm is the chosen judge's verdict (with the
keyword judge: "not a refusal", the seed study's RR-based ASR). Intervals are 95% bootstraps over
prompts (all samples of a drawn prompt kept), since samples of one prompt are not independent.
"""

from __future__ import annotations

import numpy as np

from toydlm.bridge.cells import step_states
from toydlm.bridge.judges import keyword_refusal
from toydlm.measure import hrr_frr
from toydlm.real.audit.plan import AuditCell
from toydlm.real.kit.length_test import length_premise, length_test
from toydlm.trace import excess_of_terms


def cluster_ci(prompt: np.ndarray, values: np.ndarray, n_boot: int, seed: int) -> list[float] | None:
    """95% interval of the mean of `values` under a bootstrap over prompts; None when there are none."""
    values = np.asarray(values, np.float64)
    if not len(values):
        return None
    ids, inv = np.unique(np.asarray(prompt), return_inverse=True)
    sums = np.bincount(inv, values, len(ids))
    counts = np.bincount(inv, None, len(ids))
    draws = np.random.default_rng(seed).integers(0, len(ids), (n_boot, len(ids)))
    means = sums[draws].sum(1) / counts[draws].sum(1)
    return [float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))]


def refusals(samples: list[dict]) -> np.ndarray:
    """The keyword judge's refusal verdict of every row (on what the model wrote)."""
    return np.array([keyword_refusal(s["text"]) for s in samples], bool)


def verdict_arrays(samples: list[dict], refusal: np.ndarray, harmful: np.ndarray | None) -> dict:
    """Per-row arrays: prompt, length, ended, refusal and harmful (None for the benign cell)."""
    return {"prompt": np.array([s["prompt"] for s in samples]), "length": np.array([s["length"] for s in samples]),
            "ended": np.array([s["ended"] for s in samples], bool), "refusal": np.asarray(refusal, bool),
            "harmful": None if harmful is None else np.asarray(harmful, bool)}


def _head(cell: AuditCell) -> dict:
    """What names a cell in every table."""
    return {"sampler": cell.sampler.label, "attack": cell.attack, "temperature": cell.temperature,
            "gen_length": cell.gen_length}


def _mean(x: np.ndarray) -> float | None:
    return float(x.mean()) if len(x) else None


def recovery_rates(samples: list[dict], harmful: np.ndarray | None) -> tuple[float | None, float | None, int]:
    """HRR and FRR from a diffusion cell's step strings (None for AR, or when no row was ever pending)."""
    if not samples or "cr" not in samples[0]:
        return None, None, 0
    cr = np.array([[c == "1" for c in s["cr"]] for s in samples])
    dc = np.array([[c == "1" for c in s["dc"]] for s in samples])
    harm = np.asarray(harmful, bool) if harmful is not None else ~cr[:, -1]
    hrr, frr, n_p = hrr_frr(step_states(cr, dc, harm))
    return (None if n_p == 0 else hrr), (None if n_p == 0 else frr), n_p


def eos_excess(samples: list[dict]) -> float | None:
    """The cell's `eos_first_excess` from its rows' terms (None for AR or when undefined)."""
    terms = [s["eos"] for s in samples if s.get("eos") is not None]
    if not terms:
        return None
    a = np.array([[np.nan if x is None else x for x in t] for t in terms], np.float64)
    v = excess_of_terms(a[:, 0], a[:, 1], a[:, 2], a[:, 3])
    return None if not np.isfinite(v) else float(v)


def cell_row(cell: AuditCell, samples: list[dict], v: dict, n_boot: int) -> dict:
    """One row of `cells` (contract keys first, then extras) from the cell's rows and their verdicts `v`."""
    seed = cell.seed % 2**32
    ref, L = v["refusal"], v["length"].astype(np.float64)
    hrr, frr, n_p = recovery_rates(samples, v["harmful"])
    asr = None if v["harmful"] is None else float(v["harmful"].mean())
    return {**_head(cell), "n_prompts": len(cell.users), "samples_per_prompt": cell.samples,
            "n": len(samples), "refusal_rate": float(ref.mean()),
            "refusal_rate_ci95": cluster_ci(v["prompt"], ref, n_boot, seed),
            "asr": asr, "asr_ci95": None if asr is None else cluster_ci(v["prompt"], v["harmful"], n_boot, seed + 1),
            "mean_len_refusal": _mean(L[ref]), "mean_len_compliance": _mean(L[~ref]),
            "eos_first_excess": eos_excess(samples), "hrr": hrr, "frr": frr,
            "mean_length": float(L.mean()), "truncated_share": float((~v["ended"]).mean()), "n_ever_pending": n_p,
            "seed": cell.seed, "steps": None if cell.sampler.cfg.name == "ar" else
            cell.sampler.cfg.resolved(cell.gen_length).steps}


def length_rows(cell: AuditCell, v: dict, ks, n_boot: int) -> list[dict]:
    """The length test of one cell on the k grid (k up to the cell's length)."""
    grid = [k for k in ks if k <= cell.gen_length] or [cell.gen_length]
    rows = length_test(v["prompt"], v["length"], v["ended"], v["refusal"], v["harmful"], grid, n_boot,
                       cell.seed % 2**32)
    return [{**_head(cell), **r} for r in rows]


def distribution_row(cell: AuditCell, v: dict) -> dict:
    """Length distributions by verdict (`refusal`, `compliance`: counts, truncation, quantiles) of one cell,
    and every row's length, verdict and whether it ended (`row_*`)."""
    return {**_head(cell), **length_premise(v["length"], v["ended"], v["refusal"]),
            "row_length": [int(x) for x in v["length"]], "row_refusal": [bool(x) for x in v["refusal"]],
            "row_ended": [bool(x) for x in v["ended"]]}


def curve_point(cell: AuditCell, samples: list[dict], v: dict, n_boot: int) -> dict:
    """One point of a recovery curve: refusal and ASR with prompt-bootstrap intervals."""
    row = cell_row(cell, samples, v, n_boot)
    keep = ("sampler", "temperature", "gen_length", "n", "refusal_rate", "refusal_rate_ci95", "asr", "asr_ci95",
            "mean_length")
    return {"x": cell.x, **{k: row[k] for k in keep}}
