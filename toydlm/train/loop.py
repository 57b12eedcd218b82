"""The training loop: seeded data stream, jitted steps, eval, JSONL log, checkpoints, resume.

`train(...)` is the one entry point (the CLI and `toydlm run` call it). Everything that can be
wrong with the request (arch, preset, steps, seed, grammar, batch vs devices, an existing
run) is checked before anything is compiled. Resuming restores params, optimiser state, step
and RNG, and the data stream is a function of (seed, step), so N + resume + N steps give the
same parameters as 2N straight.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from tqdm.auto import tqdm

from toydlm.io import atomic_write_json, provenance
from toydlm.model import check_arch, check_preset, count_params, init_model, model_config
from toydlm.train import checkpoint as ckpt
from toydlm.train.config import TrainConfig, resolve, validate
from toydlm.train.data import batch_at, eval_batch
from toydlm.train.sharding import data_mesh, replicate, shard_batch
from toydlm.train.step import lr_schedule, make_loss, make_optimizer, make_steps

LOG, SUMMARY = "log.jsonl", "summary.json"
EVAL_REPEATS = {"ar": 1, "mdlm": 4}  # independent mask draws averaged in the MDLM eval NELBO


class NonFiniteLoss(ValueError):
    """Training produced a NaN/inf loss; the run stopped and its last good checkpoint is kept."""


def _grammar(grammar):
    from toydlm.grammar import Grammar, load_grammar

    return grammar if isinstance(grammar, Grammar) else load_grammar(grammar)


def entropy_floor(grammar, tokens: np.ndarray) -> float:
    """Monte-Carlo H(response | prompt) per response token: the best either loss can reach."""
    P = grammar.prompt_len
    p = grammar.response_prob(tokens[:, :P], tokens[:, P:])
    return float(-np.log(p).mean() / (tokens.shape[1] - P))


def _check_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**31:
        raise ValueError(f"seed must be an integer in [0, 2^31), got {seed!r}")
    return int(seed)


def enable_compile_cache() -> None:
    """Use JAX's persistent compilation cache (same folder as the tests) unless one is set."""
    import os

    if not jax.config.jax_compilation_cache_dir:
        path = os.environ.get("TOYDLM_JAX_CACHE", str(Path.home() / ".cache" / "toydlm-jax"))
        jax.config.update("jax_compilation_cache_dir", path)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)


def usable_devices(tcfg: TrainConfig) -> list:
    """Every device when both batch sizes split evenly over them, else the first one alone.

    (The `toydlm` command splits the host CPU into two devices; an odd batch then simply runs
    on one.)"""
    devs = jax.devices()
    if len(devs) > 1 and (tcfg.batch % len(devs) or tcfg.eval_batch % len(devs)):
        return devs[:1]
    return devs


def _plan(arch, preset, out, steps, seed, resume, g, train_config, n_dev):
    """Validate the request; returns (train config, seed, start step, checkpoint arrays or None)."""
    check_arch(arch)
    check_preset(preset)
    seed = _check_seed(seed)
    if resume:
        meta, arrays, where = ckpt.read_checkpoint(out)
        ckpt.check_grammar(meta, g, where)
        if (meta["arch"], meta.get("preset")) != (arch, preset):
            raise ValueError(
                f"checkpoint {where} is a {meta['arch']}/{meta.get('preset')} run, not {arch}/{preset}"
            )
        tcfg = TrainConfig.from_dict(meta["train_config"])
        if steps is not None:
            tcfg = tcfg.replace(steps=steps)  # a new schedule horizon: no longer a straight run's twin
        return validate(tcfg, n_dev), int(meta["seed"]), int(meta["step"]), arrays
    if out.exists() and any(out.glob("ckpt-*")):
        raise ValueError(
            f"{out} already holds a checkpoint; pass --resume to continue it or choose another --out"
        )
    tcfg = train_config if train_config is not None else resolve(arch, preset, steps)
    return validate(tcfg, n_dev), seed, 0, None


