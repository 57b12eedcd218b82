"""Learned models for a run: trained once, cached under a key of their full config, resumed.

The cache lives under `$TOYDLM_CACHE` (default `~/.cache/toydlm`), one folder per model in
`models/<model_key>`. Results record a model's folder relative to `$TOYDLM_CACHE`, never as a path
of the machine that trained it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import warnings
from pathlib import Path

from toydlm.errors import UserError
from toydlm.grammar import Grammar
from toydlm.io import atomic_write_json, cache_dir, env_switch

DONE = "DONE.json"
MODELS_DIR = "models"  # under $TOYDLM_CACHE


def models_cache() -> Path:
    """The folder of the cached trained models, `$TOYDLM_CACHE/models`."""
    return cache_dir() / MODELS_DIR


def stored_model_dir(model_dir: str | Path) -> str:
    """A cached model's folder as results record it: relative to `$TOYDLM_CACHE` (`models/<model_key>`)."""
    return f"{MODELS_DIR}/{Path(model_dir).name}"


def model_key(arch: str, preset: str, steps: int | None, seed: int, g: Grammar) -> str:
    """Hash of everything that decides the trained weights."""
    from toydlm.model import model_config
    from toydlm.train.config import resolve

    tcfg = resolve(arch, preset, steps)
    blob = json.dumps({"arch": arch, "preset": preset, "seed": seed, "grammar": g.config.to_dict(),
                       "model": model_config(preset, g, arch).to_dict(), "train": tcfg.to_dict()}, sort_keys=True)
    return f"{arch}-{preset}-{g.config.name}-s{seed}-{hashlib.sha256(blob.encode()).hexdigest()[:12]}"


def ensure_model(arch: str, preset: str, steps: int | None, seed: int, g: Grammar, cache: Path,
                 progress: bool = True, bar_position: int | None = None):
    """(JaxDenoiser, training summary) from the cache, training or resuming as needed.

    A corrupt cache entry is reported with a warning and retrained.
    """
    from toydlm.train import train
    from toydlm.train.checkpoint import load_denoiser

    d = Path(cache) / model_key(arch, preset, steps, seed, g)
    done = d / DONE
    if done.is_file():
        try:
            summary = json.loads(done.read_text())
            return load_denoiser(d, g), summary
        except (ValueError, OSError, KeyError, json.JSONDecodeError) as e:
            warnings.warn(f"cached model {d} is corrupt ({str(e).splitlines()[0]}); retraining it", stacklevel=2)
            shutil.rmtree(d, ignore_errors=True)
    resume = d.exists() and any(d.glob("ckpt-*"))
    if d.exists() and not resume:
        shutil.rmtree(d)
    try:
        summary = train(arch, preset, d, steps=steps, seed=seed, resume=resume, grammar=g, progress=progress,
                        bar_position=bar_position)
    except ValueError as e:
        if not resume:
            raise
        warnings.warn(f"could not resume {d} ({str(e).splitlines()[0]}); training from scratch", stacklevel=2)
        shutil.rmtree(d, ignore_errors=True)
        summary = train(arch, preset, d, steps=steps, seed=seed, resume=False, grammar=g, progress=progress,
                        bar_position=bar_position)
    atomic_write_json(done, summary)
    return load_denoiser(d, g), summary


def _train_in_worker(arch: str, preset: str, steps: int | None, seed: int, grammar_config, cache: str,
                     progress: bool, position: int) -> str:
    from toydlm.grammar import Grammar as G

    ensure_model(arch, preset, steps, seed, G(grammar_config), Path(cache), progress, bar_position=position)
    return model_key(arch, preset, steps, seed, G(grammar_config))


def train_workers() -> int:
    """Models trained at once (`$TOYDLM_TRAIN_WORKERS`, default 1). One training already keeps both
    cores of a 2-core machine busy: measured there, two workers ran at 2.8 steps/s each against 5.4
    alone, so the default `toydlm run` took as long (444 s of training) as serially. More workers
    pay off only on machines with many more cores than one small model can use."""
    env = os.environ.get("TOYDLM_TRAIN_WORKERS")
    if env is None:
        return 1
    if not env.isdigit() or int(env) < 1:
        raise UserError(f"TOYDLM_TRAIN_WORKERS must be a positive integer, got {env!r}")
    return int(env)


