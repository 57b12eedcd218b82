"""`toydlm bridge run`: step-wise refusal analysis of a Hugging Face checkpoint.

Judges on real text: refusal = the research's keyword judge; harm = a classifier judge when one
is given, else the keyword proxy "final answer is not a refusal" (the research's RR-based ASR).
Step-wise: committed refusal is judged on the committed text of every step; a draft is
"harmful-looking" when its argmax x̂₀ text (committed + predicted) is not a refusal. With the
proxy, committed harm is only known at the end. Everything is labelled in `summary.json`.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from toydlm.bridge.analysis import sri_report, theory_fit
from toydlm.bridge.cells import prompt_set_metrics
from toydlm.bridge.encode import encode_prompts
from toydlm.bridge.ends import end_ids, mask_token_for, output_vocab
from toydlm.bridge.judges import ClassifierJudge
from toydlm.bridge.loading import check_device_map
from toydlm.bridge.prompts import load_prompts
from toydlm.bridge.sampling import loop_sample
from toydlm.errors import UserError
from toydlm.io import atomic_write_bytes, atomic_write_json, provenance
from toydlm.samplers import SamplerConfig
from toydlm.trace import save_trace


@dataclass
class Setup:
    """What every cell of a run shares: the loaded model, its ids and the sampler settings."""

    hf: Any
    tok: Any
    kind: str
    cfg: SamplerConfig
    mask_id: int
    end_ids: list[int]
    vocab: int
    pad_id: int
    gen_length: int
    batch_size: int
    seed: int
    name: str
    logits_shift: bool = False
    kv_cache: bool = True

    @property
    def eos_id(self) -> int:
        return self.end_ids[0]

    @property
    def forbid(self) -> tuple[int, ...]:
        """With eos_inf every end id is forbidden, not only the canonical one."""
        return tuple(self.end_ids[1:]) if self.cfg.eos_inf else ()


def prompt_cells(prompts: str, harmless: str | None, n: int | None, attacks) -> list[dict]:
    """One entry per cell: its label, attack, raw instructions, user turns and prefills. The `raw`
    attack's cell is labelled `none` (the lab's name for an unattacked prompt); harmless prompts,
    when given, stay unattacked in the `benign` cell."""
    from toydlm.bridge.attacks import apply_attack, parse_attacks

    harmful = load_prompts(prompts, n)
    cells = []
    for name in parse_attacks(attacks):
        ap = [apply_attack(name, ins) for ins in harmful]
        cells.append({"label": "none" if name == "raw" else name, "attack": name, "family": ap[0].family,
                      "instructions": harmful, "users": [a.user for a in ap], "prefills": [a.prefill for a in ap]})
    if harmless:
        ins = load_prompts(harmless, n)
        cells.append({"label": "benign", "attack": "benign", "family": "benign", "instructions": ins, "users": ins,
                      "prefills": [""] * len(ins)})
    return cells


def sample_cell(st: Setup, ids: np.ndarray, att: np.ndarray, on_step=None):
    """One prompt set's trace: the KV-cached path for `ar` (unless `kv_cache` is off), else the loop driver."""
    import torch

    from toydlm.bridge.adapters import HFDenoiser
    from toydlm.bridge.kvar import kv_ar_sample

    if st.kind == "ar" and st.kv_cache:
        return kv_ar_sample(st.hf, ids, att, st.gen_length, st.cfg, st.seed, st.mask_id, st.eos_id, st.vocab,
                            st.batch_size, end_ids=st.end_ids, forbid=st.forbid, on_step=on_step)
    den = HFDenoiser(st.hf, st.kind, mask_id=st.mask_id, pad_id=st.pad_id, vocab_size=st.vocab,
                     prompt_len=ids.shape[1], response_len=st.gen_length, name=st.name,
                     logits_shift=st.logits_shift, forbid=st.forbid)
    full_att = np.concatenate([att, np.ones((len(ids), st.gen_length), bool)], 1)

    def before(a, b):
        den.attention_mask = torch.as_tensor(full_att[a:b])

    try:
        return loop_sample(den, ids, st.gen_length, st.cfg, st.seed, st.mask_id, st.eos_id, st.batch_size,
                           before_batch=before, on_step=on_step, end_ids=st.end_ids)
    finally:
        den.close()


