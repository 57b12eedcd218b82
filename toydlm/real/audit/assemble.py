"""Put an audit's finished cells together into the `audit.json` record."""

from __future__ import annotations

from toydlm.real.audit import analyse
from toydlm.real.audit.plan import AuditCell
from toydlm.real.audit.spec import AuditConfig, sampler_texts


def assemble(cfg: AuditConfig, model: dict, cells: list[AuditCell], records: dict[str, dict], judge,
             key_model: dict, clock) -> dict:
    """model, settings, judge, cells, length_test, length_distributions, recovery and timing."""
    rows, tests, dists, curves = [], [], [], {"prefill": [], "injection": []}
    for c in cells:
        rec = records.get(c.name)
        if rec is None:
            continue
        harm = judge.harmful(c, c.spec(key_model), rec["samples"])
        if c.group in curves:
            curves[c.group].append(analyse.curve_point(c, rec["samples"], harm, cfg.n_boot))
            continue
        rows.append(analyse.cell_row(c, rec["samples"], harm, cfg.n_boot))
        tests += analyse.length_rows(c, rec["samples"], harm, cfg.ks, cfg.n_boot)
        dists.append(analyse.distribution_row(c, rec["samples"]))
    timing = {"rows": clock.rows, "tokens": clock.tokens, "seconds": clock.seconds,
              "tokens_per_s": clock.tokens / clock.seconds if clock.seconds else None,
              "estimated_seconds": clock.estimated_seconds,
              "note": "sampling of this invocation only (cells found in the store cost nothing); the estimate is "
                      "printed after the first decoded batch, from its measured rate"}
    return {"model": {k: model[k] for k in ("name", "path", "sha256", "kind", "mask_id", "end_tokens",
                                            "logits_shift")},
            "settings": _settings(cfg), "judge": judge.meta, "complete": not clock.stopped,
            "cells": rows, "length_test": tests, "length_distributions": dists,
            "recovery": {k: v for k, v in curves.items() if v}, "timing": timing}


def _settings(cfg: AuditConfig) -> dict:
    return {"prompts": cfg.prompts, "harmless": cfg.harmless, "n": cfg.n, "attacks": list(cfg.attacks),
            "samplers": list(sampler_texts(cfg)), "samples": cfg.samples,
            "temperatures": list(cfg.temperatures), "gen_lengths": list(cfg.gen_lengths), "steps": cfg.steps,
            "device": cfg.device, "dtype": cfg.dtype, "device_map": cfg.device_map, "batch_size": cfg.batch_size,
            "seed": cfg.seed, "max_minutes": cfg.max_minutes, "chat_template": cfg.chat, "ks": list(cfg.ks),
            "n_boot": cfg.n_boot}
