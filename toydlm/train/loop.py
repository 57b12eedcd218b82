"""The training loop: seeded data stream, jitted steps, eval, JSONL log, checkpoints, resume.

`train(...)` is the one entry point (the CLI and `toydlm run` call it). Everything that can be
wrong with the request (arch, preset, steps, seed, grammar, an existing run) is checked before
anything is compiled. Resuming restores params, optimiser state, step and RNG, and the data
stream is a function of (seed, step), so N + resume + N steps give the same parameters as 2N
straight.

A run goes through named steps over explicit records: `make_plan` (`plan.py`) validates the
request into a `Plan`; `_set_up` builds the model, optimiser and compiled steps into a `Run`
(fixed from then on) and the first `State` (what each update changes); `_update` makes one
optimiser update, `_at_cadence` logs, evaluates and checkpoints, and `_summary` reports.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax.sharding import Mesh
from tqdm.auto import tqdm

from toydlm.io import atomic_write_json, provenance
from toydlm.model import count_params, init_model, model_config
from toydlm.parallel import data_mesh, devices_for, replicate, shard_batch
from toydlm.train import checkpoint as ckpt
from toydlm.train.config import TrainConfig
from toydlm.train.data import batch_at, eval_batch
from toydlm.train.early_stop import BEST, Patience, init_params_from
from toydlm.train.plan import Plan, make_plan
from toydlm.train.step import lr_schedule, make_loss, make_optimizer, make_steps

LOG, SUMMARY = "log.jsonl", "summary.json"
EVAL_REPEATS = {"ar": 1, "mdlm": 4}  # independent mask draws averaged in the MDLM eval NELBO
EVAL_STREAM = 2**31 - 1  # eval repeat r's key: fold_in(fold_in(run key, EVAL_STREAM), r)


class NonFiniteLoss(ValueError):
    """Training produced a NaN/inf loss; the run stopped and its last good checkpoint is kept."""


def _grammar(grammar):
    """A grammar (or a preset name, TOML path or None), or any data source with `sample` and `config`
    (a corpus of real text, `toydlm.real.twins.dataset.CorpusTask`)."""
    from toydlm.grammar import Grammar, load_grammar

    if isinstance(grammar, Grammar) or (hasattr(grammar, "sample") and hasattr(grammar, "config")):
        return grammar
    return load_grammar(grammar)


def entropy_floor(grammar, tokens: np.ndarray) -> float | None:
    """Monte-Carlo H(response | prompt) per response token: the best either loss can reach (None for a
    data source without an exact distribution, such as real text)."""
    if not hasattr(grammar, "response_prob"):
        return None
    P = grammar.prompt_len
    p = grammar.response_prob(tokens[:, :P], tokens[:, P:])
    return float(-np.log(p).mean() / (tokens.shape[1] - P))


def enable_compile_cache() -> None:
    """Use JAX's persistent compilation cache (same folder as the tests) unless one is set."""
    import os

    if not jax.config.jax_compilation_cache_dir:
        path = os.environ.get("TOYDLM_JAX_CACHE", str(Path.home() / ".cache" / "toydlm-jax"))
        jax.config.update("jax_compilation_cache_dir", path)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)


# ---------------------------------------------------------------------------- records
@dataclass(frozen=True)
class Run:
    """What stays fixed once training starts: the plan, compiled steps, held-out batch, metadata."""

    plan: Plan
    mesh: Mesh
    key: jax.Array  # update k uses fold_in(key, k); checkpointed as `rng`
    train_step: Callable
    eval_step: Callable
    schedule: optax.Schedule
    eval_tokens: jax.Array
    eval_keys: tuple[jax.Array, ...]
    floor: float | None  # the entropy floor of the held-out batch (None: unknown, real text)
    meta: dict  # written into every checkpoint and the log's start record


@dataclass(frozen=True)
class State:
    """What an update changes: weights, optimiser state, step count, and the newest checkpoint."""

    params: Any
    opt_state: Any
    step: int
    last_good: Path | None


