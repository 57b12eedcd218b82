"""`toydlm run`: train or reuse the models, measure every cell, predict it, write the report.

A run is six stages, each a function below: models, cells, theory, calibration, SRI, report.
Resumable: each finished cell is written atomically to `DIR/cells/<key>.json`, each theory
prediction to `DIR/oracle_sim/<group>.json`, and neither is recomputed; a corrupt file is
recomputed with a warning (a run folder from before the `oracle_sim` name keeps its theory in
`DIR/v2/`, which is not read: those predictions are simply recomputed). Models are cached under
`$TOYDLM_CACHE/models` (see `toydlm.experiment.models`) keyed by the hash of their full config.
"""

from __future__ import annotations

import os
import time
import warnings
from dataclasses import asdict
from pathlib import Path

import numpy as np
from tqdm import tqdm

from toydlm.compiles import count_compiles
from toydlm.errors import UserError
from toydlm.experiment.cells import Cell, enumerate_cells, stable_seed
from toydlm.experiment.metrics import measure_cell, measure_cell_seeds, seed_spread
from toydlm.experiment.models import ensure_models, models_cache, stored_model_dir
from toydlm.experiment.pooling import ESTIMATOR, pool_seeds, pooled_curves, rows_of_seed
from toydlm.experiment.predict import apply_predictions, calibration, fit_offsets, oracle_sim_predict
from toydlm.experiment.presets import RunPreset, get_preset
from toydlm.grammar import grammar_oracle, load_grammar
from toydlm.io import atomic_write_json, env_switch, provenance, read_json_or_none, to_jsonable

ARCHS = ("ar", "mdlm")  # the learned architectures, trained on every learned grammar
TRAINING_KEYS = ("out_dir", "steps", "eval_loss", "entropy_floor", "train_loss", "seconds", "n_params")


def run(preset: str | RunPreset = "default", seed: int = 0, out: str | Path = "runs/default",
        progress: bool = True) -> dict:
    """Run a preset end to end; returns the summary (also written to `out/summary.json`)."""
    p = get_preset(preset) if isinstance(preset, str) else preset
    out = Path(out)
    start = time.perf_counter()
    timings: dict[str, float] = {}
    cells = enumerate_cells(p)
    grammars = {name: load_grammar(name) for name in p.grammars}
    with count_compiles() as compiles:
        denoisers, training = model_stage(p, grammars, progress)
        timings["models_s"] = time.perf_counter() - start
        measured = _timed(timings, "cells_s", cell_stage, p, cells, grammars, denoisers, out, seed, progress)
        offsets, preds = _timed(timings, "theory_s", theory_stage, p, cells, measured, out, seed, progress)
        rows = cell_rows(cells, measured, preds)
        sri = _timed(timings, "sri_s", sri_stage, p, grammars, denoisers, out, seed, progress)
    pooled = pool_seeds(rows)
    summary = {
        **provenance(seed=seed, config={"preset": p.name, "run_preset": asdict(p)}),
        "cells": pooled,
        "calibration": calibration_over_seeds(pooled, rows, p.model_seeds),
        "model_offsets": offsets,
        "training": training,
        "controls": controls(pooled, grammars),
        "sri_guard": (sri or {}).get("primary"),
        "sri": sri,
        "seed_spread": seed_spread(rows) if len(p.model_seeds) > 1 else None,
        "timings": {**timings, "total_s": time.perf_counter() - start, **compiles.to_dict()},
    }
    report_stage(summary, cells, measured, out)
    return summary


def calibration_over_seeds(pooled: list[dict], rows: list[dict], seeds: tuple[int, ...]) -> dict:
    """Held-out calibration of the pooled cells, and `per_seed`: each training seed's cells (with the
    oracle's), as a run of that seed alone would report them."""
    return {**calibration(pooled), "per_seed": {str(s): calibration(rows_of_seed(rows, s)) for s in seeds},
            "pooling": ESTIMATOR}


def _timed(timings: dict[str, float], name: str, stage, *args):
    """Run one stage, recording its wall-clock seconds under `name`."""
    t = time.perf_counter()
    result = stage(*args)
    timings[name] = time.perf_counter() - t
    return result


