"""What the audit knows of a checkpoint before its weights load: where it is, its sha256, whether it
fits the asked kind, its mask id and logits shift; then one call that loads it."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from toydlm.errors import UserError
from toydlm.io import atomic_write_json, file_sha256


def weights_sha256(p: Path, cache: Path | None = None) -> str:
    """sha256 of the weight file (several files: of their names and digests), cached by size and mtime."""
    from toydlm.bridge.loading import weight_files

    files = weight_files(p)
    stamp = [[f.name, f.stat().st_size, f.stat().st_mtime_ns] for f in files]
    known = json.loads(cache.read_text()) if cache is not None and cache.exists() else {}
    hit = known.get(str(p.resolve()))
    if hit and hit["stamp"] == stamp:
        return hit["sha256"]
    digests = [file_sha256(f) for f in files]
    sha = digests[0] if len(files) == 1 else hashlib.sha256(
        "".join(f"{f.name}:{d}\n" for f, d in zip(files, digests)).encode()).hexdigest()
    if cache is not None:
        atomic_write_json(cache, {**known, str(p.resolve()): {"stamp": stamp, "sha256": sha}})
    return sha


def read_config(p: Path) -> dict:
    try:
        d = json.loads((p / "config.json").read_text())
    except (OSError, ValueError):
        return {}
    return d if isinstance(d, dict) else {}


def check_kind(p: Path, kind: str, tok, mask_override: int | None) -> None:
    """A one-line error when the checkpoint cannot be what `kind` says (before its weights load)."""
    cfg = read_config(p)
    if kind != "dlm":
        return
    if not (p / "config.json").is_file():
        raise UserError(f"{p} holds a GGUF file, which transformers loads as a causal (AR) model only: "
                        "use --kind ar")
    mask = mask_override if mask_override is not None else (
        tok.mask_token_id if getattr(tok, "mask_token_id", None) is not None else cfg.get("mask_token_id"))
    archs = cfg.get("architectures") or []
    causal = bool(archs) and all(str(a).endswith(("ForCausalLM", "LMHeadModel")) for a in archs)
    if causal:
        raise UserError(f"{p} is a causal LM ({', '.join(archs)}): an AR checkpoint, not a diffusion one; "
                        "use --kind ar")
    if mask is None:
        raise UserError(f"{p} names no mask token (tokenizer or config): a diffusion checkpoint needs one; "
                        "pass --mask-id")


def logits_shift_for(p: Path, override: bool | None) -> bool:
    """Dream-style checkpoints predict token i + 1 at position i; anything else is aligned."""
    if override is not None:
        return override
    return str(read_config(p).get("model_type", "")).lower() == "dream"


def end_tokens(tok, ids: list[int]) -> list[dict]:
    """The end ids with their tokens, the canonical one first; end-of-turn and end-of-text are told apart
    by the token's name (`<|im_end|>`, `<|eot_id|>`: end of turn; `<|endoftext|>`, `</s>`: end of text)."""
    out = []
    for i in ids:
        token = str(tok.convert_ids_to_tokens(int(i)))
        low = token.lower()
        if any(w in low for w in ("im_end", "eot", "end_of_turn", "<|end|>")):
            role = "end_of_turn"
        elif any(w in low for w in ("endoftext", "end_of_text", "</s>", "eos")):
            role = "end_of_text"
        else:
            role = "end"
        out.append({"id": int(i), "token": token, "role": role})
    return out
