"""Sampling a real-text twin student on CPU, three ways side by side on the same weights, prompts and keys:
1. `full`: the output head over the whole canvas, proposals by the exponential race (one uniform per
   vocabulary entry and position);
2. `response_head`: the head over the response positions only (`toydlm.model.response_logits`);
3. `response_head_icdf`: that, with proposals by the inverse CDF (one uniform per position;
   `toydlm.samplers.proposals.inverse_cdf_draw`). Same distribution, a different random stream.

The model is shaped like a twin student (`small` preset, a 10,635-token vocabulary, 64 prompt and 96
response positions), randomly initialised: its speed does not depend on its weights. Both samplers the
twins' swap spends most time in are timed, in interleaved rounds so that a change of machine load hits
every way alike.
"""

from __future__ import annotations

from types import SimpleNamespace

import jax
import numpy as np

from toydlm.bench.timing import best_of_each
from toydlm.io import provenance
from toydlm.samplers import SamplerConfig, init_state, no_force, row_keys, scan_run

TWIN = dict(vocab_size=10635, prompt_len=64, response_len=96, mask_id=1)
WAYS = ("full", "response_head", "response_head_icdf")


def _canvas():
    """A grammar-like description of the twin's canvas (what `model_config` and `make_denoiser` read)."""
    return SimpleNamespace(**TWIN, seq_len=TWIN["prompt_len"] + TWIN["response_len"])


def run(seconds: float = 3.0, batch: int = 16, preset: str = "small") -> dict:
    """Sampled sequences per second each way, for AR order (one token a step) and global low confidence
    (two a step), the best of max(2, seconds / 1.5) interleaved rounds."""
    from toydlm.model import init_model, make_denoiser, model_config

    g = _canvas()
    model = init_model(model_config(preset, g, "mdlm", shift=True), seed=0)
    full, resp = make_denoiser(model, "mdlm", g), make_denoiser(model, "mdlm", g, response_logits_only=True)
    rng = np.random.default_rng(0)
    prompts = rng.integers(5, g.vocab_size, (batch, g.prompt_len))
    L = g.response_len
    state = init_state(prompts, np.full((batch, L), g.mask_id), np.zeros((batch, L), bool), g.mask_id)
    keys, force = row_keys(jax.random.PRNGKey(0), np.arange(batch)), no_force(batch)
    samplers = {"ar_order": SamplerConfig("ar_order", steps=L),
                "low_confidence": SamplerConfig("low_confidence", steps=L // 2)}
    ways = {"full": (full, "race"), "response_head": (resp, "race"), "response_head_icdf": (resp, "inverse_cdf")}
    def sample(den, cfg: SamplerConfig):
        return lambda: jax.block_until_ready(scan_run(den, cfg, state, keys, force, with_hidden=False))

    fns = {(s, w): sample(d, c.replace(draw=how)) for s, c in samplers.items() for w, (d, how) in ways.items()}
    rounds = max(2, round(seconds / 1.5))
    times = best_of_each(fns, k=rounds, warmup=1)
    out = {"part": "twin_sampling", "model": f"{preset}-preset shifted mdlm, twin-sized canvas, random init",
           **TWIN, "batch": batch, "rounds": rounds, "device": jax.devices()[0].platform,
           "n_devices": jax.device_count(), "git_revision": provenance(0)["git_revision"], "samplers": {}}
    for s in samplers:
        rate = {w: batch / times[(s, w)] for w in WAYS}
        out["samplers"][s] = {"steps": samplers[s].steps, "seqs_per_s": rate,
                              "speedup_vs_full": {w: rate[w] / rate["full"] for w in WAYS[1:]}}
    return out


def describe(r: dict) -> str:
    parts = [f"{s}: " + ", ".join(f"{w} {x:.2f}x" for w, x in v["speedup_vs_full"].items())
             for s, v in r["samplers"].items()]
    return f"twin sampling ({r['model']}, batch {r['batch']}, {r['device']}), speedup over full: " + "; ".join(parts)
