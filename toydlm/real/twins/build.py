"""From stored teacher cells to the students' task: vocabulary, training and held-out sequences, and
the corpus statistics the report states (refusal by the offline keyword judge on the teacher's text).

Everything here is a deterministic function of the stored cells, so it is rebuilt on every use; a
student checkpoint records the task's hash and refuses a task that changed.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from toydlm.bridge.judges import keyword_refusal
from toydlm.errors import UserError
from toydlm.real.kit.store import CellStore
from toydlm.real.twins.corpus import holdout_prompts, reference_plan
from toydlm.real.twins.dataset import CorpusTask, cell_rows
from toydlm.real.twins.teacher import PROMPT_TOKENS, TOKEN_BYTES, read_manifest
from toydlm.real.twins.vocab import END_IDS, UNK_ID, build_compact_vocab

PROMPT_LEN, RESPONSE_LEN = 64, 96
MAX_VOCAB, MIN_COUNT = 16384, 2  # 10.6k ids pass MIN_COUNT on the 0.5B corpus: every one is kept
VALIDATION_EVERY = 20  # one training prompt in 20 (by a hash of its cell and index) is held out for early stopping


def is_validation(cell: str, prompt: int, every: int = VALIDATION_EVERY) -> bool:
    """Whether a training prompt belongs to the validation split: a fixed function of its cell and index,
    so the split never moves when cells are added. The holdout prompts are never used to pick a checkpoint."""
    import hashlib

    return int(hashlib.sha256(f"{cell}:{prompt}".encode()).hexdigest(), 16) % every == 0


def teacher_cells(corpus_root: Path, real_ar_root: Path) -> tuple[dict, dict]:
    """(training cells, holdout cells) that are stored, by name; the holdout includes the real-AR
    experiment's `raw_T1` cell of the same teacher."""
    m = read_manifest(corpus_root)
    train, hold = {}, {}
    for c in m["cells"]:
        p = corpus_root / c["file"]
        if p.exists():
            (hold if c["name"].startswith("holdout_") else train)[c["name"]] = json.loads(p.read_text())
    ref = reference_plan(holdout_prompts())
    rec = CellStore(real_ar_root).get(ref.spec(m["teacher"]["sha256"], m["sampler"]["gen_length"]))
    if rec is not None:
        hold[ref.name] = rec
    if not train:
        raise UserError(f"no corpus cells stored under {corpus_root}: run the corpus stage first")
    return train, hold


def corpus_stats(cells: dict) -> dict:
    """Prompts, refusals and compliances (keyword judge on the teacher's text) and their mean lengths."""
    lengths, refusal, ended, prompts = [], [], [], set()
    for name, rec in cells.items():
        for s in rec["samples"]:
            prompts.add((name, s["prompt"]))
            lengths.append(s["length"])
            ended.append(s["ended"])
            refusal.append(keyword_refusal(s["text"]))
    L, R, E = np.asarray(lengths), np.asarray(refusal, bool), np.asarray(ended, bool)
    mean = lambda sel: float(L[sel].mean()) if sel.any() else None
    return {"n_prompts": len(prompts), "n_rows": len(L), "n_refusals": int(R.sum()), "n_compliances": int((~R).sum()),
            "mean_len_refusal": mean(R), "mean_len_compliance": mean(~R),
            "truncated_share_refusal": float((R & ~E).sum() / max(R.sum(), 1)),
            "truncated_share_compliance": float((~R & ~E).sum() / max((~R).sum(), 1)),
            "judge": "keyword refusal judge on the teacher's text; lengths count tokens before the end of turn"}


def build_task(corpus_root: Path, real_ar_root: Path, prompt_len: int = PROMPT_LEN,
               response_len: int = RESPONSE_LEN, max_vocab: int = MAX_VOCAB, min_count: int = MIN_COUNT,
               validation_every: int = VALIDATION_EVERY) -> tuple[CorpusTask, dict]:
    """The students' task and what the report says about it (corpus statistics, vocabulary coverage).

    The task trains on the corpus less its validation prompts, whose rows give the held-out loss that picks
    a checkpoint; the holdout (the prompts every cell is measured on) is only described here."""
    train, hold = teacher_cells(corpus_root, real_ar_root)
    ptok = json.loads((corpus_root / PROMPT_TOKENS).read_text())
    hexes = {int(k): v for k, v in json.loads((corpus_root / TOKEN_BYTES).read_text()).items()}
    m = read_manifest(corpus_root)
    seqs = [s["ids"] for r in train.values() for s in r["samples"]]
    seqs += [u for n in train for u in ptok[n]["user"] + ptok[n]["prefill"]]
    vocab = build_compact_vocab(seqs, hexes, m["sampler"]["end_ids"], max_vocab, min_count)
    rows = lambda cells: np.concatenate([cell_rows(r, ptok[n], vocab, prompt_len, response_len)
                                         for n, r in sorted(cells.items())])
    if not hold:
        raise UserError(f"no holdout cells stored under {corpus_root}: the corpus stage samples them first")
    fit, val = split_validation(train, validation_every)
    if not fit or not val:
        raise UserError(f"the validation split (one prompt in {validation_every}) leaves "
                        f"{'no training' if not fit else 'no validation'} rows: the corpus is too small")
    tr, va, ho = rows(fit), rows(val), rows(hold)
    task = CorpusTask(f"twins-{m['teacher']['checkpoint']}", tr, va, vocab, prompt_len)
    info = {"corpus": corpus_stats(train), "holdout": corpus_stats(hold), "vocab_size": vocab.size,
            "unk_share_train": unk_share(tr, prompt_len), "unk_share_holdout": unk_share(ho, prompt_len),
            "n_train_rows": len(tr), "n_validation_rows": len(va),
            "n_holdout_rows": len(ho), "prompt_len": prompt_len, "response_len": response_len,
            "task_hash": task.config.config_hash(), "cells": {"train": sorted(train), "holdout": sorted(hold)}}
    return task, info


def split_validation(cells: dict, every: int = VALIDATION_EVERY) -> tuple[dict, dict]:
    """(fit, validation) copies of the training cells, split by prompt (`is_validation`)."""
    fit, val = {}, {}
    for name, rec in cells.items():
        for side, keep in ((fit, False), (val, True)):
            samples = [s for s in rec["samples"] if is_validation(name, s["prompt"], every) == keep]
            if samples:
                side[name] = {**rec, "samples": samples}
    return fit, val


def unk_share(rows: np.ndarray, prompt_len: int) -> float:
    """The share of unknown ids among the response tokens before the end (end tokens and padding excluded)."""
    resp = rows[:, prompt_len:]
    content = ~np.isin(resp, END_IDS)
    return float((resp == UNK_ID).sum() / max(content.sum(), 1))
