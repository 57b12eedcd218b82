"""Seed ensembles: K models of one shape trained as one program, with the seed as a leading axis.

Parameters, optimiser states, data and keys of K training seeds are stacked on axis 0, and one
`vmap`ped, jitted step updates all of them (buffers donated). The toy models are so small that
per-op overhead dominates a step; a stacked step pays it once for K models. Each member sees
exactly what training its seed alone would (same init, data stream, mask keys, schedule), so it
matches a single run up to float rounding of the batched kernels (see `tests/train/test_ensemble.py`
for the tolerance). Every member keeps its own run folder (log, checkpoints, summary), so everything
that loads a single run loads a member, and an interrupted ensemble resumes from those checkpoints.
Losses are read back at the log cadence, not after every step, so the host never stalls the device.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec
from tqdm.auto import tqdm

from toydlm.errors import UserError
from toydlm.io import atomic_write_json
from toydlm.parallel import DATA_AXIS, devices_for, replicate, replicated
from toydlm.train import checkpoint as ckpt
from toydlm.train.config import TrainConfig
from toydlm.train.data import batch_at
from toydlm.train.loop import (
    LOG,
    SUMMARY,
    JsonlLog,
    Meter,
    NonFiniteLoss,
    Run,
    State,
    _grammar,
    _save,
    _set_up,
    _summary,
    enable_compile_cache,
)
from toydlm.train.plan import Plan, make_plan
from toydlm.train.step import make_loss, make_optimizer, step_fns


def stack(trees: Sequence[Any]) -> Any:
    """One pytree whose leaves carry a leading member axis."""
    return jax.tree.map(lambda *xs: jnp.stack(xs), *trees)


def member(tree: Any, i: int) -> Any:
    """Member i of a stacked pytree."""
    return jax.tree.map(lambda x: x[i], tree)


def check_seeds(seeds: Sequence[int]) -> list[int]:
    """A non-empty list of distinct seeds (each checked again by the plan)."""
    seeds = list(seeds)
    if not seeds:
        raise UserError("an ensemble needs at least one seed")
    if len(set(seeds)) != len(seeds):
        raise UserError(f"ensemble seeds must be distinct, got {seeds}")
    return seeds


def parse_seeds(text: str) -> list[int]:
    """`"0,1,2"` -> [0, 1, 2]; a clear error for anything else."""
    try:
        return check_seeds([int(s) for s in text.split(",") if s.strip()])
    except ValueError:
        raise UserError(f"--seeds takes comma-separated integers such as 0,1,2, got {text!r}") from None


def make_ensemble_steps(loss_fn: Callable, tx, mesh) -> tuple[Callable, Callable]:
    """(train_step, eval_step) over stacked members: the single-model steps under `vmap`.

    `train_step(params_K, opt_K, tokens_KBL, keys_K, lr) -> (params_K, opt_K, metrics_K)`, with the
    params and optimiser buffers donated; each member's batch is split over the mesh's devices.
    """
    one, one_eval = step_fns(loss_fn, tx)
    rep, dat = replicated(mesh), NamedSharding(mesh, PartitionSpec(None, DATA_AXIS))
    train = jax.jit(jax.vmap(one, in_axes=(0, 0, 0, 0, None)), in_shardings=(rep, rep, dat, rep, rep),
                    out_shardings=(rep, rep, rep), donate_argnums=(0, 1))
    evaluate = jax.jit(jax.vmap(one_eval), in_shardings=(rep, dat, rep), out_shardings=rep)
    return train, evaluate


@dataclass(frozen=True)
class Ensemble:
    """What stays fixed: each member's `Run` (plan, key, held-out batch, metadata) and the stacked steps."""

    runs: tuple[Run, ...]
    train_step: Callable
    eval_step: Callable
    tokens_sharding: NamedSharding

    @property
    def plan(self) -> Plan:
        return self.runs[0].plan


@dataclass(frozen=True)
class EnsembleState:
    """Stacked weights and optimiser states, the shared step, and each member's newest checkpoint."""

    params: Any
    opt_state: Any
    step: int
    last_good: tuple[Path | None, ...]

    def of(self, i: int) -> State:
        """Member i as the single-run `State` (for checkpointing and the summary)."""
        return State(member(self.params, i), member(self.opt_state, i), self.step, self.last_good[i])


