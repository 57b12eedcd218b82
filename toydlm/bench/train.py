"""Training throughput and model-FLOP utilisation (MFU) of the `default` preset.

MFU = achieved model FLOP/s / dense fp32 matmul FLOP/s measured in the same run (a jitted
1024x1024 matmul, best of several timings). Model FLOPs are counted analytically, PaLM
style: 6 * (non-embedding params) * tokens for the dense layers, plus 12 * n_layers *
seq_len * d_model per token for attention scores and values, plus the output head (the
token embedding is a gather, not a matmul, so it is not counted). XLA's own cost analysis
of the compiled step is reported beside it (it also counts elementwise work).
Steps are timed as the training loop runs them: fresh grammar batch, transfer, jitted step,
loss read back. Where the time goes: a short profiler trace, device time grouped by kind.
"""

from __future__ import annotations

import collections
import glob
import gzip
import json
import os
import re
import tempfile
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

ARCHS = ("mdlm", "ar")
ENSEMBLE_K = 3  # training seeds of the default run, stacked on a leading axis (toydlm.train.ensemble)
READ_EVERY = 25  # the ensemble loop reads losses back at the default preset's log cadence
LR = np.float32(1e-3)
HLO_NAME = re.compile(r"^[a-z][a-z0-9_.\-]*$")


def matmul_peak(seconds: float, n: int = 1024) -> float:
    """Dense fp32 matmul FLOP/s (best of several timed batches)."""
    a = jax.random.normal(jax.random.PRNGKey(0), (n, n), jnp.float32)
    f = jax.jit(lambda x, y: x @ y)
    f(a, a).block_until_ready()
    best, t_end = 0.0, time.perf_counter() + seconds
    while True:
        t = time.perf_counter()
        for _ in range(5):
            r = f(a, a)
        r.block_until_ready()
        best = max(best, 5 * 2 * n**3 / (time.perf_counter() - t))
        if time.perf_counter() > t_end:
            return best


def model_flops_per_step(cfg, batch: int, n_params_dense: int) -> float:
    """Training FLOPs (forward + backward) of one step, analytic."""
    tokens = batch * cfg.seq_len
    attn = 12 * cfg.n_layers * cfg.seq_len * cfg.d_model  # per token, fwd+bwd (QK^T and AV)
    return float(6 * n_params_dense * tokens + attn * tokens)


def _setup(arch: str, preset: str = "default"):
    from toydlm.grammar import Grammar
    from toydlm.model import init_model, model_config
    from toydlm.parallel import data_mesh, replicate
    from toydlm.train.config import TRAIN_PRESETS
    from toydlm.train.step import make_loss, make_optimizer, make_steps

    g = Grammar()
    cfg = model_config(preset, g, arch)
    tcfg = TRAIN_PRESETS[preset]
    model = init_model(cfg)
    graphdef, params = nnx.split(model)
    tx = make_optimizer(tcfg)
    mesh = data_mesh()
    step, _ = make_steps(make_loss(graphdef, arch, g.prompt_len, g.mask_id), tx, mesh)
    params = replicate(params, mesh)
    opt = replicate(tx.init(params), mesh)
    n_embed = cfg.vocab_size * cfg.d_model + (cfg.seq_len * cfg.d_model if cfg.pos == "learned" else 0)
    n_dense = sum(x.size for x in jax.tree.leaves(params)) - n_embed
    return g, cfg, tcfg, mesh, step, params, opt, n_dense


def _time_steps(g, tcfg, mesh, step, params, opt, seconds: float) -> tuple[float, int, object]:
    from toydlm.parallel import shard_batch
    from toydlm.train.data import batch_at

    key = jax.random.PRNGKey(0)
    x = shard_batch(batch_at(g, 0, 0, tcfg.batch), mesh)
    params, opt, m = step(params, opt, x, key, LR)  # compile + warm
    float(m["loss"])
    n, t0 = 0, time.perf_counter()
    while n < 5 or time.perf_counter() - t0 < seconds:
        x = shard_batch(batch_at(g, 0, n + 1, tcfg.batch), mesh)
        params, opt, m = step(params, opt, x, jax.random.fold_in(key, n), LR)
        float(m["loss"])
        n += 1
    return n / (time.perf_counter() - t0), n, (params, opt, x, key)


def _setup_ensemble(arch: str, k: int, preset: str = "default"):
    """The stacked K-seed step of `toydlm.train.ensemble` with its stacked params and optimiser state."""
    from toydlm.grammar import Grammar
    from toydlm.model import init_model, model_config
    from toydlm.parallel import data_mesh, replicate
    from toydlm.train.config import TRAIN_PRESETS
    from toydlm.train.ensemble import make_ensemble_steps, stack
    from toydlm.train.step import make_loss, make_optimizer

    g = Grammar()
    cfg, tcfg = model_config(preset, g, arch), TRAIN_PRESETS[preset]
    splits = [nnx.split(init_model(cfg, s)) for s in range(k)]
    tx = make_optimizer(tcfg)
    mesh = data_mesh()
    step, _ = make_ensemble_steps(make_loss(splits[0][0], arch, g.prompt_len, g.mask_id), tx, mesh)
    params = replicate(stack([p for _, p in splits]), mesh)
    return g, tcfg, mesh, step, params, replicate(stack([tx.init(p) for _, p in splits]), mesh)


