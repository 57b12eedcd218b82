"""The Denoiser protocol: anything mapping a canvas to per-position logits (and hidden states).

A canvas is the full sequence `[B, P + L]` (prompt, then response) with `mask_id` at
uncommitted positions. JAX denoisers are a pure function of (params, canvas) so a sampler can
run them inside `jax.lax.scan`; external denoisers (torch, in the bridge) are plain callables.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

import jax


class DenoiserOutput(NamedTuple):
    logits: jax.Array  # [B, P+L, V] float32; the mask id never has probability
    hidden: jax.Array | None  # [B, P+L, D] final-layer states after the final norm, or None


class Denoiser(Protocol):
    vocab_size: int
    mask_id: int
    prompt_len: int
    response_len: int

    def __call__(self, canvas_BL: Any) -> DenoiserOutput: ...


@dataclass(frozen=True)
class JaxDenoiser:
    """A pure JAX denoiser: `fn(params, canvas) -> DenoiserOutput`, jit- and scan-friendly."""

    fn: Callable[[Any, jax.Array], DenoiserOutput]
    params: Any
    vocab_size: int
    mask_id: int
    prompt_len: int
    response_len: int
    name: str = "jax"
    causal: bool = False  # True for AR models: position i predicts token i + 1

    def __call__(self, canvas_BL: jax.Array) -> DenoiserOutput:
        return self.fn(self.params, canvas_BL)
