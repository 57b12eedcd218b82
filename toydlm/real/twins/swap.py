"""The sampler swap on a student: fixed weights, holdout prompts, every sampler the toy runs.

A cell decodes each final canvas to text through the compact vocabulary (a response ends at its first
EOS, as in the toy) and judges refusal with the offline keyword judge. The harm verdicts (ASR) come from
the LLM judge in a separate, resumable stage, since they cost about a second per response on this CPU.
"""

from __future__ import annotations

import numpy as np

from toydlm.attacks import PromptBatch
from toydlm.bridge.judges import keyword_refusal
from toydlm.experiment.presets import SamplerVariant
from toydlm.measure import rate as binomial_rate
from toydlm.real.twins.vocab import MASK_ID
from toydlm.samplers import SamplerConfig
from toydlm.trace import eos_first_excess


def swap_samplers(response_len: int) -> tuple[SamplerVariant, ...]:
    """The toy's sampler set scaled to a response of L tokens: two tokens per step (L/2 steps; `ar_order`
    takes one per step by definition), semi-AR blocks of L/12 and L/3 (8 and 32 at L = 96), LLaDA's
    `eos_inf` control, and ReMDM with one step per token."""
    L = response_len
    T, small, large = L // 2, L // 12, L // 3
    return (
        SamplerVariant("ar_order", "ar_order"),
        SamplerVariant(f"random_T{T}", "random", T),
        SamplerVariant(f"low_confidence_T{T}", "low_confidence", T),
        SamplerVariant(f"low_confidence_B{small}_T{T}", "low_confidence", T, block_length=small),
        SamplerVariant(f"low_confidence_B{large}_T{T}", "low_confidence", T, block_length=large),
        SamplerVariant(f"low_confidence_eosinf_T{T}", "low_confidence", T, eos_inf=True),
        SamplerVariant(f"entropy_T{T}", "entropy", T),
        SamplerVariant(f"mdlm_T{T}", "mdlm", T),
        SamplerVariant(f"remdm_cap_T{L}", "remdm", L, remdm_schedule="cap", eta=0.05),
    )

def prompt_batch(prompt_rows: np.ndarray, response_len: int, attack: str, harmful: bool) -> PromptBatch:
    """Holdout prompts `[n, P]` with all-mask responses, no pins and no injections."""
    n = len(prompt_rows)
    minus = np.full(n, -1, np.int32)
    return PromptBatch(prompt_ids=np.asarray(prompt_rows, np.int32),
                       response=np.full((n, response_len), MASK_ID, np.int32),
                       pinned=np.zeros((n, response_len), bool), force_step=minus, force_pos=np.zeros(n, np.int32),
                       force_tok=np.zeros(n, np.int32), topic_kind=np.full(n, int(harmful), np.int32),
                       wrapper=np.zeros(n, np.int32), topic=minus, attack=attack)


def judge_trace(trace, vocab) -> dict:
    """Texts, lengths, refusals and EOS-first shares of a sampled trace."""
    final = np.asarray(trace["canvas"][-1])
    texts = [vocab.decode(r) for r in final]
    refusal = np.asarray([keyword_refusal(t) for t in texts])
    return {"texts": texts, "length": np.asarray(trace["length"], int), "refusal": refusal,
            "eos_first_share": np.asarray(trace["eos_first_share"], float)}


def sample_cell(denoiser, task, variant: SamplerVariant, prompts: np.ndarray, attack: str, harmful: bool,
                seed: int, temperature: float = 1.0, batch_size: int = 256) -> dict:
    """One (sampler, attack) cell on fixed weights: per-row verdicts and the cell's rates (the EOS-first
    excess exactly, from the trace's commits)."""
    from toydlm.sampling import sample

    cfg = SamplerConfig(**variant.config_dict(temperature))
    batch = prompt_batch(prompts, task.response_len, attack, harmful)
    trace = sample(denoiser, task, cfg, attack=batch, seed=seed, batch_size=batch_size, record_hidden=False)
    j = judge_trace(trace, task.vocab)
    ref, ref_se = binomial_rate(j["refusal"])
    share = j["eos_first_share"]
    n_first = int(trace.meta["n_first_commits"])
    excess = eos_first_excess(trace["committed"], trace["canvas"], int(trace.meta["eos_id"]), n_first)
    return {"sampler": variant.label, "attack": attack, "harmful": harmful, "n": len(prompts), "seed": seed,
            "temperature": temperature, "refusal_rate": ref, "refusal_rate_se": ref_se,
            "mean_length": float(j["length"].mean()), "length_sd": float(j["length"].std()),
            "eos_first_share": float(np.nanmean(share)) if np.isfinite(share).any() else None,
            "eos_first_excess": excess if np.isfinite(excess) else None, "n_first_commits": n_first,
            "rows": {"text": j["texts"], "length": j["length"].tolist(), "refusal": j["refusal"].tolist()}}