def train_ensemble(arch: str, preset: str, out_dirs: Sequence[str | Path], seeds: Sequence[int],
                   steps: int | None = None, resume: bool = False, grammar: Any = None, progress: bool = True,
                   *, train_config: TrainConfig | None = None, stop_after: int | None = None) -> list[dict]:
    """Train one model per seed, all in one program; returns each member's summary (as `train` does).

    Member i is written to `out_dirs[i]` exactly as `train(..., seed=seeds[i])` would write it.
    With `resume=True` every member continues from its own latest checkpoint; members stopped at
    different steps are resumed as separate ensembles, one per step.
    """
    enable_compile_cache()
    seeds = check_seeds(seeds)
    if len(out_dirs) != len(seeds):
        raise UserError(f"{len(seeds)} seeds need {len(seeds)} output folders, got {len(out_dirs)}")
    if len({Path(d).resolve() for d in out_dirs}) != len(seeds):
        raise UserError("every ensemble member needs its own output folder")
    g = _grammar(grammar)
    plans = [make_plan(arch, preset, Path(d), steps, s, resume, g, train_config, stop_after)
             for d, s in zip(out_dirs, seeds)]
    by_start: dict[int, list[int]] = {}
    for i, p in enumerate(plans):
        by_start.setdefault(p.start, []).append(i)
    summaries: dict[int, dict] = {}
    for idx in by_start.values():
        for i, s in zip(idx, _train_group([plans[i] for i in idx], progress)):
            summaries[i] = s
    return [summaries[i] for i in range(len(plans))]


def _train_group(plans: list[Plan], progress: bool) -> list[dict]:
    """One ensemble over members that start at the same step."""
    ens, state = _set_up_ensemble(plans)
    logs = []
    for r in ens.runs:
        r.plan.out.mkdir(parents=True, exist_ok=True)
        logs.append(JsonlLog(r.plan.out / LOG))
        logs[-1].write({"event": "start", "step": r.plan.start, "end": r.plan.end, "resume": bool(r.plan.resume),
                        "entropy_floor": r.floor, "ensemble_seeds": [q.seed for q in plans], **r.meta})
    p = ens.plan
    bar = tqdm(total=p.end, initial=p.start, disable=not progress, unit="step", dynamic_ncols=True,
               desc=f"train {p.arch}/{p.preset} seeds {','.join(str(q.seed) for q in plans)}")
    meters = [Meter(t_start=time.perf_counter()) for _ in plans]
    try:
        state = _train_to_end(ens, state, meters, logs, bar)
    finally:
        bar.close()
        for log in logs:
            log.close()
    out = []
    for i, r in enumerate(ens.runs):
        s = _summary(r, state.of(i), meters[i]) | {"ensemble_seeds": [q.seed for q in plans]}
        atomic_write_json(r.plan.out / SUMMARY, s)
        out.append(s)
    return out


def _set_up_ensemble(plans: list[Plan]) -> tuple[Ensemble, EnsembleState]:
    """Each member set up as a single run would be, then stacked into one program."""
    tcfgs = {p.tcfg for p in plans}
    if len(tcfgs) != 1:
        raise UserError("ensemble members must share one training config (resumed runs with other step counts?)")
    p0 = plans[0]
    if p0.tcfg.suffix_mask_frac:
        raise UserError("seed ensembles train the plain objective: suffix_mask_frac must be 0")
    devices = devices_for(p0.tcfg.batch, p0.tcfg.eval_batch)
    pairs = [_set_up(p, devices) for p in plans]  # the single steps it builds are never compiled
    runs = tuple(r for r, _ in pairs)
    mesh = runs[0].mesh
    graphdef, _ = ckpt.abstract_model(runs[0].meta["model_config"])  # the graph alone, no second init
    loss = make_loss(graphdef, p0.arch, p0.grammar.prompt_len, p0.grammar.mask_id)
    train_step, eval_step = make_ensemble_steps(loss, make_optimizer(p0.tcfg), mesh)
    # placed on the mesh as the step returns them, so the second call does not compile again
    params, opt_state = (replicate(stack(trees), mesh) for trees in ([s.params for _, s in pairs],
                                                                     [s.opt_state for _, s in pairs]))
    state = EnsembleState(params, opt_state, p0.start, tuple(s.last_good for _, s in pairs))
    return Ensemble(runs, train_step, eval_step, NamedSharding(mesh, PartitionSpec(None, DATA_AXIS))), state


