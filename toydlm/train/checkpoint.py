"""Checkpoints: one `.npz` of arrays plus a `meta.json`, in a directory renamed into place.

Why npz + JSON rather than orbax: the training state is ~1 MB of float32 arrays; a flat npz
keyed by pytree paths is readable with numpy alone, has no background threads or async
commits, and makes validation explicit (sha256 of the arrays in the metadata, every key and
shape checked against a template built from the stored model config). Atomicity: a checkpoint
is written into a hidden temp directory, fsynced, then renamed to `ckpt-<step>`; the run's
`LATEST` pointer is replaced atomically afterwards, so a crash leaves either the old or the
new checkpoint, never a half-written one.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import jax
import numpy as np
from flax import nnx

from toydlm.errors import UserError
from toydlm.io import atomic_write_text, file_sha256, git_revision, package_versions, to_jsonable

FORMAT = "toydlm-checkpoint/1"
META, ARRAYS, LATEST = "meta.json", "arrays.npz", "LATEST"


# ---------------------------------------------------------------------------- pytrees <-> flat
def flatten(tree: Any, prefix: str) -> dict[str, np.ndarray]:
    """`{prefix + keystr(path): array}` for every leaf of a pytree."""
    leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
    return {prefix + jax.tree_util.keystr(p): np.asarray(x) for p, x in leaves}


def unflatten(template: Any, arrays: dict[str, np.ndarray], prefix: str, where: str) -> Any:
    """Rebuild `template`'s structure from `arrays`, checking every key, shape and dtype."""
    paths, treedef = jax.tree_util.tree_flatten_with_path(template)
    out = []
    for p, ref in paths:
        k = prefix + jax.tree_util.keystr(p)
        if k not in arrays:
            raise UserError(f"checkpoint {where} does not match its model config: missing array {k}")
        a = arrays[k]
        if a.shape != tuple(ref.shape) or a.dtype != np.dtype(ref.dtype):
            raise UserError(
                f"checkpoint {where} does not match its model config: {k} is {a.dtype}{list(a.shape)}, "
                f"expected {np.dtype(ref.dtype)}{list(ref.shape)}"
            )
        out.append(a)
    extra = sorted(
        k
        for k in arrays
        if k.startswith(prefix) and k not in {prefix + jax.tree_util.keystr(p) for p, _ in paths}
    )
    if extra:
        raise UserError(f"checkpoint {where} does not match its model config: unexpected array {extra[0]}")
    return jax.tree_util.tree_unflatten(treedef, out)


# ---------------------------------------------------------------------------- write
def save_checkpoint(
    run_dir: str | Path, step: int, arrays: dict[str, np.ndarray], meta: dict, keep: int = 2
) -> Path:
    """Write `ckpt-<step>` atomically, point `LATEST` at it, keep the newest `keep`."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    name = f"ckpt-{step:07d}"
    tmp = Path(tempfile.mkdtemp(dir=run_dir, prefix=f".{name}."))
    try:
        with open(tmp / ARRAYS, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        prov = {} if "versions" in meta else {"versions": package_versions(), "git_revision": git_revision()}
        full = {
            "format": FORMAT,
            **prov,
            **meta,
            "step": int(step),
            "arrays_sha256": file_sha256(tmp / ARRAYS),
            "n_arrays": len(arrays),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        atomic_write_text(tmp / META, json.dumps(to_jsonable(full), indent=2) + "\n")
        final = run_dir / name
        if final.exists():  # re-saving the same step: move the old one aside first
            old = Path(tempfile.mkdtemp(dir=run_dir, prefix=f".old-{name}."))
            os.replace(final, old / name)
            shutil.rmtree(old)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    atomic_write_text(run_dir / LATEST, name + "\n")
    for stale in sorted(run_dir.glob("ckpt-*"))[:-keep] if keep > 0 else []:
        if stale.name != name:
            shutil.rmtree(stale, ignore_errors=True)
    return final


# ---------------------------------------------------------------------------- read
def find_checkpoint(path: str | Path) -> Path:
    """A checkpoint directory: `path` itself, the run's `LATEST`, or its newest `ckpt-*`."""
    p = Path(path)
    if (p / META).exists() or (p / ARRAYS).exists():
        return p
    if (p / LATEST).is_file():
        target = p / (p / LATEST).read_text().strip()
        if target.is_dir():
            return target
    cands = sorted(d for d in p.glob("ckpt-*") if d.is_dir()) if p.is_dir() else []
    if cands:
        return cands[-1]
    raise UserError(f"no checkpoint found in {p}")


