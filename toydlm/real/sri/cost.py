"""What each detector costs beside generation, measured side by side in one run on one batch.

Time: each step runs `reps` times after one warm-up and the fastest is kept (steady state). Generation is
timed with and without recording the hidden states SRI needs, so the recording's own cost shows apart
from the signal's. FLOPs are counted, not measured: 2 x parameters x tokens for a transformer's matmuls
(attention's length-squared term and elementwise work left out, which favours the larger models), the
output head only where logits are read; for SRI Guard, the pooling, two cosine distances and the
autoencoder per step.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np


def fastest(fn: Callable[[], object], reps: int = 2) -> tuple[float, object]:
    """(seconds of the fastest of `reps` runs after one warm-up, the last result)."""
    out = fn()
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def lm_sizes(model) -> tuple[int, int]:
    """(matmul parameters outside the output head, output-head parameters) of an HF causal LM."""
    head = model.get_output_embeddings().weight
    emb = model.get_input_embeddings().weight
    total = sum(p.numel() for p in model.parameters())
    body = total - emb.numel() - (0 if head is emb else head.numel())
    return int(body), int(head.numel())


def lm_flops(sizes: tuple[int, int], tokens: float, logit_positions: float) -> float:
    """Forward matmul FLOPs of `tokens` positions of which `logit_positions` read the output head."""
    body, head = sizes
    return 2.0 * body * tokens + 2.0 * head * logit_positions


def sri_guard_flops(steps: int, d: int, guard_dims: list[int]) -> float:
    """Per response: running-mean pooling (2d), two cosine distances (about 6d each) per step, then the
    autoencoder's matmuls over the T-step signal."""
    ae = sum(2 * a * b for a, b in zip(guard_dims[:-1], guard_dims[1:]))
    return steps * (2 * d + 12 * d) + ae


def shares(seconds: dict[str, float], flops: dict[str, float], gen_s: float, gen_flops: float) -> dict:
    """Each detector's time and FLOPs as a percentage of generation's."""
    return {k: {"seconds": seconds[k], "overhead_pct": 100 * seconds[k] / gen_s,
                "flops": flops.get(k), "flops_pct": 100 * flops[k] / gen_flops if k in flops else None}
            for k in seconds}


def measure(setup, plan, judges: dict, sri_score: Callable, probe_score: Callable, nll: Callable,
            guard_dims: list[int], reps: int = 2) -> dict:
    """Generation of `plan` (one batch) and every detector on its output, timed in this one run.
    `sri_score(states [N,T,D]) -> [N]`, `probe_score(first states [N,D]) -> [N]`, `nll(users) -> [N]`."""
    from toydlm.bridge.encode import encode_prompts
    from toydlm.bridge.judges import keyword_refusal
    from toydlm.bridge.llm_judge import pair_ids
    from toydlm.real.kit.generate import decode_cell, responses
    from toydlm.real.sri.states import trace_states

    gen_plain, _ = fastest(lambda: decode_cell(setup, plan), reps)
    gen_hidden, trace = fastest(lambda: decode_cell(setup, plan, record_hidden=True), reps)
    samples = responses(setup.tok, trace.final_response, setup.eos_id, plan.samples)
    lengths = np.asarray([s["length"] for s in samples])
    users = [plan.users[s["prompt"]] for s in samples]
    resp = [plan.prefills[s["prompt"]] + s["text"] for s in samples]
    seconds = {
        "sri_guard": fastest(lambda: sri_score(trace_states(trace, lengths)), reps)[0],
        "text_level_refusal": fastest(lambda: [keyword_refusal(r) for r in resp], reps)[0],
        "linear_probe_first_step": fastest(lambda: probe_score(np.asarray(trace["hidden_mean"][0])), reps)[0],
        "perplexity_filter": fastest(lambda: nll(users), reps)[0],
    } | {name: fastest(lambda j=j: j.scores(users, resp), reps)[0] for name, j in judges.items()}
    ids, att = encode_prompts(setup.tok, users, plan.prefills)
    prompt_tokens, gen_tokens = float(np.asarray(att).sum()), float(lengths.sum() + (lengths < setup.gen_length).sum())
    gen_sizes = lm_sizes(setup.hf)
    d = int(np.asarray(trace["hidden_mean"]).shape[-1])
    flops = {"sri_guard": len(samples) * sri_guard_flops(setup.gen_length, d, guard_dims),
             "linear_probe_first_step": len(samples) * 2.0 * d,
             "perplexity_filter": lm_flops(gen_sizes, prompt_tokens, prompt_tokens)}
    for name, j in judges.items():
        n_tok = sum(len(pair_ids(j.tokenizer, j._tail, u, r, j.max_response_tokens, j.prompt.user))
                    for u, r in zip(users, resp))
        flops[name] = lm_flops(lm_sizes(j.model), n_tok + len(j.prefix_ids), len(samples))
    gen_flops = lm_flops(gen_sizes, prompt_tokens + gen_tokens, gen_tokens)
    return {"batch": len(samples), "reps": reps, "prompt_tokens": prompt_tokens, "generated_tokens": gen_tokens,
            "generation_s": gen_plain, "generation_with_states_s": gen_hidden,
            "state_recording_overhead_pct": 100 * (gen_hidden - gen_plain) / gen_plain,
            "generation_flops": gen_flops, "detectors": shares(seconds, flops, gen_plain, gen_flops)}