def _train_to_end(ens: Ensemble, state: EnsembleState, meters: list[Meter], logs: list[JsonlLog],
                  bar) -> EnsembleState:
    """Update until the end step; on Ctrl-C checkpoint every member's updates, then re-raise."""
    window: list[jax.Array] = []  # per-step [K] losses, still on the device
    try:
        while state.step < ens.plan.end:
            state, metrics, lr = _update(ens, state)
            window.append(metrics["loss"])
            if meters[0].t_first is None:  # the one stall: the first update includes compilation
                jax.block_until_ready(metrics["loss"])
                for m in meters:
                    m.t_first = time.perf_counter()
            bar.update(1)
            state = _at_cadence(ens, state, meters, window, metrics, lr, logs, bar)
    except KeyboardInterrupt:
        if state.step > ens.plan.start:
            _save_all(ens, state)
        raise
    return state


def _update(ens: Ensemble, state: EnsembleState) -> tuple[EnsembleState, dict, np.float32]:
    """One optimiser update of every member on its own batch and key of this step (nothing read back)."""
    p = ens.plan
    tokens = np.stack([batch_at(p.grammar, r.plan.seed, state.step, p.tcfg.batch) for r in ens.runs])
    tokens = jax.device_put(tokens, ens.tokens_sharding)
    keys = jnp.stack([jax.random.fold_in(r.key, state.step) for r in ens.runs])
    lr = np.float32(ens.runs[0].schedule(state.step))
    params, opt_state, metrics = ens.train_step(state.params, state.opt_state, tokens, keys, lr)
    return dataclasses.replace(state, params=params, opt_state=opt_state, step=state.step + 1), metrics, lr


def _at_cadence(ens: Ensemble, state: EnsembleState, meters: list[Meter], window: list, metrics: dict, lr,
                logs: list[JsonlLog], bar) -> EnsembleState:
    """Read the losses back, log, evaluate and checkpoint when their cadence (or the last step) comes round."""
    step, tcfg, last = state.step, ens.plan.tcfg, state.step == ens.plan.end
    if step % tcfg.log_every == 0 or last:
        _log(ens, state, meters, window, metrics, lr, logs, bar)
    if step % tcfg.eval_every == 0 or last:
        for i, loss in enumerate(_evaluate(ens, state.params)):
            meters[i].eval_loss = loss
            logs[i].write({"step": step, "eval_loss": loss, "entropy_floor": ens.runs[i].floor})
    if step % tcfg.ckpt_every == 0 or last:
        state = _save_all(ens, state)
    return state


def _log(ens: Ensemble, state: EnsembleState, meters: list[Meter], window: list, metrics: dict, lr,
         logs: list[JsonlLog], bar) -> None:
    """One log record per member from the losses since the last one; raise NonFiniteLoss on NaN/inf."""
    losses = np.asarray(jnp.stack(window))  # [steps, K]: the one read-back of the window
    grad_norm = np.asarray(metrics["grad_norm"])
    window.clear()
    first = state.step - len(losses)
    for i, r in enumerate(ens.runs):
        bad = np.flatnonzero(~np.isfinite(losses[:, i]))
        if bad.size:
            raise NonFiniteLoss(
                f"non-finite loss ({losses[bad[0], i]}) at step {first + bad[0] + 1} of seed {r.plan.seed}; "
                f"training stopped, the last good checkpoint is {state.last_good[i]}")
        m = meters[i]
        m.window = list(map(float, losses[:, i]))
        timed = state.step - ens.plan.start - 1
        logs[i].write({"step": state.step, "loss": float(np.mean(m.window)), "lr": float(lr),
                       "grad_norm": float(grad_norm[i]), "steps_per_s": m.steps_per_s(timed)})
    bar.set_postfix(loss=" ".join(f"{float(np.mean(m.window)):.3f}" for m in meters))


def _evaluate(ens: Ensemble, params: Any) -> list[float]:
    """Each member's held-out loss, averaged over its eval keys (as the single run's `_evaluate`)."""
    tokens = jax.device_put(np.stack([np.asarray(r.eval_tokens) for r in ens.runs]), ens.tokens_sharding)
    repeats = len(ens.runs[0].eval_keys)
    losses = [np.asarray(ens.eval_step(params, tokens, jnp.stack([r.eval_keys[k] for r in ens.runs]))["loss"])
              for k in range(repeats)]
    return [float(np.mean([float(x[i]) for x in losses])) for i in range(len(ens.runs))]


def _save_all(ens: Ensemble, state: EnsembleState) -> EnsembleState:
    """Checkpoint every member into its own run folder (the single-run format)."""
    saved = tuple(_save(r, state.of(i)) for i, r in enumerate(ens.runs))
    return dataclasses.replace(state, last_good=saved)