def _time_ensemble_steps(arch: str, k: int, seconds: float) -> tuple[float, Callable, tuple]:
    """Ensemble updates per second as the ensemble loop runs them: K fresh batches, transfer, stacked
    step, losses read back every READ_EVERY steps (and at the end)."""
    from jax.sharding import NamedSharding, PartitionSpec

    from toydlm.parallel import DATA_AXIS
    from toydlm.train.data import batch_at

    g, tcfg, mesh, step, params, opt = _setup_ensemble(arch, k)
    dat = NamedSharding(mesh, PartitionSpec(None, DATA_AXIS))
    base = jax.random.PRNGKey(0)

    def one(params, opt, n):
        x = jax.device_put(np.stack([batch_at(g, s, n, tcfg.batch) for s in range(k)]), dat)
        keys = jnp.stack([jax.random.fold_in(jax.random.fold_in(base, s), n) for s in range(k)])
        return step(params, opt, x, keys, LR)

    params, opt, m = one(params, opt, 0)  # compile + warm
    np.asarray(m["loss"])
    n, t0, window = 0, time.perf_counter(), []
    while n < 5 or time.perf_counter() - t0 < seconds:
        params, opt, m = one(params, opt, n + 1)
        window.append(m["loss"])
        n += 1
        if n % READ_EVERY == 0:
            np.asarray(jnp.stack(window))
            window = []
    np.asarray(m["loss"])
    sps = n / (time.perf_counter() - t0)
    x = jax.device_put(np.stack([batch_at(g, s, 0, tcfg.batch) for s in range(k)]), dat)
    return sps, step, (params, opt, x, jnp.stack([jax.random.fold_in(base, s) for s in range(k)]))


def loop_speedup(arch: str, k: int, steps: int = 200) -> dict:
    """The training loops side by side: one K-seed `train_ensemble` against K `train` calls, same steps
    (compilations warmed first, checkpoints and evaluation included, as a real run pays them)."""
    from toydlm.train import train
    from toydlm.train.ensemble import train_ensemble

    with tempfile.TemporaryDirectory() as d:
        ens = lambda tag, n: train_ensemble(arch, "default", [f"{d}/{tag}{s}" for s in range(k)], list(range(k)),
                                            steps=n, progress=False)
        one = lambda tag, n: [train(arch, "default", f"{d}/{tag}{s}", steps=n, seed=s, progress=False)
                              for s in range(k)]
        ens("we", 5), one("ws", 5)
        t = time.perf_counter()
        ens("e", steps)
        t_ens = time.perf_counter() - t
        t = time.perf_counter()
        one("s", steps)
        t_seq = time.perf_counter() - t
    return {"loop_steps": steps, "loop_ensemble_s": t_ens, "loop_sequential_s": t_seq,
            "ensemble_loop_speedup": t_seq / t_ens}


def _classify(name: str) -> str:
    n = name.lower()
    if any(k in n for k in ("dot", "ynn", "xnn", "onednn", "gemm", "matmul", "conv")):
        return "matmul"
    if n.startswith("copy") or "transpose" in n:
        return "copy/transpose"
    if "fusion" in n or n.startswith(("add", "multiply", "reduce", "exp", "tanh", "select", "broadcast")):
        return "elementwise/reduce"
    return "other"


def time_breakdown(step, args, n_steps: int = 5) -> dict | None:
    """Share of device time per kind of XLA op (matmul, copy/transpose, elementwise), from a trace."""
    try:
        with tempfile.TemporaryDirectory() as d:
            t0 = time.perf_counter()
            with jax.profiler.trace(d, create_perfetto_trace=True):
                p, o, x, key = args
                for _ in range(n_steps):
                    p, o, m = step(p, o, x, key, LR)
                np.asarray(m["loss"])
            wall = time.perf_counter() - t0
            files = glob.glob(os.path.join(d, "**", "perfetto_trace.json.gz"), recursive=True)
            trace = json.load(gzip.open(files[0]))
        events = trace["traceEvents"] if isinstance(trace, dict) else trace
        by = collections.Counter()
        for e in events:  # XLA op events have HLO instruction names; runtime spans have `::` or spaces
            if e.get("ph") == "X" and HLO_NAME.match(e["name"]):
                by[_classify(e["name"])] += e.get("dur", 0) / 1e6
        total = sum(by.values())
        if total <= 0:
            return None
        return {
            "ms_per_step": {k: 1e3 * v / n_steps for k, v in by.most_common()},
            "share": {k: v / total for k, v in by.most_common()},
            "traced_wall_ms_per_step": 1e3 * wall / n_steps,
        }
    except Exception as e:  # noqa: BLE001 - profiling is best effort
        return {"error": f"{type(e).__name__}: {e}"}