def model_stage(p: RunPreset, grammars: dict, progress: bool) -> tuple[dict, dict]:
    """Models: the learned models (trained, or read from the cache) and each grammar's exact oracle.

    Returns the denoisers keyed by (grammar, model, training seed) and the training record of each
    learned model (its folder relative to `$TOYDLM_CACHE`, so no machine path is stored).
    """
    jobs = [(gname, arch, s) for gname in p.learned_grammars if gname in grammars for arch in ARCHS
            for s in p.model_seeds]
    got = ensure_models([(arch, p.model_preset, p.train_steps.get(arch), s, grammars[gname])
                         for gname, arch, s in jobs], models_cache(), progress)
    denoisers, training = {}, {}
    for (gname, arch, s), (den, info) in zip(jobs, got):
        denoisers[(gname, arch, s)] = den
        record = {k: info.get(k) for k in TRAINING_KEYS}
        record["out_dir"] = stored_model_dir(info["out_dir"])
        training[f"{gname}/{arch}/s{s}"] = record
    for gname, g in grammars.items():
        denoisers[(gname, "oracle", None)] = grammar_oracle(g)
    return denoisers, training


def cell_n(p: RunPreset, c: Cell) -> int:
    """Prompts sampled for a cell: fit cells get `fit_n_factor` times more (see RunPreset)."""
    return p.n * (p.fit_n_factor if c.fit else 1)


def cell_stage(p: RunPreset, cells: list[Cell], grammars: dict, denoisers: dict, out: Path, seed: int,
               progress: bool) -> dict[str, dict]:
    """Cells: every cell's measurements, read back from `out/cells/` where a previous attempt finished it."""
    (out / "cells").mkdir(parents=True, exist_ok=True)
    measured: dict[str, dict] = {}
    todo = []
    for c in cells:
        rec = read_json_or_none(out / "cells" / f"{c.key}.json", "cell result")
        if rec is not None and rec.get("cell", {}).get("key") == c.key and rec["metrics"].get("n") == cell_n(p, c):
            measured[c.key] = rec["metrics"]
        else:
            todo.append(c)
    bar = tqdm(total=len(todo), desc="cells", disable=not progress, unit="cell")
    for group in seed_groups(todo):
        c = group[0]
        # seeded by attack: every sampler of a cell family sees the same prompts (and every training seed)
        cell_seed = seed * 1_000_003 + stable_seed(c.attack)
        dens = [denoisers[(x.grammar, x.model, x.seed)] for x in group]
        if len(group) > 1 and stack_seeds():
            ms = measure_cell_seeds(c, grammars[c.grammar], dens, cell_n(p, c), cell_seed)
        else:
            ms = [measure_cell(x, grammars[c.grammar], d, cell_n(p, c), cell_seed) for x, d in zip(group, dens)]
        for x, m in zip(group, ms):
            atomic_write_json(out / "cells" / f"{x.key}.json", {"cell": x.to_dict(), "metrics": m})
            measured[x.key] = to_jsonable(m)
        bar.update(len(group))
    bar.close()
    return measured


def stack_seeds() -> bool:
    """Whether a learned cell's training seeds are sampled in one stacked program (`$TOYDLM_STACK_SEEDS=1`).

    Off by default: on the 2-core development machine the stacked program ran at 0.66x the speed of
    the seeds one after another (`toydlm bench sample`, `speedup_vs_sequential_seeds`); the per-seed
    results are the same either way, so a machine where stacking pays (an accelerator) can turn it on."""
    return env_switch("TOYDLM_STACK_SEEDS", default=False)


def seed_groups(cells: list[Cell]) -> list[list[Cell]]:
    """Cells that differ only in the learned model's training seed, together (sampled in one program);
    an oracle cell alone."""
    groups: dict[tuple, list[Cell]] = {}
    for i, c in enumerate(cells):
        k = (c.grammar, c.model, c.sampler, c.temperature, c.attack) if c.seed is not None else (i,)
        groups.setdefault(k, []).append(c)
    return list(groups.values())


