"""Put an audit's finished cells together into the `audit.json` record."""

from __future__ import annotations

from toydlm.real.audit import analyse
from toydlm.real.audit.plan import AuditCell
from toydlm.real.audit.spec import AuditConfig, settings


def assemble(cfg: AuditConfig, model: dict, cells: list[AuditCell], records: dict[str, dict], judge,
             key_model: dict, clock) -> dict:
    """model, settings, judge, cells, length_test, length_distributions, recovery and timing."""
    rows, tests, dists, curves = [], [], [], {"prefill": [], "injection": []}
    for c in cells:
        rec = records.get(c.name)
        if rec is None:
            continue
        samples = rec["samples"]
        refusal = analyse.refusals(samples)
        v = analyse.verdict_arrays(samples, refusal, judge.harmful(c, c.spec(key_model), samples, refusal))
        if c.group in curves:
            curves[c.group].append(analyse.curve_point(c, samples, v, cfg.n_boot))
            continue
        rows.append(analyse.cell_row(c, samples, v, cfg.n_boot))
        tests += analyse.length_rows(c, v, cfg.ks, cfg.n_boot)
        dists.append(analyse.distribution_row(c, v))
    timing = {"rows": clock.rows, "tokens": clock.tokens, "seconds": clock.seconds,
              "tokens_per_s": clock.tokens / clock.seconds if clock.seconds else None,
              "estimated_seconds": clock.estimated_seconds,
              "note": "sampling of this invocation only (cells found in the store cost nothing); the estimate is "
                      "printed after the first decoded batch, from its measured rate"}
    return {"model": {k: model[k] for k in ("name", "path", "sha256", "kind", "mask_id", "end_tokens",
                                            "logits_shift")} | {"twins_student": bool(model.get("student"))},
            "settings": settings(cfg), "judge": judge.meta, "complete": not clock.stopped,
            "cells": rows, "length_test": tests, "length_distributions": dists,
            "recovery": {k: v for k, v in curves.items() if v}, "timing": timing}