def run(seconds: float = 3.0) -> dict:
    peak = matmul_peak(max(seconds / 3, 0.5))
    per_arch = {}
    for arch in ARCHS:
        g, cfg, tcfg, mesh, step, params, opt, n_dense = _setup(arch)
        sps, n, args = _time_steps(g, tcfg, mesh, step, params, opt, seconds)
        flops = model_flops_per_step(cfg, tcfg.batch, n_dense)
        cost = step.lower(*args, LR).compile().cost_analysis()
        cost = cost[0] if isinstance(cost, (list, tuple)) else cost
        per_arch[arch] = {
            "steps_per_s": sps,
            "timed_steps": n,
            "model_flops_per_step": flops,
            "xla_flops_per_step": float(cost.get("flops", float("nan"))) if cost else None,
            "achieved_flops": flops * sps,
            "mfu": flops * sps / peak,
            "where_time_goes": time_breakdown(step, args),
        }
    main = per_arch[ARCHS[0]]
    ens_sps, ens_step, ens_args = _time_ensemble_steps(ARCHS[0], ENSEMBLE_K, seconds)
    ens_flops = main["model_flops_per_step"] * ENSEMBLE_K
    peak_after = matmul_peak(max(seconds / 3, 0.5))  # the machine is shared: bracket the run
    return {
        "part": "train",
        "preset": "default",
        "arch": ARCHS[0],
        "batch": tcfg.batch,
        "seq_len": cfg.seq_len,
        "steps_per_s": main["steps_per_s"],
        "mfu": main["mfu"],
        "ensemble_k": ENSEMBLE_K,
        "ensemble_steps_per_s": ens_sps,
        "ensemble_mfu": ens_flops * ens_sps / peak,
        "ensemble_speedup": ens_sps * ENSEMBLE_K / main["steps_per_s"],
        "ensemble_where_time_goes": time_breakdown(ens_step, ens_args),
        **loop_speedup(ARCHS[0], ENSEMBLE_K),
        "matmul_peak_flops": peak,
        "matmul_peak_flops_after": peak_after,
        "flop_count": "analytic: 6*dense_params*tokens + attention",
        "per_arch": per_arch,
        "devices": [str(d) for d in jax.devices()],
        "n_cpu": os.cpu_count(),
    }


def describe(r: dict) -> str:
    lines = [
        f"train (default preset, batch {r['batch']}, {len(r['devices'])} device(s)): "
        f"dense fp32 matmul peak {r['matmul_peak_flops'] / 1e9:.0f} GFLOP/s "
        f"({r['matmul_peak_flops_after'] / 1e9:.0f} after)"
    ]
    for arch, a in r["per_arch"].items():
        lines.append(
            f"  {arch}: {a['steps_per_s']:.2f} steps/s, {a['achieved_flops'] / 1e9:.1f} model GFLOP/s, "
            f"MFU {100 * a['mfu']:.1f}% ({a['model_flops_per_step'] / 1e9:.2f} model GFLOP/step, "
            f"XLA counts {a['xla_flops_per_step'] / 1e9:.2f})"
        )
        w = a.get("where_time_goes")
        if w and "share" in w:
            parts = ", ".join(f"{k} {100 * v:.0f}%" for k, v in w["share"].items())
            lines.append(
                f"     device time: {parts} (traced {w['traced_wall_ms_per_step']:.0f} ms/step wall)"
            )
        if arch == r["arch"]:
            lines.append(
                f"     {r['ensemble_k']}-seed ensemble (one vmapped step): {r['ensemble_steps_per_s']:.2f} steps/s, "
                f"MFU {100 * r['ensemble_mfu']:.1f}%, speedup {r['ensemble_speedup']:.2f}x over "
                f"{r['ensemble_k']} single runs")
            lines.append(f"     in the training loop ({r['loop_steps']} steps each): the ensemble took "
                         f"{r['loop_ensemble_s']:.1f} s, {r['ensemble_k']} single runs {r['loop_sequential_s']:.1f} s "
                         f"({r['ensemble_loop_speedup']:.2f}x)")
            w = r.get("ensemble_where_time_goes")
            if w and "share" in w:
                parts = ", ".join(f"{k} {v:.0f} ms" for k, v in w["ms_per_step"].items())
                lines.append(f"     ensemble device time per step: {parts} (single model above, per step)")
        if a["mfu"] < 0.5:
            lines.append(
                "     below 50%: small matrices (d=64) run far below the 1024x1024 matmul rate, and the "
                "backward pass spends time in layout copies and elementwise ops"
            )
    return "\n".join(lines)