def theory_stage(p: RunPreset, cells: list[Cell], measured: dict[str, dict], out: Path, seed: int,
                 progress: bool) -> tuple[dict, dict]:
    """Theory: oracle_sim once per distinct (grammar, sampler, temperature, attack), the learned models'
    offsets fitted on the fit cells alone, and every cell's prediction. Returns (offsets, predictions)."""
    groups: dict[str, list[Cell]] = {}
    for c in cells:
        groups.setdefault(f"{c.grammar}__{c.sampler.label}__temp{c.temperature:g}__{c.attack}", []).append(c)
    (out / "oracle_sim").mkdir(parents=True, exist_ok=True)
    by_group = predict_groups(groups, out / "oracle_sim", p.oracle_sim_n, seed, progress)
    sim = {c.key: by_group[gk] for gk, cs in groups.items() for c in cs}
    offsets = fit_offsets(cells, measured, sim)  # reads fit cells only
    return offsets, apply_predictions(cells, sim, offsets)


def cell_rows(cells: list[Cell], measured: dict[str, dict], preds: dict[str, dict]) -> list[dict]:
    """Calibration input: one summary row per cell, its measurements (no curves) beside its prediction."""
    rows = []
    for c in cells:
        m = measured[c.key]
        rows.append({"model": c.model, "sampler": c.sampler.label, "attack": c.attack, "grammar": c.grammar,
                     "model_seed": c.seed, "temperature": c.temperature, "sampler_config":
                     c.sampler.config_dict(c.temperature), **{k: v for k, v in m.items() if k != "curves"},
                     **preds[c.key], "heldout": not c.fit, "key": c.key})
    return rows


def controls(rows: list[dict], grammars: dict) -> dict:
    """The calibration controls docs/prior-evidence.md demands: AR order and one-token random on the same
    weights must reproduce the grammar's exact rates at temperature 1 (within 3 SE)."""
    out = []
    for r in rows:
        if r["temperature"] != 1.0 or r["sampler"] not in ("ar", "ar_order", "random_T16"):
            continue
        ex = r.get("exact_harmful_rate")
        if ex is None:
            continue
        z = (r["asr"] - ex) / max(r["asr_se"], 1e-9) if r["asr_se"] else float("inf") * (r["asr"] != ex)
        out.append({"grammar": r["grammar"], "model": r["model"], "sampler": r["sampler"], "attack": r["attack"],
                    "asr": r["asr"], "exact": ex, "z": float(z) if np.isfinite(z) else None,
                    "within_3se": bool(abs(r["asr"] - ex) <= max(3 * r["asr_se"], 1e-9))})
    n_ok = sum(o["within_3se"] for o in out)
    return {"n": len(out), "n_within_3se": n_ok, "rows": out}


def sri_stage(p: RunPreset, grammars: dict, denoisers: dict, out: Path, seed: int, progress: bool) -> dict | None:
    """SRI: `out/sri.json` when a previous attempt wrote it, else `run_sri` (None for a preset without SRI)."""
    sri = read_json_or_none(out / "sri.json", "SRI result")
    if sri is None and p.sri_samplers:
        sri = run_sri(p, grammars, denoisers, seed, progress)
        atomic_write_json(out / "sri.json", sri)
    return sri


def report_stage(summary: dict, cells: list[Cell], measured: dict[str, dict], out: Path) -> None:
    """Report: `summary.json`, the per-cell step-wise curves (`curves.json`), figures and `report.md`."""
    from toydlm.experiment.report import write_report

    atomic_write_json(out / "summary.json", summary)
    curves = {c.key: measured[c.key].get("curves") for c in cells}
    curves |= to_jsonable(pooled_curves(summary["cells"], curves))
    atomic_write_json(out / "curves.json", curves)
    write_report(summary, curves, out)


def theory_workers() -> int:
    """Processes for the oracle_sim (Model v2) simulations (`$TOYDLM_THEORY_WORKERS`, default: up to 2 cores).

    The simulator is single-threaded numpy, so on a 2-core machine two processes halve the stage."""
    env = os.environ.get("TOYDLM_THEORY_WORKERS")
    if env is not None:
        if not env.isdigit() or int(env) < 1:
            raise UserError(f"TOYDLM_THEORY_WORKERS={env!r}: must be a positive integer")
        return int(env)
    return max(1, min(2, os.cpu_count() or 1))


