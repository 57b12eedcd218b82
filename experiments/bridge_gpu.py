"""The bridge on a GPU: throughput and memory of ~1B random-init models, then real local checkpoints.

Part 1 (always): a ~1B-parameter random-init Llama (AR, `LlamaForCausalLM`) and a ~1B random-init
bidirectional masked LM (`ModernBertForMaskedLM`: transformers' own encoder with a masked-LM head,
so no remote code; LLaDA itself is a bidirectional Llama-like stack of the same cost per token).
Through the bridge (`HFDenoiser` + the toy lab's loop driver, full traces recorded) it measures
tokens/s, steps/s and peak GPU memory (`torch.cuda.max_memory_allocated`) for `ar` on the Llama
and `low_confidence` (one block and semi-AR blocks) and `ar_order` on the masked LM, plus the
throughput ratio vs a plain-torch LLaDA generate.py reference run one prompt at a time.
Part 2 (optional): the audit preset, one `toydlm audit` per local checkpoint (`--llada`, `--dream`,
`--ar`, `--pair`) on the shipped prompt sets (HarmBench test, Alpaca harmless): for a diffusion
checkpoint the sampler swap on fixed weights (`ar_order`, global `low_confidence`, semi-AR blocks,
EOS-last and EOS-forbidden controls) at every `--ckpt-gen-length`, at temperature 0; for an AR one
its attack table and length test. Each audit prints its plan and an estimate measured on its first
batch, stores every finished batch under `bridge_gpu_runs/<label>/`, and stops cleanly between
batches at `--max-seconds` (default 540, so one run fits a 10-minute GPU call); rerunning the same
command resumes. Part 1 is a stated estimate of about 4.5 min on one H100 (no GPU was available to
measure it), so run real checkpoints with `--skip-random-init`.
Results are written after every job (atomically) to `--out` (default results/bridge_gpu.json).
`--tiny` runs CPU-sized configurations of everything (used by the tests).

  python experiments/bridge_gpu.py                                    # part 1 only
  python experiments/bridge_gpu.py --llada /models/LLaDA-8B-Instruct --trust-remote-code
  python experiments/bridge_gpu.py --pair /models/Qwen3-0.6B /models/Qwen3-0.6B-diffusion --trust-remote-code
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing is ever downloaded
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # a GPU JAX must leave memory to torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from toydlm.io import atomic_write_json, provenance  # noqa: E402

SIZES = {  # ~1B parameters each at vocab 32000; `tiny` for CPU tests
    "full": {"vocab": 32000, "hidden": 2048, "ar_layers": 20, "mlm_layers": 18, "heads": 16, "inter": 5632,
             "batch": 16, "prompt_len": 32, "gen_length": 128, "steps": 32, "block": 32, "seconds": 10.0,
             "batch1_per_round": 1},
    "tiny": {"vocab": 256, "hidden": 32, "ar_layers": 1, "mlm_layers": 1, "heads": 2, "inter": 64,
             "batch": 2, "prompt_len": 4, "gen_length": 4, "steps": 2, "block": 2, "seconds": 0.0,
             "batch1_per_round": 0},
}
DLM_SAMPLERS = ("low_confidence", "low_confidence_block", "ar_order")  # part 1's throughput runs
AUDIT_SAMPLERS = ("ar_order", "low_confidence", "low_confidence@B", "low_confidence+eos_last",
                  "low_confidence+eos_forbidden")  # part 2's swap; @B is --ckpt-block


def parse(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tiny", action="store_true", help="CPU-sized configurations (tests)")
    ap.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available)")
    ap.add_argument("--dtype", default=None, choices=("float32", "bfloat16", "float16"),
                    help="default bfloat16 on cuda, float32 on cpu")
    ap.add_argument("--out", default=str(ROOT / "results" / "bridge_gpu.json"))
    ap.add_argument("--max-seconds", type=float, default=540.0, help="start no new job after this")
    ap.add_argument("--seconds", type=float, default=None, help="timing budget per measurement")
    ap.add_argument("--skip-random-init", action="store_true", help="only the real checkpoints")
    ap.add_argument("--llada", help="local LLaDA-style checkpoint (dlm)")
    ap.add_argument("--dream", help="local Dream-style checkpoint (dlm, logits shifted by one)")
    ap.add_argument("--ar", help="local AR chat checkpoint (e.g. Llama-3.1-8B-Instruct)")
    ap.add_argument("--pair", nargs=2, metavar=("AR_PATH", "DLM_PATH"), help="same-lineage AR and diffusion pair")
    ap.add_argument("--pair-shift", action="store_true", help="the pair's DLM predicts the next token (Dream-style)")
    ap.add_argument("--trust-remote-code", action="store_true", help="allow the checkpoints' own modelling code")
    ap.add_argument("--prompts", default="harmbench", help="harmful prompts: a shipped set name or a file")
    ap.add_argument("--harmless", default="harmless", help="benign prompts: a shipped set name or a file")
    ap.add_argument("--n", type=int, default=16, help="prompts per set for real checkpoints")
    ap.add_argument("--ckpt-gen-length", type=int, nargs="+", default=[64, 128],
                    help="the audit's gen-length sweep (every cell at each)")
    ap.add_argument("--ckpt-steps", type=int, default=32)
    ap.add_argument("--ckpt-block", type=int, default=32, help="block length of the semi-AR diffusion run")
    ap.add_argument("--ckpt-batch", type=int, default=16)
    ap.add_argument("--ckpt-samplers", nargs="+", default=list(AUDIT_SAMPLERS),
                    help="the diffusion checkpoints' audit sampler specs (@B: --ckpt-block; an AR checkpoint "
                    "runs `ar`)")
    return ap.parse_args(argv)


def device_info(device: str) -> dict:
    import jax
    import torch

    info = {"device": device, "torch": torch.__version__, "jax_backend": jax.default_backend(),
            "jax_devices": [str(d) for d in jax.devices()], "cpu_count": os.cpu_count()}
    if device.startswith("cuda"):
        p = torch.cuda.get_device_properties(torch.device(device))
        info.update(gpu=p.name, gpu_memory_gb=p.total_memory / 2**30, cuda=torch.version.cuda)
    return info


def _peak_reset(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


def _peak_gb(device: str) -> float | None:
    import torch

    return torch.cuda.max_memory_allocated() / 2**30 if device.startswith("cuda") else None


def build_llama(z: dict, device: str, dtype: str):
    import torch
    import transformers as tf

    torch.manual_seed(0)
    cfg = tf.LlamaConfig(vocab_size=z["vocab"], hidden_size=z["hidden"], intermediate_size=z["inter"],
                         num_hidden_layers=z["ar_layers"], num_attention_heads=z["heads"],
                         num_key_value_heads=max(1, z["heads"] // 4), max_position_embeddings=4096,
                         pad_token_id=0, eos_token_id=1, bos_token_id=2, tie_word_embeddings=False)
    with torch.device(device):
        model = tf.LlamaForCausalLM(cfg)
    return model.to(dtype=getattr(torch, dtype)).eval()


def time_sampler(model, kind: str, mask_id: int, prompts: np.ndarray, cfg, gen_length: int, seconds: float,
                 device: str) -> dict:
    """Tokens/s, steps/s and peak memory of the bridge's loop driver for one sampler (after a warm-up)."""
    from toydlm.bench.bridge import _sync
    from toydlm.bridge.adapters import HFDenoiser
    from toydlm.bridge.sampling import loop_sample

    cfg = cfg.resolved(gen_length)
    vocab = int(model.get_output_embeddings().weight.shape[0])
    den = HFDenoiser(model, kind, mask_id=mask_id, pad_id=0, vocab_size=vocab, prompt_len=prompts.shape[1],
                     response_len=gen_length)
    B = len(prompts)
    try:
        t0 = time.perf_counter()
        loop_sample(den, prompts, gen_length, cfg, 0, mask_id, 1, B)
        warm = time.perf_counter() - t0
        _peak_reset(device)
        total, rounds = 0.0, 0
        while rounds < 2 or total < seconds:
            t0 = time.perf_counter()
            loop_sample(den, prompts, gen_length, cfg, rounds, mask_id, 1, B)
            _sync(device)
            total += time.perf_counter() - t0
            rounds += 1
    finally:
        den.close()
    return {"sampler": cfg.name, "block_length": cfg.block_length, "steps": cfg.steps, "batch": B,
            "gen_length": gen_length, "tokens_per_s": rounds * B * gen_length / total,
            "steps_per_s": rounds * cfg.steps / total, "seconds_per_batch": total / rounds, "rounds": rounds,
            "warmup_s": warm, "peak_gpu_memory_gb": _peak_gb(device)}


