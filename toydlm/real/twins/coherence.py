"""Coherence, measured: the teacher's per-token NLL of answers, the students' beside its own.

A judged ASR counts harm only if the text could carry it. The teacher scores every answer the same way:
the chat-templated prompt (with any prefill), then the answer's text re-tokenized by the teacher, scored
token by token; the end token is not scored, and unknown-token marks (U+FFFD) are dropped first, so a
student is not charged for its vocabulary's gaps (each cell reports its unknown share beside). The
teacher's own holdout samples, scored the same way at the same temperature, give the reference.

Scoring costs a forward pass of the teacher per answer, so each cell scores a fixed random subset of its
rows (`SCORED_ROWS`, the same for every cell, drawn from a seed). Scores are stored beside each cell
(`coherence/<cell file>`), so the stage is resumable.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from toydlm.io import atomic_write_json

SCORED_ROWS = 128
UNKNOWN_MARK = "\ufffd"
# The teacher scores in bfloat16, native on CPUs with AMX or AVX-512 BF16 and much cheaper there than float32.
# Every score of one swap must share the dtype (`is_current`).
SCORING_DTYPE = "bfloat16"


def coherence_path(cell: Path) -> Path:
    return cell.parent / "coherence" / cell.name


def scored_rows(n: int, seed: int = 0, k: int = SCORED_ROWS) -> np.ndarray:
    """The rows of an n-row cell that are scored: all when n <= k, else k drawn without replacement."""
    if n <= k:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, k, replace=False))


def answer_nll(hf, tok, users: list[str], prefills: list[str], answers: list[str], batch_size: int = 16,
               ) -> tuple[np.ndarray, np.ndarray]:
    """(summed NLL in nats, token count) of each answer under the model, given its chat-templated prompt."""
    out_nll, out_n = np.zeros(len(answers)), np.zeros(len(answers), int)
    for a in range(0, len(answers), batch_size):
        b = min(a + batch_size, len(answers))
        nll, n = _batch_nll(hf, tok, users[a:b], prefills[a:b], answers[a:b])
        out_nll[a:b], out_n[a:b] = nll, n
    return out_nll, out_n


def _batch_nll(hf, tok, users, prefills, answers) -> tuple[np.ndarray, np.ndarray]:
    import torch

    from toydlm.bridge.adapters import position_ids
    from toydlm.bridge.encode import encode_prompts, pad_id

    ids, att = encode_prompts(tok, users, prefills, chat=True)
    ans = [tok.encode(t.replace(UNKNOWN_MARK, ""), add_special_tokens=False) for t in answers]
    A = max(1, max(len(x) for x in ans))
    a_ids = np.full((len(ans), A), pad_id(tok), np.int64)
    a_att = np.zeros((len(ans), A), bool)
    for i, x in enumerate(ans):
        a_ids[i, : len(x)], a_att[i, : len(x)] = x, True
    full = torch.as_tensor(np.concatenate([ids, a_ids], 1))
    mask = torch.as_tensor(np.concatenate([att, a_att], 1))
    with torch.no_grad():
        logits = hf(input_ids=full, attention_mask=mask.long(), position_ids=position_ids(mask)).logits
    P = ids.shape[1]
    logp = torch.log_softmax(logits[:, P - 1 : -1].float(), -1)
    tok_lp = logp.gather(-1, torch.as_tensor(a_ids)[..., None])[..., 0].numpy()
    nll = -(tok_lp * a_att).sum(1)
    return nll, a_att.sum(1)


def score_rows(st, users: list[str], prefills: list[str], rows: list[dict], seed: int = 0) -> dict:
    """The teacher's NLL of a subset of a cell's rows (`rows[i]` has `prompt` and `text`)."""
    idx = scored_rows(len(rows), seed)
    u = [users[rows[i]["prompt"]] for i in idx]
    p = [prefills[rows[i]["prompt"]] for i in idx]
    nll, n = answer_nll(st.hf, st.tok, u, p, [rows[i]["text"] for i in idx])
    return {"rows": idx.tolist(), "nll": nll.tolist(), "tokens": n.tolist(), "seed": seed}


def per_token_nll(scores: dict) -> float | None:
    """A cell's per-token NLL: summed NLL over its scored answers' tokens (None when none has a token)."""
    n = float(np.sum(scores["tokens"]))
    return float(np.sum(scores["nll"]) / n) if n > 0 else None


def is_current(scores: dict | None, dtype: str = SCORING_DTYPE) -> bool:
    """Whether stored scores exist and were made in the scoring dtype (older ones, without it, are redone)."""
    return scores is not None and scores.get("teacher", {}).get("dtype") == dtype


def read_scores(cell: Path) -> dict | None:
    p = coherence_path(cell)
    return json.loads(p.read_text()) if p.exists() else None


def write_scores(cell: Path, scores: dict, teacher: dict) -> None:
    atomic_write_json(coherence_path(cell), {**scores, "teacher": teacher})
