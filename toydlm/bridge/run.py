"""`toydlm bridge run`: step-wise refusal analysis of a Hugging Face checkpoint.

Judges on real text: refusal = the research's keyword judge; harm = a classifier judge when one
is given, else the keyword proxy "final answer is not a refusal" (the research's RR-based ASR).
Step-wise: committed refusal is judged on the committed text of every step; a draft is
"harmful-looking" when its argmax x̂₀ text (committed + predicted) is not a refusal. With the
proxy, committed harm is only known at the end. Everything is labelled in `summary.json`.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from toydlm.bridge.analysis import sri_report, theory_fit
from toydlm.bridge.judges import ClassifierJudge, agreement, keyword_refusal
from toydlm.bridge.prompts import load_prompts
from toydlm.bridge.sampling import loop_sample
from toydlm.errors import UserError
from toydlm.io import atomic_write_bytes, atomic_write_json, provenance
from toydlm.measure import binomial_se, hrr_frr, trajectory_states
from toydlm.samplers import SamplerConfig
from toydlm.trace import save_trace


def encode_prompts(tok, instructions: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Chat-templated prompts, left-padded to one length: (ids [N, P], attention [N, P])."""
    rows = []
    for ins in instructions:
        if getattr(tok, "chat_template", None):
            ids = tok.apply_chat_template([{"role": "user", "content": ins}], add_generation_prompt=True,
                                          tokenize=True)
            if isinstance(ids, dict):
                ids = ids["input_ids"]
        else:
            ids = tok(ins)["input_ids"]
        rows.append(list(ids))
    P = max(len(r) for r in rows)
    pad = tok.pad_token_id if tok.pad_token_id is not None else (tok.eos_token_id or 0)
    ids = np.full((len(rows), P), pad, np.int64)
    att = np.zeros((len(rows), P), bool)
    for i, r in enumerate(rows):
        ids[i, P - len(r):] = r
        att[i, P - len(r):] = True
    return ids, att


def mask_token_for(tok, kind: str, model_config=None, override: int | None = None) -> int:
    """The mask id: `override`, else the tokenizer's mask token, else the model config's
    `mask_token_id` (LLaDA/Dream configs carry one); AR models get a placeholder id."""
    if override is not None:
        return int(override)
    if tok.mask_token_id is not None:
        return int(tok.mask_token_id)
    cfg_mask = getattr(model_config, "mask_token_id", None)
    if kind == "dlm":
        if cfg_mask is not None:
            return int(cfg_mask)
        raise UserError("this diffusion checkpoint names no mask token (tokenizer or config); pass --mask-id")
    # AR models need a placeholder id for uncommitted positions: one the sampler never proposes
    return int(tok.unk_token_id if tok.unk_token_id is not None else len(tok) - 1)


def output_vocab(model, tok) -> int:
    """Width of the model's logits: its output embeddings, else config.vocab_size, else the tokenizer."""
    emb = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if emb is not None and hasattr(emb, "weight"):
        return int(emb.weight.shape[0])
    return int(getattr(model.config, "vocab_size", None) or len(tok))


def decode_steps(tok, canvas_TNL: np.ndarray, mask_id: int, eos_id: int) -> list[list[str]]:
    """Committed text of every row at every step (masks dropped, cut at the first EOS)."""
    out = []
    for t in range(canvas_TNL.shape[0]):
        row = []
        for ids in canvas_TNL[t]:
            ids = ids.tolist()
            if eos_id in ids:
                ids = ids[: ids.index(eos_id)]
            row.append(tok.decode([i for i in ids if i != mask_id], skip_special_tokens=True))
        out.append(row)
    return out


def text_verdicts(tok, trace, mask_id: int, eos_id: int) -> dict:
    committed = decode_steps(tok, trace["canvas"], mask_id, eos_id)
    drafts = decode_steps(tok, trace["xhat_argmax"], mask_id, eos_id)
    cr = np.array([[keyword_refusal(x) for x in row] for row in committed]).T  # [N, T]
    draft_comply = np.array([[not keyword_refusal(x) and bool(x.strip()) for x in row] for row in drafts]).T
    return {"committed_text": committed, "committed_refusal": cr, "draft_comply": draft_comply,
            "final_text": committed[-1]}


def prompt_set_metrics(tok, trace, mask_id: int, eos_id: int, judge=None, prompts=None) -> dict:
    v = text_verdicts(tok, trace, mask_id, eos_id)
    n, T = v["committed_refusal"].shape
    refusal = v["committed_refusal"][:, -1]
    if judge is not None:
        harmful = np.array(judge(prompts, v["final_text"]), bool)
        harm_judge = "classifier"
    else:
        harmful = ~refusal
        harm_judge = "keyword-proxy (not a refusal)"
    ch = np.zeros((n, T + 1), bool)
    ch[:, -1] = harmful
    ph = np.concatenate([np.zeros((n, 1), bool), v["draft_comply"]], 1) & ~ch
    cr = np.concatenate([np.zeros((n, 1), bool), v["committed_refusal"]], 1)
    states = trajectory_states(ch, ph, cr)
    hrr, frr, n_p = hrr_frr(states)
    asr = float(harmful.mean())
    rr = float(refusal.mean())
    out = {"n": n, "asr": asr, "asr_se": binomial_se(asr, n), "refusal_rate": rr, "refusal_rate_se": binomial_se(rr, n),
           "hrr": hrr, "frr": frr, "n_ever_pending": n_p, "harm_judge": harm_judge,
           "mean_length": float(trace["length"].mean()),
           "eos_first_share": float(np.nanmean(trace["eos_first_share"])),
           "examples": v["final_text"][:5], "_states": states, "_refusal": refusal}
    if judge is not None:
        out["judge_agreement"] = agreement(list(harmful), list(~refusal))
    return out


