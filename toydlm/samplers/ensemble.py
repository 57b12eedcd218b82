"""K models of one architecture as one denoiser: a seed ensemble sampled in one program.

Rows are interleaved: of a canvas of B * K rows, row r goes to member r % K (each prompt's K copies sit
side by side, so a batch split over devices keeps whole groups on one device and needs no shuffling).
The stacked denoiser maps each member's rows through its weights with `vmap`, so any sampler runs all K
models of a cell in one jitted scan. Each member's rows equal what that member alone gives on them, up
to the float rounding of batched kernels.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import jax

from toydlm.denoiser import DenoiserOutput, JaxDenoiser
from toydlm.errors import UserError


@functools.lru_cache(maxsize=32)
def stacked_fn(fn: Callable, k: int) -> Callable:
    """`fn` over K stacked parameter sets, row r through set r % K (one object per (fn, K))."""

    def run(params_K, canvas_NL: jax.Array) -> DenoiserOutput:
        n, L = canvas_NL.shape
        out = jax.vmap(fn, in_axes=(0, 1), out_axes=1)(params_K, canvas_NL.reshape(n // k, k, L))
        merge = lambda x: None if x is None else x.reshape((n,) + x.shape[2:])
        return DenoiserOutput(merge(out.logits), merge(out.hidden))

    return run


def stack_denoisers(dens: Sequence[JaxDenoiser]) -> JaxDenoiser:
    """One denoiser over the K models (same function, i.e. one architecture and grammar layout)."""
    d0 = dens[0]
    if any(d.fn is not d0.fn for d in dens):
        raise UserError("a seed ensemble needs models of one architecture and grammar (one denoiser function)")
    params = jax.tree.map(lambda *xs: jax.numpy.stack(xs), *[d.params for d in dens])
    return JaxDenoiser(fn=stacked_fn(d0.fn, len(dens)), params=params, vocab_size=d0.vocab_size,
                       mask_id=d0.mask_id, prompt_len=d0.prompt_len, response_len=d0.response_len,
                       name=f"{d0.name}-x{len(dens)}", causal=d0.causal)