@dataclass
class Meter:
    """Host-side bookkeeping: training losses since the last log line, the last eval loss, timing."""

    t_start: float
    t_first: float | None = None  # when the first update finished (it includes compilation)
    window: list[float] = field(default_factory=list)
    eval_loss: float | None = None
    patience: Patience = field(default_factory=lambda: Patience(None))

    def add(self, loss: float) -> None:
        if self.t_first is None:
            self.t_first = time.perf_counter()
        self.window.append(loss)

    def steps_per_s(self, timed: int) -> float | None:
        """Updates per second over the `timed` updates after the first (None when there are none)."""
        return timed / max(time.perf_counter() - self.t_first, 1e-9) if timed > 0 else None


class JsonlLog:
    """The run's append-only `log.jsonl`, flushed after every record."""

    def __init__(self, path: Path):
        self._f = open(path, "a")

    def write(self, rec: dict) -> None:
        self._f.write(json.dumps(rec) + "\n")
        self._f.flush()

    def close(self) -> None:
        self._f.close()


# ---------------------------------------------------------------------------- entry point
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
    shift: bool = False,
    init_from: str | Path | None = None,
    patience: int | None = None,
    keep: int = 2,
) -> dict:
    """Train an `ar` or `mdlm` model of a size preset on a grammar; returns a summary dict.

    `steps` is the schedule length (default: the preset's). `stop_after` ends the run early
    at that step (checkpointed), as an interruption would; `resume=True` continues the run
    in `out_dir` towards its stored `steps`. `grammar`: a Grammar, a preset name, a TOML path
    or None (default grammar). `init_from`: start from that run's weights (an `mdlm` with `shift=True` adapted
    from an `ar` run); `patience`: stop after that many evaluations without a new best held-out loss, keeping
    the best checkpoint in `out_dir/best`; `keep`: regular checkpoints kept.
    """
    enable_compile_cache()
    plan = make_plan(arch, preset, Path(out_dir), steps, seed, resume, _grammar(grammar), train_config, stop_after,
                     shift=shift, init_from=init_from, patience=patience, keep=keep)
    run, state = _set_up(plan, devices_for(plan.tcfg.batch, plan.tcfg.eval_batch))
    plan.out.mkdir(parents=True, exist_ok=True)
    log = JsonlLog(plan.out / LOG)
    bar = tqdm(total=plan.end, initial=plan.start, disable=not progress, desc=f"train {arch}/{preset}",
               dynamic_ncols=True, position=bar_position, unit="step")
    log.write({"event": "start", "step": plan.start, "end": plan.end, "resume": bool(plan.resume),
               "entropy_floor": run.floor, **run.meta})
    meter = Meter(t_start=time.perf_counter(), patience=Patience.from_log(plan.patience, plan.out / LOG, plan.start))
    try:
        _catch_up(run, state, meter, log)
        state = _train_to_end(run, state, meter, log, bar)
    finally:
        bar.close()
        log.close()
    summary = _summary(run, state, meter)
    atomic_write_json(plan.out / SUMMARY, summary)
    return summary