def load_setup(model: str, kind: str, cfg: SamplerConfig, device: str, dtype: str, trust_remote_code: bool,
               mask_id: int | None, device_map: str | None = None, tok=None, **kw) -> tuple[Setup, dict]:
    """Load the checkpoint (reusing `tok` when given) and fix its ids: (setup, memory estimate)."""
    from toydlm.bridge.loading import check_fits, load_model, require_local

    mem = check_fits(require_local(model), dtype, device, device_map)
    hf, tok = load_model(model, kind, device=device, dtype=dtype, trust_remote_code=trust_remote_code,
                         device_map=device_map, tok=tok)
    vocab = output_vocab(hf, tok)
    mask = mask_token_for(tok, kind, getattr(hf, "config", None), mask_id, vocab=vocab)
    ends = end_ids(tok, hf)
    pad_id = int(tok.pad_token_id if tok.pad_token_id is not None else ends[0])
    return Setup(hf, tok, kind, cfg.replace(eos_id=ends[0]), mask, ends, vocab, pad_id, name=Path(model).name,
                 **kw), mem


def encode_cells(model: str, cells: list[dict], gen_length: int, dtype: str, device: str, device_map: str | None,
                 trust_remote_code: bool, chat: bool = True) -> tuple[Any, list[tuple[np.ndarray, np.ndarray]]]:
    """(tokenizer, every cell's (ids, attention)), checked for memory, chat template and context length
    before any weights load: a bad prompt costs seconds and writes nothing."""
    from toydlm.bridge.loading import check_fits, context_length, load_tokenizer, require_local

    p = require_local(model)
    check_fits(p, dtype, device, check_device_map(device_map))
    tok, ctx = load_tokenizer(p, trust_remote_code), context_length(p)
    return tok, [encode_prompts(tok, c["users"], c["prefills"], chat, ctx, gen_length, what=f"cell {c['label']}")
                 for c in cells]


@dataclass(frozen=True)
class BridgeRunConfig:
    """One `toydlm bridge run`: the checkpoint (`model`, `kind` "ar" or "dlm"), the prompt set and where to
    write (`out`), then the sampler, the cells, the judge, and how the model is loaded and fed.

    `attacks`: names or a comma-separated string (default raw), plus the benign cell when `harmless` is
    given; `logits_shift`: a Dream-style DLM whose position i predicts token i + 1; `kv_cache=False` runs
    `ar` through the (slow) loop driver instead of the KV cache; `device_map` (accelerate) places the model
    instead of `device`; `chat=False` feeds raw text (no chat template)."""

    model: str
    kind: str
    prompts: str
    out: str
    harmless: str | None = None
    sampler: str | None = None
    steps: int | None = None
    gen_length: int = 32
    block_length: int | None = None
    temperature: float = 0.0
    eos_inf: bool = False
    device: str = "cpu"
    dtype: str = "float32"
    n: int | None = None
    seed: int = 0
    batch_size: int = 16
    trust_remote_code: bool = False
    judge_path: str | None = None
    progress: bool = True
    logits_shift: bool = False
    mask_id: int | None = None
    attacks: str | Sequence[str] | None = None
    kv_cache: bool = True
    device_map: str | None = None
    chat: bool = True