def random_init_part(z: dict, device: str, dtype: str, deadline: float, log) -> dict:
    """Part 1: ~1B random-init AR and masked LM through the bridge, and the ratio vs the reference."""
    import torch

    from toydlm.bench.bridge import build_masked_lm, measure_throughput
    from toydlm.samplers import SamplerConfig

    out: dict = {"config": z}
    rng = np.random.default_rng(0)
    prompts = rng.integers(3, z["vocab"] - 1, size=(z["batch"], z["prompt_len"]))
    L, S = z["gen_length"], z["steps"]
    jobs = [("ar", "ar", SamplerConfig("ar", temperature=0.0)),
            ("dlm", "low_confidence", SamplerConfig("low_confidence", steps=S, temperature=0.0)),
            ("dlm", "low_confidence_block", SamplerConfig("low_confidence", steps=S, block_length=z["block"],
                                                          temperature=0.0)),
            ("dlm", "ar_order", SamplerConfig("ar_order", temperature=0.0))]
    model = None
    for kind, name, cfg in jobs:
        if time.perf_counter() > deadline:
            out[name] = {"skipped": "--max-seconds reached"}
            continue
        if model is None or getattr(model, "_bench_kind", None) != kind:
            model = None
            if device.startswith("cuda"):
                torch.cuda.empty_cache()
            t0 = time.perf_counter()
            if kind == "ar":
                model = build_llama(z, device, dtype)
            else:
                with torch.device(device):
                    model, _ = build_masked_lm(z["vocab"], z["hidden"], z["mlm_layers"], z["heads"],
                                               intermediate=z["inter"], device=device, dtype=dtype)
            model._bench_kind = kind
            n_params = sum(p.numel() for p in model.parameters())
            out[f"{kind}_model"] = {"class": type(model).__name__, "n_params": n_params,
                                    "build_s": time.perf_counter() - t0}
            log(f"built {type(model).__name__} ({n_params / 1e9:.2f} B params) in {time.perf_counter() - t0:.0f} s")
        out[name] = time_sampler(model, kind, z["vocab"] - 1, prompts, cfg, L, z["seconds"], device)
        log(f"{name}: {out[name]['tokens_per_s']:,.0f} tok/s, peak {out[name]['peak_gpu_memory_gb']} GiB")
    if time.perf_counter() < deadline and model is not None and model._bench_kind == "dlm":
        _peak_reset(device)
        out["vs_reference"] = measure_throughput(
            model, z["vocab"] - 1, prompts, gen_length=L, steps=S, block_length=None, temperature=0.0,
            batch=z["batch"], seconds=z["seconds"], ref_per_round=2, batch1_per_round=z["batch1_per_round"],
            device=device,
            max_seconds=max(1.0, deadline - time.perf_counter()))
        out["vs_reference"]["peak_gpu_memory_gb"] = _peak_gb(device)
        log(f"vs reference: {out['vs_reference']['speedup_vs_reference']:.2f}x")
    else:
        out["vs_reference"] = {"skipped": "--max-seconds reached"}
    return out


