"""The students' compact vocabulary: the teacher's token ids that the corpus uses, plus special tokens.

Layout: EOS (end of text) is id 0 and pads a response after its end, the mask is id 1 and the
prompt/response separator id 2; then the left-padding id, an explicit unknown id, EOT (end of turn: the
teacher's end-of-turn tokens map to it), and the corpus tokens by falling frequency. EOT and EOS are kept
apart as in LLaDA's SFT data (an answer, its end-of-turn, then end-of-text padding), so the end-token
controls mean what they mean there. A teacher id outside the vocabulary maps to the unknown id. Each entry
keeps its bytes, so a student's output decodes without the teacher's tokenizer.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from toydlm.errors import UserError

EOS_ID, MASK_ID, SEP_ID, PAD_ID, UNK_ID, EOT_ID = 0, 1, 2, 3, 4, 5
SPECIALS = ("<eos>", "<mask>", "<sep>", "<pad>", "<unk>", "<eot>")
END_IDS = (EOS_ID, EOT_ID)  # a response ends at its first end token, of either kind
N_SPECIAL = len(SPECIALS)


@dataclass(frozen=True)
class CompactVocab:
    """Compact id k >= N_SPECIAL stands for teacher id `teacher_ids[k - N_SPECIAL]`."""

    teacher_ids: tuple[int, ...]
    token_bytes: tuple[bytes, ...]
    end_ids: tuple[int, ...]  # the teacher's end-of-turn ids: all become EOT

    def __post_init__(self) -> None:
        if len(self.teacher_ids) != len(self.token_bytes):
            raise ValueError("teacher_ids and token_bytes differ in length")
        if set(self.teacher_ids) & set(self.end_ids):
            raise ValueError("an end-of-turn id is also an ordinary vocabulary entry")

    @property
    def size(self) -> int:
        return N_SPECIAL + len(self.teacher_ids)

    def _lookup(self) -> dict[int, int]:
        table = {t: N_SPECIAL + k for k, t in enumerate(self.teacher_ids)}
        table.update({e: EOT_ID for e in self.end_ids})
        return table

    def encode(self, teacher_ids: Iterable[int]) -> np.ndarray:
        """Teacher ids -> compact ids (int32); unseen ids -> UNK_ID."""
        table = self._lookup()
        return np.asarray([table.get(int(t), UNK_ID) for t in teacher_ids], np.int32)

    def decode(self, compact_ids: Iterable[int]) -> str:
        """The text of a response: the bytes of every token up to the first end token (EOS or EOT); UNK as
        U+FFFD, other specials (mask, separator, padding) dropped."""
        out = bytearray()
        for i in compact_ids:
            i = int(i)
            if i in END_IDS:
                break
            if i == UNK_ID:
                out += "\ufffd".encode()
            elif i >= N_SPECIAL:
                out += self.token_bytes[i - N_SPECIAL]
        return out.decode("utf-8", errors="replace")

    def to_dict(self) -> dict:
        return {"specials": list(SPECIALS), "teacher_ids": list(self.teacher_ids),
                "token_bytes": [b.hex() for b in self.token_bytes], "end_ids": list(self.end_ids)}

    @classmethod
    def from_dict(cls, d: dict) -> CompactVocab:
        if d.get("specials") != list(SPECIALS):
            raise UserError(f"vocabulary file has specials {d.get('specials')}, expected {list(SPECIALS)}")
        return cls(tuple(d["teacher_ids"]), tuple(bytes.fromhex(h) for h in d["token_bytes"]), tuple(d["end_ids"]))


def build_compact_vocab(sequences: Iterable[Iterable[int]], token_hex: dict[int, str], end_ids: Iterable[int],
                        max_size: int | None = None, min_count: int = 1) -> CompactVocab:
    """The teacher ids seen at least `min_count` times in `sequences`, most frequent first (ties by id),
    at most `max_size` entries in all (specials included)."""
    end = tuple(sorted(set(int(e) for e in end_ids)))
    counts = Counter(int(t) for s in sequences for t in s)
    for e in end:
        counts.pop(e, None)
    keep = sorted((t for t, c in counts.items() if c >= min_count), key=lambda t: (-counts[t], t))
    if max_size is not None:
        if max_size <= N_SPECIAL:
            raise UserError(f"max vocabulary size {max_size} leaves no room beside the {N_SPECIAL} special tokens")
        keep = keep[: max_size - N_SPECIAL]
    missing = [t for t in keep if t not in token_hex]
    if missing:
        raise UserError(f"no bytes recorded for teacher token ids {missing[:5]} (regenerate token_bytes.json)")
    return CompactVocab(tuple(keep), tuple(bytes.fromhex(token_hex[t]) for t in keep), end)
