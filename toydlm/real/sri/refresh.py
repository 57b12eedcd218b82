"""Refresh SRI Guard's section of the stored real-SRI report from a run's stored cells, without the detector
stages: the bootstrap intervals per attack family and over all successes, the share flagged, and the two
checks of `toydlm.real.sri.guard_checks`; when the work folder holds a cost run (`real_sri.py detectors` writes it
first), every overhead is taken from it instead of the stored report.

The section is recomputed from the cells and must reproduce what the report file already says (threshold,
false-positive rate and every AUROC); a difference stops the refresh with the list of fields unless it is
accepted explicitly, so no conclusion changes silently. Fields that come from the cost run are kept.
"""

from __future__ import annotations

import math
from pathlib import Path

from toydlm.errors import UserError
from toydlm.io import atomic_write_json, provenance, read_json_or_none
from toydlm.real.kit.store import CellStore
from toydlm.real.sri.guard_checks import answered_only, literal_end_padding, summary
from toydlm.real.sri.guard_eval import SPLITS, fitted_guard_section
from toydlm.real.sri.load import Loaded, anchor_records, lengths, load_run, refusals
from toydlm.real.sri.report import COST_FILE, add_costs, guard_inputs

REPRODUCED = ("threshold", "n_neg", "n_pos", "fpr_benign", "auroc", "auroc_unseen", "auroc_unseen_ci95", "n_params")


def recompute(run: Loaded, work: Path) -> tuple[dict, dict]:
    """(SRI Guard's section, the two checks) from the stored cells of `run`."""
    inputs = guard_inputs(run)
    if inputs is None:
        raise UserError("the guard cells and the judged attack cells must all be stored: run `real_sri.py signals` "
                        "and `real_sri.py judge` first")
    attacks, sig, success = inputs
    _, section = fitted_guard_section(sig, success, attacks)
    anchors = dict(zip(("benign", "harmful"), ((s, lengths(r), refusals(r))
                                                for r, s in anchor_records(CellStore(work), run.model, run.sha))))
    checks = {"main": summary(section),
              "answered_harmless_only": answered_only(sig, {k: run.refused(k) for k in SPLITS}, success, attacks),
              "literal_end_padding": literal_end_padding(
                  {k: run.states[k] for k in sig}, {k: run.lengths(k) for k in sig}, anchors, success, attacks)}
    return section, checks


def _close(a, b) -> bool:
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b))
    if isinstance(a, int | float) and isinstance(b, int | float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    return a == b


def differences(old: dict, new: dict) -> list[str]:
    """Reproduced fields of SRI Guard's section (and each family's AUROC) that differ between two reports."""
    out = [f"{k}: {old.get(k)} -> {new.get(k)}" for k in REPRODUCED if not _close(old.get(k), new.get(k))]
    for fam, v in (old.get("per_family") or {}).items():
        w = (new.get("per_family") or {}).get(fam, {})
        out += [f"per_family.{fam}.{k}: {v.get(k)} -> {w.get(k)}" for k in ("n_pos", "auroc", "tpr")
                if not _close(v.get(k), w.get(k))]
    return out


def refresh(model: str, work: Path, out: Path, accept_changes: bool = False) -> dict:
    """Recompute SRI Guard's section and checks; update `real_sri_signal.json` and `real_sri.json` in `out`."""
    details, contract = out / "real_sri_signal.json", out / "real_sri.json"
    old = read_json_or_none(details, "real-SRI report")
    if old is None or not contract.exists():
        raise UserError(f"{details} and {contract} must exist: run `real_sri.py report` once first")
    run = load_run(model, work)
    section, checks = recompute(run, work)
    diff = differences(old["sri_guard"], section)
    if diff and not accept_changes:
        raise UserError("the stored cells do not reproduce the report's SRI Guard numbers ("
                        + "; ".join(diff) + "); rerun with --accept-changes to replace them")
    kept = {k: v for k, v in old["sri_guard"].items() if k not in section}  # the cost run's fields
    guard = section | kept | {"provenance": provenance(seed=0), "reproduced_stored_report": not diff,
                              "differences_from_stored_report": diff}
    cost = read_json_or_none(work / COST_FILE, "cost run") if (work / COST_FILE).exists() else None
    baselines = {k: dict(v) for k, v in old["baselines"].items()}
    if cost is not None:  # a cost run in this work folder replaces the stored one (and every overhead from it)
        add_costs(guard, baselines, cost)
    for path in (details, contract):
        rep = read_json_or_none(path, "real-SRI report")
        rep["sri_guard"] = guard
        rep["sri_guard_checks"] = checks
        if cost is not None:
            rep["baselines"] = baselines
            if "cost" in rep:
                rep["cost"] = cost
        atomic_write_json(path, rep)
    print(f"refreshed SRI Guard in {contract} and {details} ({'reproduced' if not diff else 'CHANGED: ' + str(diff)})",
          flush=True)
    return {"sri_guard": guard, "sri_guard_checks": checks, "differences": diff}