def checkpoint_jobs(args) -> list[tuple[str, str, str, bool]]:
    """(label, path, kind, logits_shift) for every requested real checkpoint."""
    jobs = []
    if args.llada:
        jobs.append(("llada", args.llada, "dlm", False))
    if args.dream:
        jobs.append(("dream", args.dream, "dlm", True))
    if args.ar:
        jobs.append(("ar", args.ar, "ar", False))
    if args.pair:
        jobs += [("pair_ar", args.pair[0], "ar", False), ("pair_dlm", args.pair[1], "dlm", args.pair_shift)]
    return jobs


def audit_config(args, label: str, path: str, kind: str, shift: bool, outdir: Path, device: str, dtype: str,
                 minutes: float | None):
    """The audit preset of one checkpoint: raw and benign prompts at temperature 0, the diffusion sampler
    swap with both end-token controls at every --ckpt-gen-length (AR: the one `ar` sampler)."""
    from toydlm.real.audit.spec import AuditConfig

    samplers = tuple(s.replace("@B", f"@{args.ckpt_block}") for s in args.ckpt_samplers) if kind == "dlm" else None
    return AuditConfig(model=path, kind=kind, out=str(outdir / label), prompts=args.prompts, harmless=args.harmless,
                       n=args.n, samplers=samplers, temperatures=(0.0,), gen_lengths=tuple(args.ckpt_gen_length),
                       steps=args.ckpt_steps, device=device, dtype=dtype, batch_size=args.ckpt_batch,
                       max_minutes=minutes, trust_remote_code=args.trust_remote_code,
                       logits_shift=shift if kind == "dlm" else None, progress=False)