def train(
    arch: str,
    preset: str,
    out_dir: str | Path,
    steps: int | None = None,
    seed: int = 0,
    resume: bool = False,
    grammar: Any = None,
    progress: bool = True,
    *,
    train_config: TrainConfig | None = None,
    stop_after: int | None = None,
    bar_position: int | None = None,
) -> dict:
    """Train an `ar` or `mdlm` model of a size preset on a grammar; returns a summary dict.

    `steps` is the schedule length (default: the preset's). `stop_after` ends the run early
    at that step (checkpointed), as an interruption would; `resume=True` continues the run
    in `out_dir` towards its stored `steps`. `grammar`: a Grammar, a preset name, a TOML path
    or None (default grammar).
    """
    out = Path(out_dir)
    enable_compile_cache()
    g = _grammar(grammar)
    tcfg, seed, start, arrays = _plan(arch, preset, out, steps, seed, resume, g, train_config, 1)
    devices = usable_devices(tcfg)
    if stop_after is not None and (not isinstance(stop_after, int) or stop_after < 1):
        raise ValueError(f"stop_after must be a positive integer, got {stop_after!r}")
    end = min(tcfg.steps, stop_after) if stop_after is not None else tcfg.steps

    mcfg = model_config(preset, g, arch)
    graphdef, params = nnx.split(init_model(mcfg, seed))
    tx = make_optimizer(tcfg)
    opt_state = tx.init(params)
    base_key = jax.random.PRNGKey(seed)
    if arrays is not None:
        params = ckpt.unflatten(params, arrays, "params", out)
        opt_state = ckpt.unflatten(opt_state, arrays, "opt", out)
        base_key = jnp.asarray(arrays["rng"])
    mesh = data_mesh(devices)
    params, opt_state = replicate(params, mesh), replicate(opt_state, mesh)
    loss_fn = make_loss(graphdef, arch, g.prompt_len, g.mask_id)
    train_step, eval_step = make_steps(loss_fn, tx, mesh)
    schedule = lr_schedule(tcfg)

    ev_np = eval_batch(g, seed, tcfg.eval_batch)
    ev_tokens = shard_batch(ev_np, mesh)
    floor = entropy_floor(g, ev_np)
    ev_keys = [
        jax.random.fold_in(jax.random.fold_in(base_key, 2**31 - 1), r) for r in range(EVAL_REPEATS[arch])
    ]
    meta = {
        "arch": arch,
        "preset": preset,
        "seed": seed,
        "model_config": mcfg.to_dict(),
        "train_config": tcfg.to_dict(),
        "grammar": g.config.to_dict(),
        "grammar_hash": g.config.config_hash(),
        "n_params": count_params(nnx.merge(graphdef, params)),
        "n_devices": len(devices),
    }
    out.mkdir(parents=True, exist_ok=True)

    def evaluate() -> float:
        return float(np.mean([float(eval_step(params, ev_tokens, k)["loss"]) for k in ev_keys]))

    def save(step: int) -> Path:
        arr = {
            **ckpt.flatten(params, "params"),
            **ckpt.flatten(opt_state, "opt"),
            "rng": np.asarray(base_key),
        }
        if not all(np.isfinite(a).all() for k, a in arr.items() if k.startswith("params")):
            raise NonFiniteLoss(
                f"parameters became non-finite by step {step}; training stopped, the last good "
                f"checkpoint is {last_good}"
            )
        return ckpt.save_checkpoint(out, step, arr, meta)

    log_f = open(out / LOG, "a")

    def log(rec: dict) -> None:
        log_f.write(json.dumps(rec) + "\n")
        log_f.flush()

    step, last_good = start, (ckpt.find_checkpoint(out) if resume else None)
    bar = tqdm(
        total=end,
        initial=start,
        disable=not progress,
        desc=f"train {arch}/{preset}",
        dynamic_ncols=True,
        position=bar_position,
        unit="step",
    )
    prov = provenance(seed)
    meta.update(versions=prov["versions"], git_revision=prov["git_revision"])
    log({"event": "start", "step": start, "end": end, "resume": bool(resume), "entropy_floor": floor, **meta})
    t_start = time.perf_counter()
    t_first, window, eval_loss = None, [], None
    try:
        while step < end:
            tokens = shard_batch(batch_at(g, seed, step, tcfg.batch), mesh)
            lr = np.float32(schedule(step))  # the rate of update number step + 1 (optax's count = step)
            new_params, new_opt, m = train_step(
                params, opt_state, tokens, jax.random.fold_in(base_key, step), lr
            )
            loss = float(m["loss"])
            if not math.isfinite(loss):
                raise NonFiniteLoss(
                    f"non-finite loss ({loss}) at step {step + 1}; training stopped, the last good "
                    f"checkpoint is {last_good}"
                )
            params, opt_state, step = new_params, new_opt, step + 1
            if t_first is None:
                t_first = time.perf_counter()  # the first step includes compilation
            window.append(loss)
            bar.update(1)
            if step % tcfg.log_every == 0 or step == end:
                sps = (
                    (step - start - 1) / max(time.perf_counter() - t_first, 1e-9)
                    if step - start > 1
                    else None
                )
                rec = {
                    "step": step,
                    "loss": float(np.mean(window)),
                    "lr": float(lr),
                    "grad_norm": float(m["grad_norm"]),
                    "steps_per_s": sps,
                }
                log(rec)
                bar.set_postfix(
                    loss=f"{rec['loss']:.4f}", **({"eval": f"{eval_loss:.4f}"} if eval_loss else {})
                )
                window = []
            if step % tcfg.eval_every == 0 or step == end:
                eval_loss = evaluate()
                log({"step": step, "eval_loss": eval_loss, "entropy_floor": floor})
            if step % tcfg.ckpt_every == 0 or step == end:
                last_good = save(step)
    except KeyboardInterrupt:
        if step > start:
            save(step)
        raise
    finally:
        bar.close()
        log_f.close()
    seconds = time.perf_counter() - t_start
    if eval_loss is None:
        eval_loss = evaluate()
    timed = step - start - 1
    summary = {
        "arch": arch,
        "preset": preset,
        "out_dir": str(out),
        "checkpoint": str(last_good),
        "start_step": start,
        "final_step": step,
        "steps": tcfg.steps,
        "seed": seed,
        "eval_loss": eval_loss,
        "entropy_floor": floor,
        "train_loss": float(np.mean(window)) if window else rec_loss(out),
        "seconds": seconds,
        "steps_per_s": timed / (time.perf_counter() - t_first) if timed > 0 else None,
        "n_params": meta["n_params"],
        "n_devices": len(devices),
        "grammar_hash": meta["grammar_hash"],
    }
    atomic_write_json(out / SUMMARY, summary)
    return summary


def rec_loss(out: Path) -> float | None:
    """The last logged training loss of a run (from its JSONL log)."""
    last = None
    with open(out / LOG) as f:
        for line in f:
            r = json.loads(line)
            if "loss" in r and "step" in r:
                last = r["loss"]
    return last


def read_log(out_dir: str | Path) -> list[dict]:
    """All records of a run's JSONL log."""
    with open(Path(out_dir) / LOG) as f:
        return [json.loads(line) for line in f if line.strip()]