def train_ensembles() -> bool:
    """Whether `toydlm run` trains an architecture's seeds as one seed ensemble (`$TOYDLM_TRAIN_ENSEMBLE`,
    default 1) rather than one after another (0). Both give the same models up to float rounding. On the
    2-core development machine the ensemble was at best as fast (`toydlm bench train`,
    `ensemble_loop_speedup`: 0.56-1.05 over five measurements); measure yours before choosing. The
    stored results come from ensembles."""
    return env_switch("TOYDLM_TRAIN_ENSEMBLE", default=True)


def ensure_models(jobs: list[tuple[str, str, int | None, int, Grammar]], cache: Path, progress: bool = True,
                  workers: int | None = None) -> list[tuple]:
    """`ensure_model` for each (arch, preset, steps, seed, grammar) job. The ones not cached are trained
    first: jobs that differ only in their seed as one seed ensemble (`toydlm.train.ensemble`), or, with
    more than one worker, each in a worker process (spawned: JAX does not survive fork)."""
    workers = train_workers() if workers is None else workers
    missing = [j for j in jobs if not (Path(cache) / model_key(*j) / DONE).is_file()]
    if workers == 1 and train_ensembles():
        for group in _seed_groups(missing):
            if len(group) > 1:
                ensure_ensemble(group, Path(cache), progress)
    elif workers > 1 and len(missing) > 1:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=min(workers, len(missing)), mp_context=mp.get_context("spawn")) as ex:
            futs = [ex.submit(_train_in_worker, a, p, s, sd, g.config, str(cache), progress, i % workers)
                    for i, (a, p, s, sd, g) in enumerate(missing)]
            for f in futs:
                f.result()
    return [ensure_model(*j, cache, progress) for j in jobs]


def _seed_groups(jobs: list[tuple]) -> list[list[tuple]]:
    """Jobs grouped by everything but the seed (arch, preset, steps, grammar), in first-appearance order."""
    groups: dict[tuple, list[tuple]] = {}
    for j in jobs:
        arch, preset, steps, _, g = j
        groups.setdefault((arch, preset, steps, g.config.config_hash()), []).append(j)
    return list(groups.values())


def ensure_ensemble(jobs: list[tuple], cache: Path, progress: bool = True) -> None:
    """Train the seeds of one (arch, preset, steps, grammar) as a seed ensemble into their cache folders.

    Members with a checkpoint resume (per member, from its own step); the rest start fresh. A member
    that cannot be resumed is retrained from scratch with a warning, as `ensure_model` does.
    """
    from toydlm.train.ensemble import train_ensemble

    arch, preset, steps, _, g = jobs[0]
    dirs = {j[3]: cache / model_key(*j) for j in jobs}
    for d in dirs.values():
        if d.exists() and not any(d.glob("ckpt-*")):
            shutil.rmtree(d)
    resumable = [s for s, d in dirs.items() if d.exists()]
    fresh = [s for s in dirs if s not in resumable]
    if resumable:
        try:
            _done(train_ensemble(arch, preset, [dirs[s] for s in resumable], resumable, steps=steps, resume=True,
                                 grammar=g, progress=progress))
        except ValueError as e:
            warnings.warn(f"could not resume seeds {resumable} of {arch}/{preset} ({str(e).splitlines()[0]}); "
                          "training them from scratch", stacklevel=2)
            for s in resumable:
                shutil.rmtree(dirs[s], ignore_errors=True)
            fresh = list(dirs)
    if fresh:
        _done(train_ensemble(arch, preset, [dirs[s] for s in fresh], fresh, steps=steps, grammar=g,
                             progress=progress))


def _done(summaries: list[dict]) -> None:
    for s in summaries:
        atomic_write_json(Path(s["out_dir"]) / DONE, s)