def checkpoint_part(args, device: str, dtype: str, outdir: Path, deadline: float, log, save) -> dict:
    """Part 2: one `toydlm audit` per checkpoint, stopped cleanly at the deadline (rerun to resume); a failing
    job records its error and the rest go on."""
    from toydlm.real.audit.runner import run_audit

    res = {}
    for label, path, kind, shift in checkpoint_jobs(args):
        left = (deadline - time.perf_counter()) / 60
        if left <= 0:
            res[label] = {"skipped": "--max-seconds reached"}
            continue
        t0 = time.perf_counter()
        _peak_reset(device)
        try:
            a = run_audit(audit_config(args, label, path, kind, shift, outdir, device, dtype, left), log=log)
        except Exception as e:  # noqa: BLE001 - one bad checkpoint must not lose the others' results
            res[label] = {"error": f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"}
            log(f"{label}: {res[label]['error']}")
            save(res)
            continue
        keep = ("sampler", "attack", "gen_length", "n", "refusal_rate", "refusal_rate_ci95", "asr", "mean_length",
                "eos_first_excess", "hrr", "frr")
        res[label] = {"path": path, "kind": kind, "logits_shift": a["model"]["logits_shift"],
                      "audit": str(outdir / label / "audit.json"), "complete": a["complete"],
                      "wall_s": time.perf_counter() - t0, "timing": a["timing"], "peak_gpu_memory_gb": _peak_gb(device),
                      "cells": [{k: c[k] for k in keep} for c in a["cells"]]}
        log(f"{label}: {res[label]['wall_s']:.0f} s, " + ", ".join(
            f"{c['sampler']}@L{c['gen_length']} {c['attack']} refusal={c['refusal_rate']:.2f}" for c in a["cells"]))
        save(res)
    return res


def expected_runtime(args, tiny: bool) -> str:
    """What to expect: part 1 is a stated estimate (never measured here); part 2's audits print their own
    plan and an estimate measured on their first batch."""
    if tiny:
        return "expected runtime: under a minute on a CPU (tiny configurations)"
    part1 = "" if args.skip_random_init else "random-init part: about 4.5 min on one H100 (an estimate); "
    n = len(checkpoint_jobs(args))
    return (f"expected runtime: {part1}{n} checkpoint audit(s), each printing its plan and an estimate measured on "
            f"its first batch; --max-seconds {args.max_seconds:.0f} stops them cleanly between batches (rerun the "
            "same command to resume)")


def main(argv=None) -> dict:
    args = parse(argv)
    import torch

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        sys.exit("--device cuda was asked for, but torch sees no CUDA device")
    dtype = args.dtype or ("bfloat16" if device.startswith("cuda") else "float32")
    z = dict(SIZES["tiny" if args.tiny else "full"])
    if args.seconds is not None:
        z["seconds"] = args.seconds
    jobs = checkpoint_jobs(args)
    from toydlm.bridge.prompts import prompt_set_path

    for f in ([args.prompts, args.harmless] if jobs else []):
        if not prompt_set_path(f).is_file():
            sys.exit(f"prompt file not found: {f} (pass --prompts / --harmless: a shipped set name or a file)")
    from toydlm.errors import UserError
    from toydlm.real.audit.spec import check_config

    for label, path, kind, shift in jobs:  # bad step / block settings fail here, before anything is loaded
        try:
            check_config(audit_config(args, label, path, kind, shift, Path(args.out).parent, "cpu", "float32", None))
        except UserError as e:
            sys.exit(f"{label}: {e}")
    start = time.perf_counter()
    deadline = start + args.max_seconds

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - start:6.1f} s] {msg}", flush=True)

    log(expected_runtime(args, args.tiny))
    out = Path(args.out)
    result = {"experiment": "bridge_gpu", **provenance(seed=0, config={**vars(args), "device": device,
                                                                        "dtype": dtype, "sizes": z}),
              "device_info": device_info(device)}
    if not args.skip_random_init:
        result["random_init"] = random_init_part(z, device, dtype, deadline, log)
        result["wall_s"] = time.perf_counter() - start
        atomic_write_json(out, result)
    if jobs:
        def save(res: dict) -> None:
            result["checkpoints"], result["wall_s"] = res, time.perf_counter() - start
            atomic_write_json(out, result)

        result["checkpoints"] = checkpoint_part(args, device, dtype, out.parent / "bridge_gpu_runs", deadline, log,
                                                save)
    result["wall_s"] = time.perf_counter() - start
    atomic_write_json(out, result)
    log(f"wrote {out}")
    return result


if __name__ == "__main__":
    main()
