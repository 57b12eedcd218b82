"""A trained twins student seen as a checkpoint the audit can open: `toydlm audit --model <student run>`.

A student run folder holds its checkpoints and `student.json`, which names the teacher (whose tokenizer
turns prompt text into token ids) and stores the compact vocabulary and the sequence layout. The audit then
needs three things, which `open_student` gives it:
- prompts in the student's own layout (`encode`: left padding, the user turn, the separator, the prefill);
- a tokenizer-like `decode` over the compact vocabulary;
- the student's JAX denoiser, which the bridge's loop driver samples with the same keys as the twins' swap.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from toydlm.errors import UserError
from toydlm.io import atomic_write_json
from toydlm.real.twins.dataset import prompt_row
from toydlm.real.twins.swap import DIFFUSION_DRAW
from toydlm.real.twins.vocab import EOS_ID, EOT_ID, MASK_ID, PAD_ID, SPECIALS, CompactVocab

STUDENT = "student.json"


def write_student_record(run_dir: Path, task, teacher: dict) -> None:
    """What the audit needs to open this student without the corpus: teacher, vocabulary and layout."""
    atomic_write_json(Path(run_dir) / STUDENT, {
        "teacher": teacher, "vocab": task.vocab.to_dict(), "prompt_len": task.prompt_len,
        "response_len": task.response_len, "task_hash": task.config.config_hash()})


def student_root(path: str | Path) -> Path | None:
    """The run folder of a student checkpoint path (the run, its `best/` or one of its `ckpt-*`), else None."""
    p = Path(path)
    for d in (p, p.parent, p.parent.parent):
        if (d / STUDENT).is_file():
            return d
    return None


class StudentTokenizer:
    """The part of a tokenizer the audit uses, over the compact vocabulary: decode and token names."""

    def __init__(self, vocab: CompactVocab, teacher_tok: Any, prompt_len: int, name: str):
        self.vocab, self.teacher, self.prompt_len, self.name_or_path = vocab, teacher_tok, prompt_len, name
        self.pad_token_id, self.eos_token_id, self.mask_token_id = PAD_ID, EOS_ID, MASK_ID
        self.chat_template = "student layout"  # prompts are laid out by `encode`, never by a template

    def teacher_ids(self, text: str) -> list[int]:
        return list(self.teacher(text, add_special_tokens=False)["input_ids"]) if text else []

    def encode_prompts(self, users: list[str], prefills: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """`[N, P]` prompt rows in the student's layout, with an all-true attention mask."""
        rows = np.stack([prompt_row(self.teacher_ids(u), self.teacher_ids(p), self.vocab, self.prompt_len)
                         for u, p in zip(users, prefills)])
        return rows.astype(np.int64), np.ones(rows.shape, bool)

    def __call__(self, text: str, add_special_tokens: bool = False) -> dict:
        """Compact ids of a text (through the teacher's tokenizer), as `tok(text)["input_ids"]` gives."""
        return {"input_ids": self.vocab.encode(self.teacher_ids(text)).tolist()}

    def decode(self, ids, skip_special_tokens: bool = True) -> str:
        return self.vocab.decode([i for i in ids if int(i) != MASK_ID])

    def convert_ids_to_tokens(self, i: int) -> str:
        i = int(i)
        return SPECIALS[i] if i < len(SPECIALS) else self.vocab.token_bytes[i - len(SPECIALS)].decode("utf-8",
                                                                                                      "replace")


@dataclass
class StudentSetup:
    """The audit's view of a loaded student (the fields `toydlm.bridge.run.Setup` gives an HF checkpoint)."""

    den: Any
    tok: StudentTokenizer
    name: str
    response_len: int
    kind: str = "dlm"
    mask_id: int = MASK_ID
    pad_id: int = PAD_ID
    logits_shift: bool = False  # a shifted student aligns its own logits (`toydlm.model.aligned_logits`)
    draw: str = DIFFUSION_DRAW  # the audit draws proposals as the twins' swap does, so both give the same rows

    @property
    def end_ids(self) -> list[int]:
        return [EOS_ID, EOT_ID]  # end of text first: the canonical end the bridge records

    @property
    def eos_id(self) -> int:
        return EOS_ID

    @property
    def vocab(self) -> int:
        return self.tok.vocab.size


def read_record(root: Path) -> dict:
    try:
        return json.loads((root / STUDENT).read_text())
    except (OSError, ValueError) as e:
        raise UserError(f"{root / STUDENT} cannot be read ({e}): retrain or rewrite the student record") from None


def student_tokenizer(root: Path) -> StudentTokenizer:
    """The student's tokenizer: its compact vocabulary over the teacher's tokenizer (loaded from the
    teacher's local folder, or a `toydlm weights` name; a one-line error when it is not there)."""
    from toydlm.bridge.loading import load_tokenizer

    rec = read_record(root)
    teacher = rec["teacher"]["checkpoint"]
    return StudentTokenizer(CompactVocab.from_dict(rec["vocab"]), load_tokenizer(teacher), rec["prompt_len"],
                            root.name)


def open_student(path: str | Path, tok: StudentTokenizer) -> StudentSetup:
    """The loaded student at `path`: its best checkpoint when `path` is the run folder."""
    from toydlm.model import make_denoiser
    from toydlm.train.checkpoint import load_checkpoint

    root, p = student_root(path), student_checkpoint(path)
    model, meta = load_checkpoint(p)
    if meta["arch"] != "mdlm":
        raise UserError(f"{p} is an {meta['arch']} student: the audit runs diffusion students (--kind dlm)")
    rec = read_record(root)
    if meta["grammar_hash"] != rec["task_hash"]:
        raise UserError(f"{p} was trained on task {meta['grammar_hash']}, but {root / STUDENT} describes "
                        f"{rec['task_hash']}")
    layout = _Layout(tok.vocab.size, model.cfg.seq_len, rec["prompt_len"], rec["response_len"])
    # the head on the response only, as in the twins' swap: the same logits, so the same rows
    return StudentSetup(make_denoiser(model, "mdlm", layout, response_logits_only=True), tok, root.name,
                        rec["response_len"])


@dataclass(frozen=True)
class _Layout:
    """The task fields `make_denoiser` checks, without the corpus."""

    vocab_size: int
    seq_len: int
    prompt_len: int
    response_len: int
    mask_id: int = MASK_ID


def student_checkpoint(path: str | Path) -> Path:
    """The checkpoint the audit loads for `path`: the run's best when `path` is the run folder, else `path`."""
    from toydlm.real.twins.students import best_checkpoint

    root = student_root(path)
    return best_checkpoint(root) if Path(path) == root else Path(path)


def student_sha256(path: str | Path) -> str:
    """The sha256 of the weights the audit would load (from the checkpoint's own record)."""
    from toydlm.train.checkpoint import read_checkpoint

    return read_checkpoint(student_checkpoint(path))[0]["arrays_sha256"]
