"""Sampler state (a pytree carried through the steps) and forced-token events (injections).

The state carries the canvas plus what the policies need across steps (step index, pinned
positions, the confidence stored when a token was committed — ReMDM-conf's psi — and the
current LLaDA block's mask count), and the last step's record (x̂₀ argmax and sampled,
proposal confidence, commit and re-mask events) so a driver can trace without recomputing.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np


class SamplerState(NamedTuple):
    canvas: jax.Array  # [B, P+L] int32, mask id at uncommitted response positions
    step: jax.Array  # [B] int32, index of the next step
    pinned: jax.Array  # [B, L] bool, response positions no sampler may change (attacks)
    commit_conf: jax.Array  # [B, L] float32, proposal prob when committed; NaN if masked/pinned
    commit_step: jax.Array  # [B, L] int32, step of the last commit (-1: masked or pinned)
    block_n: jax.Array  # [B] int32, masked positions in the current block when it started
    # record of the last step
    xhat_argmax: jax.Array  # [B, L] int32, committed tokens + argmax at masked positions
    xhat_sample: jax.Array  # [B, L] int32, committed tokens + the proposals actually drawn
    conf: jax.Array  # [B, L] float32, proposal confidence at positions masked before the step; NaN else
    committed: jax.Array  # [B, L] bool, committed this step
    remasked: jax.Array  # [B, L] bool, put back to mask this step


class Force(NamedTuple):
    """Per row: at step `step` (before the denoiser call) write `tok` at response `pos` and pin it."""

    step: jax.Array  # [B] int32, -1 = none
    pos: jax.Array  # [B] int32
    tok: jax.Array  # [B] int32


def no_force(batch: int) -> Force:
    z = np.full(batch, -1, np.int32)
    return Force(z, np.zeros(batch, np.int32), np.zeros(batch, np.int32))


def init_state(prompt_BP, response_BL, pinned_BL, mask_id: int) -> SamplerState:
    """Start state: the prompt, the response canvas (masks, plus any attack tokens), pins."""
    prompt = jnp.asarray(prompt_BP, jnp.int32)
    resp = jnp.asarray(response_BL, jnp.int32)
    pinned = jnp.asarray(pinned_BL, bool)
    B, L = resp.shape
    if prompt.shape[0] != B or pinned.shape != (B, L):
        raise ValueError(f"prompt {prompt.shape}, response {resp.shape} and pinned {pinned.shape} disagree")
    if bool(jnp.any(pinned & (resp == mask_id))):
        raise ValueError("a pinned response position holds the mask id")
    nan = jnp.full((B, L), jnp.nan, jnp.float32)
    return SamplerState(
        canvas=jnp.concatenate([prompt, resp], axis=1), step=jnp.zeros(B, jnp.int32), pinned=pinned,
        commit_conf=nan, commit_step=jnp.full((B, L), -1, jnp.int32), block_n=jnp.zeros(B, jnp.int32),
        xhat_argmax=resp, xhat_sample=resp, conf=nan, committed=jnp.zeros((B, L), bool),
        remasked=jnp.zeros((B, L), bool))


def apply_force(state: SamplerState, force: Force, i) -> SamplerState:
    """Write forced tokens due at step i into the canvas and pin them (pure, jit-able)."""
    B, L = state.pinned.shape
    P = state.canvas.shape[1] - L
    hit = (jnp.asarray(force.step)[:, None] == i) & (jnp.arange(L)[None] == jnp.asarray(force.pos)[:, None])
    resp = jnp.where(hit, jnp.asarray(force.tok)[:, None], state.canvas[:, P:])
    return state._replace(canvas=jnp.concatenate([state.canvas[:, :P], resp], axis=1),
                          pinned=state.pinned | hit,
                          commit_conf=jnp.where(hit, jnp.nan, state.commit_conf),
                          commit_step=jnp.where(hit, -1, state.commit_step))
