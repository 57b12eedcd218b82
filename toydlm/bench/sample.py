"""Sampler throughput: the jitted batched scan driver vs an eager LLaDA-style reference.

Three ways to run the same LLaDA `generate` semantics (low-confidence selection, k_i schedule,
Gumbel proposals at temperature 1, one block) over the same model:
- `scan`: `toydlm.samplers.scan_run`, batch 256, whole sampling jitted, full trace recorded;
- `loop`: `toydlm.samplers.loop_run`, batch 256, Python loop calling the model then the
  jitted policy (what an external/torch model gets);
- `reference`: one prompt at a time, eager per-step policy in `jax.numpy` (no jit), one
  jitted model call per step - the shape of LLaDA's generate.py.
The model is a randomly initialised `default`-preset masked-diffusion Transformer
(toydlm.model); with `model="oracle"` the grammar oracle is used instead.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from toydlm.attacks import build_prompts
from toydlm.grammar import Grammar, grammar_oracle
from toydlm.samplers import SamplerConfig, init_state, loop_run, no_force, row_keys, scan_run
from toydlm.samplers.config import k_schedule

ENSEMBLE_K = 3  # training seeds per architecture in the default run


def _denoiser(g: Grammar, model: str, seed: int = 0):
    if model == "oracle":
        return grammar_oracle(g), "grammar oracle (exact denoiser)"
    from toydlm.model import init_model, make_denoiser, model_config

    m = init_model(model_config("default", g, "mdlm"), seed=seed)
    return make_denoiser(m, "mdlm", g), "default-preset mdlm Transformer, random init"


def _seed_runs(g: Grammar, cfg: SamplerConfig, batch: int) -> tuple[Callable, Callable]:
    """(K seeds one after another, K seeds stacked in one program) on the same prompts and keys."""
    from toydlm.samplers.ensemble import stack_denoisers

    dens = [_denoiser(g, "transformer", s)[0] for s in range(ENSEMBLE_K)]
    b = build_prompts(None, g, batch, seed=0)
    state = init_state(b.prompt_ids, b.response, b.pinned, dens[0].mask_id)
    keys = row_keys(jax.random.PRNGKey(0), np.arange(batch))
    one = lambda d: scan_run(d, cfg, state, keys, no_force(batch), with_hidden=False)
    big = jax.tree.map(lambda x: np.repeat(x, ENSEMBLE_K, axis=0), (state, keys))
    stacked = stack_denoisers(dens)
    seq = lambda: [one(d) for d in dens]
    together = lambda: scan_run(stacked, cfg, big[0], big[1], no_force(batch * ENSEMBLE_K), with_hidden=False)
    return seq, together


def reference_generate(call, prompt_1P: np.ndarray, steps: int, gen_length: int, block_length: int,
                       temperature: float, mask_id: int, key: jax.Array) -> jax.Array:
    """LLaDA generate.py semantics for one prompt, eager: blocks, k_i, Gumbel, top-k confidence."""
    P = prompt_1P.shape[1]
    x = jnp.concatenate([jnp.asarray(prompt_1P, jnp.int32), jnp.full((1, gen_length), mask_id, jnp.int32)], 1)
    nb = gen_length // block_length
    spb = steps // nb
    for b in range(nb):
        lo, hi = P + b * block_length, P + (b + 1) * block_length
        n_b = int(jnp.sum(x[0, lo:hi] == mask_id))
        ks = k_schedule(n_b, spb)
        for i in range(spb):
            key, sub = jax.random.split(key)
            mask_index = x == mask_id
            logits = call(x).logits
            noise = (-jnp.log(jax.random.uniform(sub, logits.shape, minval=1e-20))) ** temperature
            x0 = jnp.argmax(jnp.exp(logits) / noise, axis=-1)
            p = jax.nn.softmax(logits, axis=-1)
            x0_p = jnp.take_along_axis(p, x0[..., None], axis=-1)[..., 0]
            x0_p = x0_p.at[:, hi:].set(-jnp.inf)
            x0 = jnp.where(mask_index, x0, x)
            conf = jnp.where(mask_index, x0_p, -jnp.inf)
            _, sel = jax.lax.top_k(conf[0], int(ks[i]))
            transfer = jnp.zeros_like(mask_index).at[0, sel].set(True)
            x = jnp.where(transfer, x0, x)
    return x


def _clock(fn) -> float:
    t0 = time.perf_counter()
    jax.block_until_ready(fn())
    return time.perf_counter() - t0


def run(seconds: float = 3.0, batch: int = 256, model: str = "transformer", ref_per_round: int = 8) -> dict:
    """Throughputs of the three ways, measured in interleaved rounds (fair under shared CPUs).

    Each round runs one scan batch, one loop-driver batch and `ref_per_round` reference
    prompts, until about 3 x `seconds` have passed (at least two rounds).
    """
    g = Grammar()
    den, model_desc = _denoiser(g, model)
    L = g.response_len
    cfg = SamplerConfig("low_confidence", temperature=1.0).resolved(L)
    b = build_prompts(None, g, batch, seed=0)
    state = init_state(b.prompt_ids, b.response, b.pinned, den.mask_id)
    keys = row_keys(jax.random.PRNGKey(0), np.arange(batch))
    force = no_force(batch)
    scan = lambda: scan_run(den, cfg, state, keys, force, with_hidden=False)
    loop = lambda: loop_run(den, cfg, state, keys, force, with_hidden=False)
    fwd = jax.jit(den.fn)
    call = lambda x: fwd(den.params, x)
    ref = lambda i: reference_generate(call, b.prompt_ids[i % batch][None], cfg.steps, L, L, 1.0, den.mask_id,
                                       jax.random.PRNGKey(i))
    seq, together = _seed_runs(g, cfg, batch) if model != "oracle" else (None, None)
    compile_s = _clock(scan)  # first call compiles
    _clock(loop)
    _clock(lambda: ref(0))
    if seq is not None:
        _clock(seq)
        _clock(together)
    t_scan = t_loop = t_ref = t_seq = t_together = 0.0
    rounds, n_ref, t0 = 0, 0, time.perf_counter()
    while rounds < 2 or time.perf_counter() - t0 < 3 * seconds:
        t_scan += _clock(scan)
        t_loop += _clock(loop)
        for _ in range(ref_per_round):
            t_ref += _clock(partial(ref, n_ref))
            n_ref += 1
        if seq is not None:
            t_seq += _clock(seq)
            t_together += _clock(together)
        rounds += 1
    scan_tp, loop_tp, ref_tp = rounds * batch / t_scan, rounds * batch / t_loop, n_ref / t_ref
    return {
        "part": "sample", "model": model_desc, "sampler": cfg.name, "steps": cfg.steps, "temperature": 1.0,
        "batch": batch, "device": jax.devices()[0].platform, "n_devices": jax.device_count(),
        "scan_seqs_per_s": scan_tp, "loop_driver_seqs_per_s": loop_tp, "reference_seqs_per_s": ref_tp,
        "speedup_vs_reference": scan_tp / ref_tp, "speedup_vs_loop_driver": scan_tp / loop_tp,
        "ensemble_k": ENSEMBLE_K if seq is not None else None,
        "speedup_vs_sequential_seeds": t_seq / t_together if seq is not None else None,
        "rounds": rounds, "reference_prompts": n_ref, "scan_compile_s": compile_s,
        "oracle_fallback": model == "oracle",
    }


def describe(r: dict) -> str:
    return (f"sample ({r['sampler']}, {r['steps']} steps, batch {r['batch']}, {r['model']}, {r['device']}): "
            f"scan {r['scan_seqs_per_s']:,.0f} seq/s, loop driver {r['loop_driver_seqs_per_s']:,.0f} seq/s, "
            f"eager LLaDA-style reference {r['reference_seqs_per_s']:,.1f} seq/s; speedup "
            f"{r['speedup_vs_reference']:.1f}x vs reference, "
            f"{r['speedup_vs_loop_driver']:.2f}x vs loop driver"
            + (f"; {r['ensemble_k']} seeds stacked in one program {r['speedup_vs_sequential_seeds']:.2f}x faster "
               "than one after another" if r.get("speedup_vs_sequential_seeds") else ""))
