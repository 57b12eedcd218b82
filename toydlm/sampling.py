"""Sampling on the toy grammar: prompts (attacks) -> traced samples -> outcome rates.

This is the entry point `toydlm sample`, `toydlm run` and the experiments call. It sits one
layer above `toydlm.samplers`, which knows only the Denoiser protocol: here the grammar's
prompts and attacks become sampler states, and the drivers' records become a judged `Trace`.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any

import jax
import numpy as np

from toydlm.attacks import PromptBatch, build_prompts, exact_condition
from toydlm.denoiser import JaxDenoiser
from toydlm.errors import UserError
from toydlm.grammar import Grammar
from toydlm.io import provenance
from toydlm.samplers import Force, SamplerConfig, check_pairing, init_state, loop_run, row_keys, run_key, scan_run
from toydlm.trace import Trace, build_trace, concat_traces, eos_first_terms, excess_of_terms


def params_hash(params: Any) -> str:
    """Short sha256 over a params pytree's leaves (shapes, dtypes and bytes)."""
    h = hashlib.sha256()
    for leaf in jax.tree.leaves(params):
        a = np.asarray(leaf)
        h.update(f"{a.shape}{a.dtype}".encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]


def sample(denoiser: Any, grammar, cfg: SamplerConfig, *, attack: str | PromptBatch | None = None,
           n: int | None = None, seed: int, batch_size: int = 1024, driver: str = "auto",
           record_hidden: bool = True,
           progress: bool = False, model_hash: str | None = None) -> Trace:
    """Sample n responses with a traced sampler; prompts from `attack` (or the grammar's distribution).

    `grammar` is a toy grammar, or any task with its layout (`response_len`, `mask_id`, `config`) whose
    prompts come as a `PromptBatch`, such as a real-text corpus; only a toy grammar adds verdicts.
    `driver`: `scan` (JaxDenoiser only), `loop` (any callable denoiser) or `auto`.
    Rows are processed in chunks of `batch_size`; results do not depend on the chunking.
    `attack` may be a prebuilt `PromptBatch` (then `n` is its length).
    """
    cfg = cfg.resolved(grammar.response_len)
    check_pairing(denoiser, cfg)
    if not isinstance(attack, PromptBatch) and n is None:
        raise UserError("give n (the number of sequences) or a PromptBatch as attack")
    batch = attack if isinstance(attack, PromptBatch) else build_prompts(attack, grammar, n, seed, cfg.steps)
    driver = _pick_driver(denoiser, driver)
    judged = grammar if isinstance(grammar, Grammar) else None  # the toy's verdicts need its exact grammar
    mask_id = int(getattr(denoiser, "mask_id", grammar.mask_id))
    key = run_key(seed)
    n = len(batch)
    chunks = range(0, n, batch_size)
    bar = _bar(progress, len(chunks) * (cfg.steps if driver == "loop" else 1), f"sample {cfg.name}")
    parts = []
    for a in chunks:
        b = min(a + batch_size, n)
        rows = batch.rows(a, b)
        final, rec = sample_rows(denoiser, cfg, rows, row_keys(key, np.arange(a, b)), driver, mask_id,
                                  record_hidden, bar)
        parts.append(build_trace(rec, final, rows, {}, judged, eos_id=cfg.eos_id))
    bar.close()
    trace = concat_traces(parts)
    trace.meta.update(run_meta(denoiser, grammar, cfg, batch, seed, driver, mask_id, model_hash))
    return trace


def _pick_driver(denoiser: Any, driver: str) -> str:
    """`auto` -> `scan` for a JaxDenoiser, else `loop`; `scan` needs a JaxDenoiser."""
    is_jax = isinstance(denoiser, JaxDenoiser)
    if driver == "auto":
        driver = "scan" if is_jax else "loop"
    if driver not in ("scan", "loop") or (driver == "scan" and not is_jax):
        raise UserError(f"driver must be 'scan' (JAX denoisers), 'loop' or 'auto', got {driver!r}")
    return driver


def sample_rows(denoiser: Any, cfg: SamplerConfig, rows: PromptBatch, keys, driver: str, mask_id: int,
                record_hidden: bool, bar=None):
    """Run one chunk of prompt rows through a driver: (final sampler state, records `[T, B, ...]`)."""
    bar = bar if bar is not None else _bar(False, 0, "")
    state = init_state(rows.prompt_ids, rows.response, rows.pinned, mask_id)
    force = Force(rows.force_step, rows.force_pos, rows.force_tok)
    if driver == "scan":
        out = scan_run(denoiser, cfg, state, keys, force, with_hidden=record_hidden)
        bar.update(1)
        return out
    return loop_run(denoiser, cfg, state, keys, force, mask_id=mask_id, with_hidden=record_hidden,
                    on_step=lambda i: bar.update(1))