def read_checkpoint(path: str | Path) -> tuple[dict, dict[str, np.ndarray], Path]:
    """(meta, arrays, dir) of a checkpoint, after integrity checks (complete, uncorrupted)."""
    d = find_checkpoint(path)
    for f in (META, ARRAYS):
        if not (d / f).is_file():
            raise UserError(f"checkpoint {d} is incomplete: {f} is missing")
    try:
        meta = json.loads((d / META).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise UserError(f"checkpoint {d} is corrupt: {META} is not valid JSON") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise UserError(
            f"checkpoint {d} has an unknown format {meta.get('format') if isinstance(meta, dict) else None!r}"
            f" (expected {FORMAT!r})"
        )
    missing = [
        k
        for k in ("step", "arch", "model_config", "grammar", "grammar_hash", "arrays_sha256")
        if k not in meta
    ]
    if missing:
        raise UserError(f"checkpoint {d} is corrupt: {META} lacks {missing[0]!r}")
    if file_sha256(d / ARRAYS) != meta["arrays_sha256"]:
        raise UserError(f"checkpoint {d} is corrupt: {ARRAYS} does not match the checksum in {META}")
    try:
        with np.load(d / ARRAYS, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except Exception as e:  # noqa: BLE001 - any unreadable archive is "corrupt"
        raise UserError(f"checkpoint {d} is corrupt: cannot read {ARRAYS} ({type(e).__name__})") from None
    return meta, arrays, d


def check_grammar(meta: dict, grammar, where: str | Path) -> None:
    """Raise if the checkpoint was trained on another grammar (config hash or vocabulary)."""
    want = grammar.config.config_hash()
    if meta["grammar_hash"] != want or meta["model_config"]["vocab_size"] != grammar.vocab_size:
        raise UserError(
            f"checkpoint {where} was trained on grammar {meta['grammar'].get('name')!r} "
            f"(hash {meta['grammar_hash']}, "
            f"vocab {meta['model_config']['vocab_size']}), not on grammar {grammar.config.name!r} "
            f"(hash {want}, vocab {grammar.vocab_size})"
        )


def grammar_of(meta: dict, where: str | Path):
    """The grammar a checkpoint was trained on, rebuilt from its stored config."""
    from toydlm.grammar import Grammar, GrammarConfig

    g = Grammar(GrammarConfig.from_dict(meta["grammar"]))
    if g.config.config_hash() != meta["grammar_hash"]:
        raise UserError(
            f"checkpoint {where}: stored grammar config does not reproduce its hash "
            f"{meta['grammar_hash']} (made by another version of the grammar code?)"
        )
    return g


def abstract_model(model_cfg: dict):
    """(graphdef, abstract params) of the stored model config, without running an init."""
    from toydlm.model import ModelConfig, Transformer

    cfg = ModelConfig.from_dict(model_cfg)
    abstract = nnx.eval_shape(lambda: Transformer(cfg, rngs=nnx.Rngs(0)))
    return nnx.split(abstract)


def load_checkpoint(path: str | Path):
    """(model, meta) from a run directory or a `ckpt-*` directory."""
    meta, arrays, d = read_checkpoint(path)
    graphdef, template = abstract_model(meta["model_config"])
    params = unflatten(template, arrays, "params", d)
    model = nnx.merge(graphdef, jax.tree.map(jax.numpy.asarray, params))
    return model, {**meta, "path": str(d)}


def load_denoiser(path: str | Path, grammar=None, response_logits_only: bool = False):
    """A JaxDenoiser for a checkpoint; validates the grammar's hash when one is given
    (`response_logits_only`: see `toydlm.model.make_denoiser`)."""
    from toydlm.model import make_denoiser

    model, meta = load_checkpoint(path)
    if grammar is None:
        grammar = grammar_of(meta, meta["path"])
    else:
        check_grammar(meta, grammar, meta["path"])
    return make_denoiser(model, meta["arch"], grammar, response_logits_only)