def bridge_run(cfg: BridgeRunConfig) -> dict:
    """Run one sampler of the toy lab on a checkpoint, one cell per attack plus the benign cell; write
    summary.json (with `sri` and `theory`) and the traces."""
    kind, gen_length, batch_size = cfg.kind, cfg.gen_length, cfg.batch_size
    sampler = cfg.sampler or ("ar" if kind == "ar" else "low_confidence")
    if cfg.logits_shift and kind != "dlm":
        raise UserError("--logits-shift applies to diffusion (--kind dlm) checkpoints; AR logits are always aligned")
    if kind == "ar" and sampler != "ar":
        raise UserError(f"an AR checkpoint runs only the 'ar' sampler, not {sampler!r}")
    if gen_length < 1 or (cfg.n is not None and cfg.n < 1) or batch_size < 1:
        raise UserError("--gen-length, --n and --batch-size must be positive")
    scfg = SamplerConfig(sampler, steps=cfg.steps, block_length=cfg.block_length, temperature=cfg.temperature,
                         eos_inf=cfg.eos_inf)
    scfg.resolved(gen_length)  # validate before loading anything
    check_device_map(cfg.device_map)
    cells_in = prompt_cells(cfg.prompts, cfg.harmless, cfg.n, cfg.attacks)
    tok, encoded = encode_cells(cfg.model, cells_in, gen_length, cfg.dtype, cfg.device, cfg.device_map,
                                cfg.trust_remote_code, cfg.chat)
    st, mem = load_setup(cfg.model, kind, scfg, cfg.device, cfg.dtype, cfg.trust_remote_code, cfg.mask_id,
                         device_map=cfg.device_map, tok=tok, gen_length=gen_length, batch_size=batch_size,
                         seed=cfg.seed, logits_shift=cfg.logits_shift, kv_cache=cfg.kv_cache)
    judge = ClassifierJudge(cfg.judge_path, device=cfg.device) if cfg.judge_path else None
    outdir = Path(cfg.out)
    cells, t_gen, traces, refusals, states = [], 0.0, {}, {}, {}
    n_steps = st.cfg.resolved(gen_length).steps
    for cell, (ids, att) in zip(cells_in, encoded):
        label = cell["label"]
        bar = _bar(cfg.progress, math.ceil(len(ids) / batch_size) * n_steps, f"{label}: {sampler}")
        t0 = time.perf_counter()
        trace = sample_cell(st, ids, att, on_step=lambda i, bar=bar: bar.update(1))
        t_gen += time.perf_counter() - t0
        bar.close()
        trace.meta.update({"model": str(cfg.model), "kind": kind, "attack": cell["attack"], "prompts": cfg.prompts})
        save_trace(trace, outdir / f"trace_{_file_label(label)}.npz")
        m = prompt_set_metrics(st.tok, trace, st.mask_id, st.eos_id, judge, cell["instructions"])
        traces[label], refusals[label], states[label] = trace, m.pop("_refusal"), m.pop("_states")
        cells.append({"model": kind, "sampler": sampler, "attack": label, "family": cell["family"], **m,
                      "pred_asr": None, "pred_hrr": None, "pred_frr": None, "heldout": False})
    config = {"model": str(cfg.model), "kind": kind, "sampler": st.cfg.to_dict(), "gen_length": gen_length,
              "device": cfg.device, "device_map": cfg.device_map, "dtype": cfg.dtype, "chat_template": cfg.chat,
              "prompts": cfg.prompts, "harmless": cfg.harmless, "n": cfg.n,
              "attacks": [x["attack"] for x in cells_in if x["label"] != "benign"], "logits_shift": cfg.logits_shift,
              "mask_id": st.mask_id, "end_ids": st.end_ids,
              "driver": "kv-cache" if kind == "ar" and cfg.kv_cache else "loop",
              "trust_remote_code": cfg.trust_remote_code}
    summary = {**provenance(seed=cfg.seed, config=config), "memory": mem, "generation_seconds": t_gen, "cells": cells}
    summary.update(_analyse(cells, traces, refusals, states, outdir))
    from toydlm.bridge.figures import fig_sri, fig_states

    title = f"{Path(cfg.model).name} ({kind}), sampler {sampler}, temperature {cfg.temperature:g}"
    signals = summary.pop("_signals")
    figs = [fig_states(states, outdir, f"Step-wise states, {title}"), fig_sri(signals, outdir, f"SRI, {title}")]
    summary["figures"] = [f.name for f in figs if f is not None]
    atomic_write_json(outdir / "summary.json", summary)
    return summary


def _analyse(cells: list[dict], traces: dict, refusals: dict, states: dict, outdir: Path) -> dict:
    """SRI (centres from the first harmful cell and the benign one) and the in-sample Model v1 fit per cell."""
    sri, signals = sri_report(traces, refusals, harmful_key=cells[0]["attack"])
    if signals:
        save_arrays(outdir / "sri_signals.npz", signals)
    theory = {}
    for c in cells:
        theory[c["attack"]] = th = theory_fit(states[c["attack"]], c)
        pred = th["predicted"]
        defined = c["hrr"] is not None  # undefined for `ar`: its prediction is too
        c.update(pred_asr=pred["asr"], pred_hrr=pred["hrr"] if defined else None,
                 pred_frr=pred["frr"] if defined else None)
    return {"sri": sri, "theory": theory, "_signals": signals,
            "calibration": {"n_heldout": 0, "mean_abs_err_asr": None, "frac_within_2se": None,
                            "note": "real checkpoints have no exact distribution: the theory is fitted in-sample"}}


def _file_label(label: str) -> str:
    """A cell label safe as a file name part (prefill attacks carry free text)."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", label).strip("_")
    return safe[:60] or "cell"


def save_arrays(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """An `.npz` of named arrays, written atomically."""
    import io

    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())


def _bar(enabled: bool, total: int, desc: str):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, disable=not enabled, leave=False)
