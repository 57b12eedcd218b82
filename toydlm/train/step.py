"""The jitted functional train and eval steps (split/merge pattern over plain optax).

The model is split once into a static graphdef and a params pytree; each step merges inside
jit, so no NNX object graph is traversed in Python per call. The optimiser is plain optax
(adamw, warmup + cosine decay, global-norm clipping) over that pytree, which keeps the whole
training state a pytree that checkpoints and shards like any other.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import jax
import optax
from flax import nnx

from toydlm.errors import UserError
from toydlm.model import shift_right
from toydlm.parallel import batch_sharded, replicated
from toydlm.train.config import TrainConfig
from toydlm.train.losses import LOSSES


def lr_schedule(cfg: TrainConfig) -> optax.Schedule:
    return optax.warmup_cosine_decay_schedule(
        init_value=0.0,
        peak_value=cfg.lr,
        warmup_steps=cfg.warmup,
        decay_steps=cfg.steps,
        end_value=cfg.lr * cfg.end_lr_frac,
    )


def make_optimizer(cfg: TrainConfig) -> optax.GradientTransformation:
    """Clip, then AdamW *without* its learning rate: the step multiplies by `lr` (an argument).

    Equivalent to `optax.adamw(schedule)` (decoupled weight decay is scaled by lr as there),
    but the schedule stays on the host, so the compiled step does not depend on the step
    count or warmup: one compilation (and one persistent-cache entry) serves every schedule.
    Weight decay applies only to matrices (kernels, embeddings), not to biases or norms.
    """
    decay_mask = lambda params: jax.tree.map(lambda x: x.ndim >= 2, params)
    return optax.chain(
        optax.clip_by_global_norm(cfg.clip_norm),
        optax.scale_by_adam(b1=0.9, b2=0.99),
        optax.add_decayed_weights(cfg.weight_decay, mask=decay_mask),
    )


def make_loss(graphdef: nnx.GraphDef, arch: str, prompt_len: int, mask_id: int, suffix_frac: float = 0.0
              ) -> Callable:
    """`loss(params, tokens_BL, key) -> (loss, aux)` for the arch's objective; `suffix_frac` (MDLM only):
    the share of rows masked as a suffix (`toydlm.train.losses.mdlm_corrupt`)."""
    objective = LOSSES[arch]
    if suffix_frac:
        if arch != "mdlm":
            raise UserError(f"suffix masking applies to an mdlm run, not {arch}")
        objective = partial(objective, suffix_frac=suffix_frac)

    def loss(params: Any, tokens_BL: jax.Array, key: jax.Array):
        model = nnx.merge(graphdef, params)
        # a shifted MDLM's output i predicts token i + 1: the NELBO scores it at the position it predicts
        logits = (lambda x: shift_right(model(x)[0])) if model.cfg.shift else (lambda x: model(x)[0])
        return objective(logits, tokens_BL, key, prompt_len=prompt_len, mask_id=mask_id)

    return loss


def step_fns(loss_fn: Callable, tx: optax.GradientTransformation, eval_loss_fn: Callable | None = None
             ) -> tuple[Callable, Callable]:
    """(train_step, eval_step) of one model, not yet jitted: `make_steps` jits them, seed ensembles
    (`toydlm.train.ensemble`) `vmap` them first. `eval_loss_fn`: the held-out objective when it differs
    from the trained one (default: the same).

    `train_step(params, opt_state, tokens_BL, key, lr) -> (params, opt_state, metrics)`.
    """

    def train_step(params, opt_state, tokens_BL, key, lr):
        (loss, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, tokens_BL, key)
        updates, opt_state = tx.update(grads, opt_state, params)
        params = jax.tree.map(lambda p, u: p - lr * u, params, updates)
        return params, opt_state, {"loss": loss, "grad_norm": optax.tree.norm(grads), **aux}

    scored = eval_loss_fn or loss_fn

    def eval_step(params, tokens_BL, key):
        loss, aux = scored(params, tokens_BL, key)
        return {"loss": loss, **aux}

    return train_step, eval_step


def make_steps(loss_fn: Callable, tx: optax.GradientTransformation, mesh, eval_loss_fn: Callable | None = None
               ) -> tuple[Callable, Callable]:
    """(train_step, eval_step) of `step_fns`, jitted with params replicated and the batch sharded on `data`."""
    rep, dat = replicated(mesh), batch_sharded(mesh)
    train_step, eval_step = step_fns(loss_fn, tx, eval_loss_fn)
    train = jax.jit(train_step, in_shardings=(rep, rep, dat, rep, rep), out_shardings=(rep, rep, rep))
    evaluate = jax.jit(eval_step, in_shardings=(rep, dat, rep), out_shardings=rep)
    return train, evaluate