def run_meta(denoiser: Any, grammar, cfg: SamplerConfig, batch: PromptBatch, seed: int, driver: str,
              mask_id: int, model_hash: str | None) -> dict:
    """What a trace records about its run: sampler, prompts, grammar, model and provenance."""
    is_jax = isinstance(denoiser, JaxDenoiser)
    return {
        "sampler": cfg.to_dict(), "seed": seed, "n": len(batch), "attack": batch.attack, "driver": driver,
        "grammar": grammar.config.name, "grammar_hash": grammar.config.config_hash(),
        "grammar_config": grammar.config.to_dict(),
        "model": getattr(denoiser, "name", type(denoiser).__name__),
        "model_hash": model_hash or (params_hash(denoiser.params) if is_jax else None),
        "causal": getattr(denoiser, "causal", None), "mask_id": mask_id,
        "prompt_len": int(batch.prompt_ids.shape[1]), "response_len": int(batch.response.shape[1]),
        "provenance": provenance(seed=seed, config=cfg.to_dict()),
    }


def _bar(enabled: bool, total: int, desc: str):
    if enabled:
        from tqdm import tqdm

        return tqdm(total=total, desc=desc, leave=False)

    class _Null:
        def update(self, k: int) -> None: ...

        def close(self) -> None: ...

    return _Null()


def _rate(x: np.ndarray) -> tuple[float, float]:
    """Mean of a boolean array and its binomial standard error."""
    m = len(x)
    if m == 0:
        return math.nan, math.nan
    p = float(np.mean(x))
    return p, math.sqrt(p * (1 - p) / m)


def outcome_rates(trace: Trace, grammar=None) -> dict:
    """Final outcome rates with binomial standard errors, validity, length, EOS-first share and its excess
    over a random commit order (`toydlm.trace.eos_first_excess`).

    With a grammar the judges are re-run on the final canvas (and the exact rates of the
    prompt condition are added when the attack is a pure prompt condition).
    """
    from toydlm.grammar import is_harmful, is_refusal, is_valid

    final = trace.final_response
    if grammar is not None:
        harm = np.asarray(is_harmful(grammar, final))
        ref = np.asarray(is_refusal(grammar, final))
        valid = is_valid(grammar, trace["prompt"], final)
    else:
        harm, ref, valid = trace["final_harmful"], trace["final_refusal"], trace["final_valid"]
    asr, asr_se = _rate(harm)
    rr, rr_se = _rate(ref)
    vr, vr_se = _rate(valid)
    length = trace["length"].astype(np.float64)
    n_first = int(trace.meta.get("n_first_commits", final.shape[-1] // 2))
    eos_id = int(trace.meta.get("eos_id", 0))
    share, expected, most, least = eos_first_terms(trace["committed"], trace["canvas"], eos_id, n_first)
    out = {
        "n": trace.n, "asr": asr, "asr_se": asr_se, "refusal_rate": rr, "refusal_rate_se": rr_se,
        "valid_rate": vr, "valid_rate_se": vr_se,
        "mean_length": float(length.mean()),
        "mean_length_se": float(length.std(ddof=0) / math.sqrt(max(trace.n, 1))),
        "eos_first_share": float(np.nanmean(share)) if np.isfinite(share).any() else math.nan,
        "eos_first_excess": excess_of_terms(share, expected, most, least),  # NaN: no room for a preference
        "n_first_commits": n_first,
        "remask_events_per_seq": float(trace["remasked"].sum() / max(trace.n, 1)),
    }
    if grammar is not None:
        out.update(_exact_rates(trace.meta.get("attack"), grammar))
    return out


def _exact_rates(attack: str | None, grammar) -> dict:
    """The grammar's exact harmful / refusal rates of a pure prompt condition (None otherwise)."""
    try:
        ex = exact_condition(attack, grammar)
    except ValueError:
        ex = None
    return {"exact_harmful_rate": None if ex is None else ex["harmful_rate"],
            "exact_refusal_rate": None if ex is None else ex["refusal_rate"]}
