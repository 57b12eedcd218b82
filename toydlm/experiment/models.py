"""Learned models for a run: trained once, cached under a key of their full config, resumed."""

from __future__ import annotations

import hashlib
import json
import shutil
import warnings
from pathlib import Path

from toydlm.grammar import Grammar
from toydlm.io import atomic_write_json

DONE = "DONE.json"


def model_key(arch: str, preset: str, steps: int | None, seed: int, g: Grammar) -> str:
    """Hash of everything that decides the trained weights."""
    from toydlm.model import model_config
    from toydlm.train.config import resolve

    tcfg = resolve(arch, preset, steps)
    blob = json.dumps({"arch": arch, "preset": preset, "seed": seed, "grammar": g.config.to_dict(),
                       "model": model_config(preset, g, arch).to_dict(), "train": tcfg.to_dict()}, sort_keys=True)
    return f"{arch}-{preset}-{g.config.name}-s{seed}-{hashlib.sha256(blob.encode()).hexdigest()[:12]}"


def ensure_model(arch: str, preset: str, steps: int | None, seed: int, g: Grammar, cache: Path,
                 progress: bool = True):
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
        summary = train(arch, preset, d, steps=steps, seed=seed, resume=resume, grammar=g, progress=progress)
    except ValueError as e:
        if not resume:
            raise
        warnings.warn(f"could not resume {d} ({str(e).splitlines()[0]}); training from scratch", stacklevel=2)
        shutil.rmtree(d, ignore_errors=True)
        summary = train(arch, preset, d, steps=steps, seed=seed, resume=False, grammar=g, progress=progress)
    atomic_write_json(done, summary)
    return load_denoiser(d, g), summary
