"""Decode one batch of an audit cell on a loaded checkpoint and reduce it to per-row records.

A record is `{prompt, sample, ids, length, ended, text}`; a diffusion row adds its EOS-first terms
(`eos`: the share s and its random-order value E, maximum M and minimum m) and two step strings,
`cr` (committed text is a refusal) and `dc` (the argmax draft complies), one character per step, from
which the analysis derives the C/P/H/R trajectories once the harm judge has ruled. An AR row has
neither: an AR decoder commits in order and never holds an uncommitted draft.
"""

from __future__ import annotations

import numpy as np

from toydlm.real.audit.plan import AuditCell
from toydlm.trace import eos_first_terms


def batch_inputs(st, cell: AuditCell, a: int, b: int, chat: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Chat-templated ids of rows a..b of the cell, left-padded (the prefill belongs to the prompt)."""
    from toydlm.bridge.encode import encode_prompts

    users = [cell.users[r // cell.samples] for r in range(a, b)]
    prefills = [cell.prefills[r // cell.samples] for r in range(a, b)]
    if hasattr(st.tok, "encode_prompts"):  # a twins student lays its prompts out itself
        return st.tok.encode_prompts(users, prefills)
    return encode_prompts(st.tok, users, prefills, chat)


def cell_config(st, cell: AuditCell):
    """The cell's sampler config on this checkpoint: its end ids, steps resolved at the cell's length, and the
    proposal draw where the checkpoint fixes one (a twins student draws as the twins' own swap does)."""
    cfg = cell.sampler.cfg.replace(eos_id=st.eos_id, end_ids=tuple(st.end_ids[1:]))
    draw = getattr(st, "draw", None)
    return (cfg if draw is None else cfg.replace(draw=draw)).resolved(cell.gen_length)


def decode_batch(st, cell: AuditCell, a: int, b: int, chat: bool = True, on_step=None) -> list[dict]:
    """Rows a..b of the cell (keys by row index, so batching never changes a row's draw)."""
    ids, att = batch_inputs(st, cell, a, b, chat)
    return decode_rows(st, cell, np.arange(a, b), ids, att, on_step)


def decode_rows(st, cell: AuditCell, rows: np.ndarray, ids: np.ndarray, att: np.ndarray, on_step=None,
                steps: bool = True) -> list[dict]:
    """The cell's rows `rows` (any row indices) from their encoded, left-padded prompts `ids`/`att`: each row
    draws with its own index's keys, so the audit's contiguous batches and a harness shard's scattered rows
    give a row the same sample. `steps=False` skips a diffusion row's step strings (the harness needs text only)."""
    cfg = cell_config(st, cell)
    forbid = tuple(st.end_ids[1:]) if cfg.eos_inf else ()
    rows = np.asarray(rows, np.int64)
    if st.kind == "ar":
        from toydlm.bridge.kvar import kv_ar_sample

        trace = kv_ar_sample(st.hf, ids, att, cell.gen_length, cfg, cell.seed, st.mask_id, st.eos_id, st.vocab,
                             len(rows), end_ids=st.end_ids, forbid=forbid, record_hidden=False, on_step=on_step,
                             stop_at_end=True, draw="icdf", rows=rows)
        return rows_of(st, trace, cell, rows, diffusion=False)
    trace = _diffusion_trace(st, cell, cfg, ids, att, rows, forbid, on_step)
    return rows_of(st, trace, cell, rows, diffusion=steps)


def _diffusion_trace(st, cell: AuditCell, cfg, ids, att, rows: np.ndarray, forbid, on_step):
    import torch

    from toydlm.bridge.adapters import HFDenoiser
    from toydlm.bridge.sampling import loop_sample

    if hasattr(st, "den"):  # a twins student: its JAX denoiser, on the same key stream as the twins' swap
        return loop_sample(st.den, ids, cell.gen_length, cfg, cell.seed, st.mask_id, st.eos_id, len(ids),
                           rows=rows, on_step=on_step, end_ids=st.end_ids)
    den = HFDenoiser(st.hf, "dlm", mask_id=st.mask_id, pad_id=st.pad_id, vocab_size=st.vocab,
                     prompt_len=ids.shape[1], response_len=cell.gen_length, name=st.name,
                     logits_shift=st.logits_shift, forbid=forbid)
    den.attention_mask = torch.as_tensor(np.concatenate([att, np.ones((len(ids), cell.gen_length), bool)], 1))
    try:
        return loop_sample(den, ids, cell.gen_length, cfg, cell.seed, st.mask_id, st.eos_id, len(ids),
                           rows=rows, on_step=on_step, end_ids=st.end_ids)
    finally:
        den.close()


def rows_of(st, trace, cell: AuditCell, rows: np.ndarray, diffusion: bool) -> list[dict]:
    """Per-row records of a decoded batch whose i-th row is row `rows[i]` of the cell (with a diffusion row's
    EOS-first terms and step strings when `diffusion`)."""
    final = np.asarray(trace.final_response)
    out = []
    for r, row in zip(rows.tolist(), final):
        hit = np.flatnonzero(row == st.eos_id)
        n = int(hit[0]) if len(hit) else len(row)
        ids = [int(t) for t in row[:n] if t != st.mask_id]
        out.append({"prompt": r // cell.samples, "sample": r % cell.samples, "ids": ids, "length": n,
                    "ended": bool(len(hit)), "text": st.tok.decode(ids, skip_special_tokens=True)})
    if diffusion:
        _add_steps(st, trace, out)
    return out


def _add_steps(st, trace, out: list[dict]) -> None:
    from toydlm.bridge.cells import text_verdicts

    canvas = np.asarray(trace["canvas"])
    terms = eos_first_terms(np.asarray(trace["committed"]), canvas, st.eos_id, trace.meta["n_first_commits"])
    v = text_verdicts(st.tok, trace, st.mask_id, st.eos_id)
    for i, rec in enumerate(out):
        rec["eos"] = [None if not np.isfinite(x[i]) else float(x[i]) for x in terms]
        rec["cr"] = "".join("1" if x else "0" for x in v["committed_refusal"][i])
        rec["dc"] = "".join("1" if x else "0" for x in v["draft_comply"][i])
