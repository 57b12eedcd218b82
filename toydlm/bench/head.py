"""The output head on the response only: sampler throughput with the head over the whole canvas against the
head over the response positions alone (`toydlm.model.response_logits`), same weights, prompts and keys.

The model is shaped like a real-text twin student (`small` preset, a 10,635-token vocabulary, 64 prompt and
96 response positions), randomly initialised: its speed does not depend on its weights. With a vocabulary
that size the head is most of the forward pass, and the prompt is 40% of the canvas. Both samplers the
twins' swap spends most time in are measured, in interleaved rounds so that a change of machine load hits
both ways alike.
"""

from __future__ import annotations

from types import SimpleNamespace

import jax
import numpy as np

from toydlm.bench.timing import best_of_each
from toydlm.samplers import SamplerConfig, init_state, no_force, row_keys, scan_run

TWIN = dict(vocab_size=10635, prompt_len=64, response_len=96, mask_id=1)


def _canvas():
    """A grammar-like description of the twin's canvas (what `model_config` and `make_denoiser` read)."""
    return SimpleNamespace(**TWIN, seq_len=TWIN["prompt_len"] + TWIN["response_len"])


def run(seconds: float = 3.0, batch: int = 16, preset: str = "small") -> dict:
    """Sampled sequences per second each way, for AR order (one token a step) and global low confidence
    (two a step), the best of max(2, seconds / 1.5) interleaved rounds."""
    from toydlm.model import init_model, make_denoiser, model_config

    g = _canvas()
    model = init_model(model_config(preset, g, "mdlm", shift=True), seed=0)
    dens = {"full": make_denoiser(model, "mdlm", g), "response": make_denoiser(model, "mdlm", g, True)}
    rng = np.random.default_rng(0)
    prompts = rng.integers(5, g.vocab_size, (batch, g.prompt_len))
    state = init_state(prompts, np.full((batch, g.response_len), g.mask_id), np.zeros((batch, g.response_len), bool),
                       g.mask_id)
    keys, force, L = row_keys(jax.random.PRNGKey(0), np.arange(batch)), no_force(batch), g.response_len
    samplers = {"ar_order": SamplerConfig("ar_order", steps=L), "low_confidence": SamplerConfig(
        "low_confidence", steps=L // 2)}
    fns = {(s, h): (lambda d=d, c=c: jax.block_until_ready(scan_run(d, c, state, keys, force, with_hidden=False)))
           for s, c in samplers.items() for h, d in dens.items()}
    times = best_of_each(fns, k=max(2, round(seconds / 1.5)), warmup=1)
    out = {"part": "head", "model": f"{preset}-preset shifted mdlm, twin-sized canvas, random init", **TWIN,
           "batch": batch, "device": jax.devices()[0].platform, "n_devices": jax.device_count(), "samplers": {}}
    for s in samplers:
        full, resp = batch / times[(s, "full")], batch / times[(s, "response")]
        out["samplers"][s] = {"steps": samplers[s].steps, "full_head_seqs_per_s": full,
                              "response_head_seqs_per_s": resp, "speedup": resp / full}
    return out


def describe(r: dict) -> str:
    parts = [f"{s} {v['speedup']:.2f}x ({v['full_head_seqs_per_s']:.1f} -> {v['response_head_seqs_per_s']:.1f} seq/s)"
             for s, v in r["samplers"].items()]
    return (f"head on the response only ({r['model']}, batch {r['batch']}, {r['device']}): " + "; ".join(parts))