def bridge_run(model: str, kind: str, prompts: str, out: str, harmless: str | None = None, sampler: str | None = None,
               steps: int | None = None, gen_length: int = 32, block_length: int | None = None,
               temperature: float = 0.0, eos_inf: bool = False, device: str = "cpu", dtype: str = "float32",
               n: int | None = None, seed: int = 0, batch_size: int = 16, trust_remote_code: bool = False,
               judge_path: str | None = None, progress: bool = True, logits_shift: bool = False,
               mask_id: int | None = None) -> dict:
    """Run one sampler of the toy lab on a checkpoint; write summary.json (with `sri` and `theory`)
    and the traces. `logits_shift`: a Dream-style DLM whose position i predicts token i + 1."""
    from toydlm.bridge.adapters import HFDenoiser
    from toydlm.bridge.loading import check_fits, load_model, require_local

    sampler = sampler or ("ar" if kind == "ar" else "low_confidence")
    if logits_shift and kind != "dlm":
        raise UserError("--logits-shift applies to diffusion (--kind dlm) checkpoints; AR logits are always aligned")
    if kind == "ar" and sampler != "ar":
        raise UserError(f"an AR checkpoint runs only the 'ar' sampler, not {sampler!r}")
    if gen_length < 1 or (n is not None and n < 1) or batch_size < 1:
        raise UserError("--gen-length, --n and --batch-size must be positive")
    cfg = SamplerConfig(sampler, steps=steps, block_length=block_length, temperature=temperature, eos_inf=eos_inf)
    cfg.resolved(gen_length)  # validate before loading anything
    sets = {"none": load_prompts(prompts, n)}
    if harmless:
        sets["benign"] = load_prompts(harmless, n)
    mem = check_fits(require_local(model), dtype, device)
    hf, tok = load_model(model, kind, device=device, dtype=dtype, trust_remote_code=trust_remote_code)
    judge = ClassifierJudge(judge_path, device=device) if judge_path else None
    mask_id = mask_token_for(tok, kind, getattr(hf, "config", None), mask_id)
    eos_id = int(tok.eos_token_id if tok.eos_token_id is not None else 0)
    cfg = cfg.replace(eos_id=eos_id)
    vocab = output_vocab(hf, tok)
    pad_id = int(tok.pad_token_id if tok.pad_token_id is not None else eos_id)
    outdir = Path(out)
    cells, t_gen, traces, refusals, states = [], 0.0, {}, {}, {}
    for attack, ins in sets.items():
        ids, att = encode_prompts(tok, ins)
        import torch

        den = HFDenoiser(hf, kind, mask_id=mask_id, pad_id=pad_id, vocab_size=vocab, prompt_len=ids.shape[1],
                         response_len=gen_length, name=Path(model).name, logits_shift=logits_shift)
        full_att = np.concatenate([att, np.ones((len(ids), gen_length), bool)], 1)

        def before(a, b, den=den, full_att=full_att):
            den.attention_mask = torch.as_tensor(full_att[a:b])

        bar = _bar(progress, len(ids) // batch_size * cfg.resolved(gen_length).steps + cfg.resolved(gen_length).steps,
                   f"{attack}: {sampler}")
        t0 = time.perf_counter()
        trace = loop_sample(den, ids, gen_length, cfg, seed, mask_id, eos_id, batch_size, before_batch=before,
                            on_step=lambda i, bar=bar: bar.update(1))
        t_gen += time.perf_counter() - t0
        bar.close()
        den.close()
        trace.meta.update({"model": str(model), "kind": kind, "attack": attack, "prompts": prompts})
        save_trace(trace, outdir / f"trace_{attack}.npz")
        m = prompt_set_metrics(tok, trace, mask_id, eos_id, judge, ins)
        traces[attack], refusals[attack], states[attack] = trace, m.pop("_refusal"), m.pop("_states")
        cells.append({"model": kind, "sampler": sampler, "attack": attack, **m, "pred_asr": None, "pred_hrr": None,
                      "pred_frr": None, "heldout": False})
    sri, signals = sri_report(traces, refusals)
    if signals:
        save_arrays(outdir / "sri_signals.npz", signals)
    theory = {}
    for c in cells:
        theory[c["attack"]] = th = theory_fit(states[c["attack"]], c)
        c.update(pred_asr=th["predicted"]["asr"], pred_hrr=th["predicted"]["hrr"], pred_frr=th["predicted"]["frr"])
    summary = {**provenance(seed=seed, config={"model": str(model), "kind": kind, "sampler": cfg.to_dict(),
                                                "gen_length": gen_length, "device": device, "dtype": dtype,
                                                "prompts": prompts, "harmless": harmless, "n": n,
                                                "logits_shift": logits_shift, "mask_id": mask_id,
                                                "trust_remote_code": trust_remote_code}),
               "memory": mem, "generation_seconds": t_gen, "cells": cells, "sri": sri, "theory": theory,
               "calibration": {"n_heldout": 0, "mean_abs_err_asr": None, "frac_within_2se": None,
                               "note": "real checkpoints have no exact distribution: the theory is fitted in-sample"}}
    from toydlm.bridge.figures import fig_sri, fig_states

    title = f"{Path(model).name} ({kind}), sampler {sampler}, temperature {temperature:g}"
    figs = [fig_states(states, outdir, f"Step-wise states, {title}"), fig_sri(signals, outdir, f"SRI, {title}")]
    summary["figures"] = [f.name for f in figs if f is not None]
    atomic_write_json(outdir / "summary.json", summary)
    return summary


def save_arrays(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """An `.npz` of named arrays, written atomically."""
    import io

    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())


def _bar(enabled: bool, total: int, desc: str):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, disable=not enabled, leave=False)
