"""Student sequences from teacher cells, and the data source the training loop draws them from.

A sequence is `[prompt (P) | response (L)]` in the compact vocabulary. The prompt is left-padded: padding,
the user turn (its middle dropped when too long, so an attack template's opening and the instruction's end
both survive), the separator, then any assistant prefill. The response is the teacher's tokens up to its
end of turn (EOT) when it ended, then EOS (end of text) padding to L; a response that ran into the cap
fills all L slots and has no end token.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

import numpy as np

from toydlm.real.twins.vocab import EOS_ID, EOT_ID, MASK_ID, PAD_ID, SEP_ID, CompactVocab


def prompt_row(user: list[int], prefill: list[int], vocab: CompactVocab, prompt_len: int) -> np.ndarray:
    """`[P]` compact ids: padding, user turn (middle dropped to fit), separator, prefill (its end kept)."""
    u, f = vocab.encode(user), vocab.encode(prefill)
    f = f[len(f) - min(len(f), prompt_len - 1):]
    room = prompt_len - 1 - len(f)
    if len(u) > room:
        head = room // 2
        u = np.concatenate([u[:head], u[len(u) - (room - head):]]) if room else u[:0]
    pad = np.full(prompt_len - len(u) - 1 - len(f), PAD_ID, np.int32)
    return np.concatenate([pad, u, [SEP_ID], f]).astype(np.int32)


def response_row(teacher_ids: list[int], vocab: CompactVocab, response_len: int, ended: bool = True) -> np.ndarray:
    """`[L]` compact ids: the response (cut at L), EOT when it ended, then EOS padding to L.

    The teacher's ids are stored without their end-of-turn id; one that is there maps to EOT as well, and
    whatever follows it is dropped. A row cut at the cap has no end token."""
    r = vocab.encode(teacher_ids)
    cut = np.flatnonzero(r == EOT_ID)
    if len(cut):
        r, ended = r[: cut[0]], True
    r = r[:response_len]
    end = [EOT_ID] if ended and len(r) < response_len else []
    return np.concatenate([r, end, np.full(response_len - len(r) - len(end), EOS_ID, np.int32)]).astype(np.int32)


def cell_rows(rec: dict, prompt_tok: dict, vocab: CompactVocab, prompt_len: int, response_len: int) -> np.ndarray:
    """`[n_samples, P + L]` sequences of one stored cell (`{spec, samples}`) with its prompt tokens."""
    rows = [np.concatenate([prompt_row(prompt_tok["user"][s["prompt"]], prompt_tok["prefill"][s["prompt"]], vocab,
                                       prompt_len), response_row(s["ids"], vocab, response_len, s.get("ended", True))])
            for s in rec["samples"]]
    return np.stack(rows).astype(np.int32)


@dataclass(frozen=True)
class TaskConfig:
    """What identifies a student's data: its name, layout, and hashes of the vocabulary and sequences."""

    name: str
    prompt_len: int
    response_len: int
    vocab_hash: str
    data_hash: str

    def to_dict(self) -> dict:
        return asdict(self)

    def config_hash(self) -> str:
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:16]


def array_hash(*arrays: np.ndarray) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(f"{a.shape}{a.dtype}".encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]


@dataclass(frozen=True)
class Batch:
    tokens: np.ndarray


def draw_rows(rows: np.ndarray, n: int, seed: int) -> np.ndarray:
    """n rows drawn with replacement, a function of the seed alone."""
    return rows[np.random.default_rng(seed).integers(0, len(rows), n)]


class CorpusTask:
    """A fixed set of sequences the training loop samples like a grammar (`sample`); `sample_held_out`
    draws from the evaluation rows, which the loop's held-out loss then uses."""

    mask_id, eos_id = MASK_ID, EOS_ID

    def __init__(self, name: str, train: np.ndarray, held_out: np.ndarray, vocab: CompactVocab, prompt_len: int):
        if train.ndim != 2 or held_out.ndim != 2 or train.shape[1] != held_out.shape[1]:
            raise ValueError(f"train {train.shape} and held-out {held_out.shape} must be [N, P + L] alike")
        self.rows, self.held_out_rows, self.vocab, self.prompt_len = train, held_out, vocab, prompt_len
        self.response_len = train.shape[1] - prompt_len
        self.seq_len, self.vocab_size = train.shape[1], vocab.size
        vocab_blob = np.frombuffer(json.dumps(vocab.to_dict()).encode(), np.uint8)
        self.config = TaskConfig(name, prompt_len, self.response_len, array_hash(vocab_blob),
                                 array_hash(train, held_out))

    def sample(self, n: int, seed: int) -> Batch:
        return Batch(draw_rows(self.rows, n, seed))

    def sample_held_out(self, n: int, seed: int) -> Batch:
        return Batch(draw_rows(self.held_out_rows, n, seed))