def _oracle_sim_job(cell: Cell, grammar_name: str, n: int, seed: int) -> dict:
    return oracle_sim_predict(cell, load_grammar(grammar_name), n, seed=seed)


def predict_groups(groups: dict[str, list[Cell]], folder: Path, n: int, seed: int, progress: bool) -> dict:
    """oracle_sim (Model v2) for one representative cell per group, resumable (one atomic JSON per group)."""
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool
    from multiprocessing import get_context

    recs, todo = {}, []
    for gk, cs in groups.items():
        path = folder / f"{gk.replace(':', '-').replace('@', 'at')}.json"
        rec = read_json_or_none(path, "theory prediction")
        if rec is None:
            todo.append((gk, cs[0], path, seed * 7 + stable_seed(gk)))
        else:
            recs[gk] = rec
    bar = tqdm(total=len(groups), initial=len(recs), desc="theory (oracle_sim)", disable=not progress, unit="cell")

    def store(gk: str, path: Path, rec: dict) -> None:
        recs[gk] = to_jsonable(rec)  # NaN is stored as null: fresh and resumed records agree
        atomic_write_json(path, recs[gk])
        bar.update(1)

    workers = min(theory_workers(), len(todo)) if todo else 0  # the env is read only when there is work
    if workers > 1:
        # spawn: the parent already runs JAX threads, which a fork would copy half-initialised
        try:
            with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as ex:
                futs = {ex.submit(_oracle_sim_job, c, c.grammar, n, s): (gk, path) for gk, c, path, s in todo}
                for f in as_completed(futs):
                    store(*futs[f], f.result())
        except BrokenProcessPool:
            # e.g. a script without an `if __name__ == "__main__":` guard, which spawned workers re-run
            warnings.warn("theory worker processes failed to start or died; finishing the theory stage in this "
                          "process (guard a calling script with `if __name__ == '__main__':`)", stacklevel=2)
    for gk, c, path, s in todo:  # serially: everything with one worker, what a broken pool left otherwise
        if gk not in recs:
            store(gk, path, _oracle_sim_job(c, c.grammar, n, s))
    bar.close()
    return recs


def run_sri(p: RunPreset, grammars: dict, denoisers: dict, seed: int, progress: bool) -> dict:
    """SRI on the first learned grammar. The first of `p.sri_samplers` gets the full detector evaluation
    (SRI Guard vs baselines, layer ablation, overheads; `primary`, i.e. `sri_guard` in the summary); the
    others add ASR, IRR and trajectories only (Figs. 5-6), which need no detector. Label `ar` is the AR
    model with its own sampler; every other label is an MDLM sampler of the preset."""
    from toydlm.experiment.cells import AR_VARIANT
    from toydlm.experiment.sri_eval import evaluate
    from toydlm.sri.baselines import guard_model_baseline

    gname = p.learned_grammars[0]
    g = grammars[gname]
    s0 = p.model_seeds[0]
    fam = list(g.config.wrapper_families)
    gm = guard_model_baseline(g, [f for f in fam if f not in g.config.unseen_families], seed)
    res = {}
    for i, label in enumerate(tqdm(p.sri_samplers, desc="SRI", disable=not progress)):
        arch = "ar" if label == "ar" else "mdlm"
        v = AR_VARIANT if label == "ar" else next(x for x in p.samplers if x.label == label)
        # the IRR-only passes need benign prompts for the centres alone: n_attack of them (one batch shape)
        res[f"{arch}/{label}"] = evaluate(denoisers[(gname, arch, s0)], g, v.config_dict(1.0), seed,
                                          n_benign=p.sri_n_benign if i == 0 else p.sri_n_attack,
                                          n_attack=p.sri_n_attack, ar_den=denoisers[(gname, "ar", s0)],
                                          guard_model=gm, detectors=i == 0)
    first = next(iter(res))
    primary = res[first]["sri_guard"] | {"model_sampler": first}
    return {"primary": primary, "runs": res}