# ---------------------------------------------------------------------------- set-up
def _set_up(plan: Plan, devices: list) -> tuple[Run, State]:
    """Model, optimiser and compiled steps on a data mesh (restoring the checkpoint, if any)."""
    g, tcfg = plan.grammar, plan.tcfg
    mcfg = model_config(plan.preset, g, plan.arch, shift=plan.shift)
    graphdef, params = nnx.split(init_model(mcfg, plan.seed))
    init = plan.init_record  # a resumed run keeps the record of where it started
    if plan.init_from is not None and plan.arrays is None:
        params, init = init_params_from(plan.init_from, params, mcfg.to_dict())
    tx = make_optimizer(tcfg)
    opt_state = tx.init(params)
    key = jax.random.PRNGKey(plan.seed)
    if plan.arrays is not None:
        params = ckpt.unflatten(params, plan.arrays, "params", plan.out)
        opt_state = ckpt.unflatten(opt_state, plan.arrays, "opt", plan.out)
        key = jnp.asarray(plan.arrays["rng"])
    mesh = data_mesh(devices)
    params, opt_state = replicate(params, mesh), replicate(opt_state, mesh)
    # the held-out loss stays the plain objective (for an MDLM the NELBO), whatever masks training adds
    train_step, eval_step = make_steps(make_loss(graphdef, plan.arch, g.prompt_len, g.mask_id, tcfg.suffix_mask_frac),
                                       tx, mesh, make_loss(graphdef, plan.arch, g.prompt_len, g.mask_id))
    held_out = eval_batch(g, plan.seed, tcfg.eval_batch)
    eval_keys = tuple(jax.random.fold_in(jax.random.fold_in(key, EVAL_STREAM), r)
                      for r in range(EVAL_REPEATS[plan.arch]))
    prov = provenance(plan.seed)
    meta = {
        "arch": plan.arch,
        "preset": plan.preset,
        "seed": plan.seed,
        "model_config": mcfg.to_dict(),
        "train_config": tcfg.to_dict(),
        "grammar": g.config.to_dict(),
        "grammar_hash": g.config.config_hash(),
        "n_params": count_params(nnx.merge(graphdef, params)),
        "n_devices": len(devices),
        "versions": prov["versions"],
        "git_revision": prov["git_revision"],
        **({"init_from": init} if init is not None else {}),
    }
    run = Run(plan, mesh, key, train_step, eval_step, lr_schedule(tcfg), shard_batch(held_out, mesh), eval_keys,
              entropy_floor(g, held_out), meta)
    last_good = ckpt.find_checkpoint(plan.out) if plan.resume else None
    return run, State(params, opt_state, plan.start, last_good)


# ---------------------------------------------------------------------------- the steps of a run
def _train_to_end(run: Run, state: State, meter: Meter, log: JsonlLog, bar) -> State:
    """Update until the plan's end step; on Ctrl-C checkpoint the updates done, then re-raise."""
    try:
        while state.step < run.plan.end and not meter.patience.stop:
            state, info = _update(run, state)
            meter.add(info["loss"])
            bar.update(1)
            state = _at_cadence(run, state, meter, info, log, bar)
    except KeyboardInterrupt:
        if state.step > run.plan.start:
            _save(run, state)
        raise
    return state


def _update(run: Run, state: State) -> tuple[State, dict]:
    """One optimiser update on the batch of `state.step`; raises NonFiniteLoss on a NaN/inf loss.

    Returns the new state and `{loss, lr, grad_norm}` of the update (grad_norm still on device).
    """
    p = run.plan
    tokens = shard_batch(batch_at(p.grammar, p.seed, state.step, p.tcfg.batch), run.mesh)
    lr = np.float32(run.schedule(state.step))  # the rate of update number step + 1 (optax's count = step)
    key = jax.random.fold_in(run.key, state.step)
    params, opt_state, m = run.train_step(state.params, state.opt_state, tokens, key, lr)
    loss = float(m["loss"])
    if not math.isfinite(loss):
        raise NonFiniteLoss(
            f"non-finite loss ({loss}) at step {state.step + 1}; training stopped, the last good "
            f"checkpoint is {state.last_good}"
        )
    new = dataclasses.replace(state, params=params, opt_state=opt_state, step=state.step + 1)
    return new, {"loss": loss, "lr": lr, "grad_norm": m["grad_norm"]}


def _at_cadence(run: Run, state: State, meter: Meter, info: dict, log: JsonlLog, bar) -> State:
    """Log, evaluate and checkpoint when their cadence (or the last step) comes round."""
    step, tcfg, last = state.step, run.plan.tcfg, state.step == run.plan.end
    if step % tcfg.log_every == 0 or last:
        rec = {
            "step": step,
            "loss": float(np.mean(meter.window)),
            "lr": float(info["lr"]),
            "grad_norm": float(info["grad_norm"]),
            "steps_per_s": meter.steps_per_s(step - run.plan.start - 1),
        }
        log.write(rec)
        ev = {"eval": f"{meter.eval_loss:.4f}"} if meter.eval_loss else {}
        bar.set_postfix(loss=f"{rec['loss']:.4f}", **ev)
        meter.window = []
    on_cadence = step % tcfg.eval_every == 0 or step == tcfg.steps
    if on_cadence or last:
        _evaluate_and_log(run, state, meter, log, on_cadence)
    if step % tcfg.ckpt_every == 0 or last or meter.patience.stop:
        state = dataclasses.replace(state, last_good=_save(run, state))
    return state


