"""Sample the teacher corpus and the holdout on the teacher, and record what a student needs without the
teacher's tokenizer: the prompt tokens of every row and the bytes of every token id used.

Generation reuses the real-AR cell store (one file per finished cell, keyed by everything that decides
its samples), so it resumes where it stopped.
"""

from __future__ import annotations

import json
from pathlib import Path

from toydlm.errors import UserError
from toydlm.io import atomic_write_json, provenance
from toydlm.real.kit.generate import CellPlan
from toydlm.real.twins.corpus import (
    CorpusMix,
    chunk_plans,
    corpus_prompts,
    holdout_plans,
    holdout_prompts,
    mix_summary,
    reference_plan,
    training_pools,
)

MANIFEST, PROMPT_TOKENS, TOKEN_BYTES = "manifest.json", "prompt_tokens.json", "token_bytes.json"
RATE_ROWS_PER_S = 0.64  # teacher 0.5B, batch 64, 96 tokens: ~100 s per batch (real-AR raw_T1, measured)


def all_plans(mix: CorpusMix) -> tuple[list[CellPlan], dict]:
    """Holdout cells first (small, and needed for every fidelity number), then the corpus chunks."""
    hold = holdout_prompts()
    prompts = corpus_prompts(mix, training_pools(hold))
    return holdout_plans(hold, mix.temperature) + chunk_plans(mix, prompts), mix_summary(mix, prompts)


def byte_decoder() -> dict[str, int]:
    """The inverse of the byte-level BPE alphabet: each printable stand-in character -> its byte."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    table, extra = {}, 0
    for b in range(256):
        if b in keep:
            table[chr(b)] = b
        else:
            table[chr(256 + extra)] = b
            extra += 1
    return table


def token_bytes(tok, ids: list[int]) -> dict[int, str]:
    """Hex bytes of each id: special tokens as their UTF-8 text, others through the byte-level alphabet."""
    dec, special = byte_decoder(), set(tok.all_special_ids)
    out = {}
    for i, piece in zip(ids, tok.convert_ids_to_tokens(ids)):
        if i in special or any(c not in dec for c in piece):
            out[i] = piece.encode("utf-8").hex()
        else:
            out[i] = bytes(dec[c] for c in piece).hex()
    return out


def prompt_tokens(tok, plans: list[CellPlan]) -> dict[str, dict]:
    """Per cell: the user turn's and the prefill's token ids, without the chat template."""
    enc = lambda texts: [tok(t, add_special_tokens=False)["input_ids"] if t else [] for t in texts]
    return {p.name: {"user": enc(p.users), "prefill": enc(p.prefills)} for p in plans}


def generate(model: str, work: Path, mix: CorpusMix, batch_size: int = 64, gen_length: int = 96,
             limit_cells: int | None = None) -> dict:
    """Sample every missing cell, then write the manifest, prompt tokens and token bytes; returns the manifest."""
    from toydlm.real.kit.checkpoint import open_checkpoint
    from toydlm.real.kit.runner import run_cells
    from toydlm.real.kit.store import CellStore
    from toydlm.weights import checkpoint

    sha = checkpoint(model).sha256
    plans, summary = all_plans(mix)
    rows = sum(len(p.users) * p.samples for p in plans)
    print(f"corpus plan: {len(plans)} cells, {rows} rows (holdout included); about "
          f"{rows / RATE_ROWS_PER_S / 3600:.1f} h at {RATE_ROWS_PER_S} rows/s when nothing is stored yet", flush=True)
    setup = open_checkpoint(model, "ar", gen_length=gen_length, batch_size=batch_size)
    store = CellStore(work / model)
    todo = plans if limit_cells is None else plans[:limit_cells]
    run_cells(setup, store, todo, sha)
    prompt_ids = prompt_tokens(setup.tok, plans + [reference_plan(holdout_prompts())])
    stored = {p.name: store.get(p.spec(sha, gen_length)) for p in plans}
    ids = sorted({i for rec in stored.values() if rec for s in rec["samples"] for i in s["ids"]}
                 | {i for t in prompt_ids.values() for k in t.values() for r in k for i in r} | set(setup.end_ids))
    root = work / model
    atomic_write_json(root / PROMPT_TOKENS, prompt_ids)
    atomic_write_json(root / TOKEN_BYTES, {str(k): v for k, v in token_bytes(setup.tok, ids).items()})
    manifest = {"teacher": {"checkpoint": model, "sha256": sha}, **summary,
                "sampler": {"kind": "ar", "temperature": mix.temperature, "gen_length": gen_length,
                            "stop_at": "chat end-of-turn", "end_ids": list(setup.end_ids), "batch_size": batch_size},
                "cells": [{"name": p.name, "file": store.path(p.spec(sha, gen_length)).name,
                           "done": stored[p.name] is not None} for p in plans],
                "holdout": "the real-AR experiment's 100 harmful + 100 harmless prompts (prompt_sets seed 0)",
                "provenance": provenance(mix.seed, mix.to_dict())}
    atomic_write_json(root / MANIFEST, manifest)
    return manifest


def read_manifest(root: Path) -> dict:
    """The corpus manifest, or a one-line error when the corpus stage has not written one."""
    p = Path(root) / MANIFEST
    if not p.is_file():
        raise UserError(f"no corpus manifest at {p}: run the corpus stage first (or pass the right --work/--teacher)")
    return json.loads(p.read_text())