def _evaluate_and_log(run: Run, state: State, meter: Meter, log: JsonlLog, on_cadence: bool = True) -> None:
    """Evaluate the held-out loss. Only evaluations on the cadence (or at the schedule's end) count for early
    stopping, so a run stopped off the cadence resumes to the same best; a new best is checkpointed before
    its log record, so the log never names a best that is not on disk."""
    meter.eval_loss = _evaluate(run, state.params)
    best = meter.patience.update(state.step, meter.eval_loss) if on_cadence else False
    if best and run.plan.patience is not None:
        _save(run, state, run.plan.out / BEST, keep=1)
    log.write({"step": state.step, "eval_loss": meter.eval_loss, "entropy_floor": run.floor, "best": best,
               "on_cadence": on_cadence})


def _catch_up(run: Run, state: State, meter: Meter, log: JsonlLog) -> None:
    """A run resumed from a checkpoint taken at an evaluation step whose evaluation never finished (an
    interruption during it) evaluates that step first, as the straight run did."""
    p = run.plan
    if p.resume and p.start > 0 and p.start % p.tcfg.eval_every == 0 and p.start not in meter.patience.seen:
        _evaluate_and_log(run, state, meter, log)


def _evaluate(run: Run, params: Any) -> float:
    """Held-out loss, averaged over the eval keys (independent mask draws for MDLM)."""
    return float(np.mean([float(run.eval_step(params, run.eval_tokens, k)["loss"]) for k in run.eval_keys]))


def _save(run: Run, state: State, where: Path | None = None, keep: int | None = None) -> Path:
    """Checkpoint params, optimiser state and the run key (in the run's folder unless `where`); refuse
    non-finite parameters."""
    arrays = {
        **ckpt.flatten(state.params, "params"),
        **ckpt.flatten(state.opt_state, "opt"),
        "rng": np.asarray(run.key),
    }
    if not all(np.isfinite(a).all() for k, a in arrays.items() if k.startswith("params")):
        raise NonFiniteLoss(
            f"parameters became non-finite by step {state.step}; training stopped, the last good "
            f"checkpoint is {state.last_good}"
        )
    return ckpt.save_checkpoint(where or run.plan.out, state.step, arrays, run.meta,
                                keep=run.plan.keep if keep is None else keep)


def _summary(run: Run, state: State, meter: Meter) -> dict:
    """What `train` returns and writes to `summary.json`."""
    p = run.plan
    seconds = time.perf_counter() - meter.t_start
    eval_loss = meter.eval_loss if meter.eval_loss is not None else _evaluate(run, state.params)
    return {
        "arch": p.arch,
        "preset": p.preset,
        "out_dir": str(p.out),
        "checkpoint": str(state.last_good),
        "start_step": p.start,
        "final_step": state.step,
        "steps": p.tcfg.steps,
        "seed": p.seed,
        "eval_loss": eval_loss,
        "entropy_floor": run.floor,
        "train_loss": last_train_loss(p.out),  # the last logged training loss
        "seconds": seconds,
        "steps_per_s": meter.steps_per_s(state.step - p.start - 1),
        "n_params": run.meta["n_params"],
        "n_devices": run.meta["n_devices"],
        "stopped_early": meter.patience.stop,
        "best_step": meter.patience.best_step,
        "best_eval_loss": meter.patience.best,
        "grammar_hash": run.meta["grammar_hash"],
    }


# ---------------------------------------------------------------------------- reading a run
def last_train_loss(out: Path) -> float | None:
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
