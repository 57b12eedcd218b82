"""Where a response ends and which id marks an uncommitted position, on a real checkpoint.

- **End of a response.** A chat model ends its turn with the chat template's end-of-turn token
  (Qwen: `<|im_end|>`), which is often not the tokenizer's `eos_token_id` (`<|endoftext|>`). The
  end ids are the generation config's `eos_token_id` (an id or a list), else the tokenizer's, else
  the model config's. The lab's samplers and traces know one `eos_id`: the first end id is the
  canonical one, and every other end id a sampler commits is recorded as it in the trace
  (`toydlm.bridge.sampling.canonical_ends`); the model itself keeps seeing the tokens it wrote.
- **The AR mask placeholder.** An AR model has no mask token; its uncommitted positions need an id
  no sampler may ever propose. Any real token (Qwen's unk *is* its EOS) would be forbidden, so the
  placeholder is the logits width itself: the adapters append one column for it (always -1e9) and
  never write it into a model input (an AR model only sees committed tokens).
"""

from __future__ import annotations

from typing import Any


def _as_ids(x: Any) -> list[int]:
    if x is None:
        return []
    if isinstance(x, (list, tuple)):
        return [int(i) for i in x if i is not None]
    return [int(x)]


def end_ids(tok, model=None) -> list[int]:
    """End-of-turn ids, canonical first: generation config, else tokenizer, else model config (else [0])."""
    gen = getattr(model, "generation_config", None)
    ids = _as_ids(getattr(gen, "eos_token_id", None))
    if not ids:
        ids = _as_ids(getattr(tok, "eos_token_id", None))
    if not ids:
        ids = _as_ids(getattr(getattr(model, "config", None), "eos_token_id", None))
    out: list[int] = []
    for i in ids or [0]:
        if i not in out:
            out.append(i)
    return out


def ar_placeholder(logits_width: int) -> int:
    """The AR mask placeholder: one past the model's last logit column, so never a real token."""
    return int(logits_width)


def output_vocab(model, tok) -> int:
    """Width of the model's logits: its output embeddings, else config.vocab_size, else the tokenizer."""
    emb = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if emb is not None and hasattr(emb, "weight"):
        return int(emb.weight.shape[0])
    return int(getattr(model.config, "vocab_size", None) or len(tok))


def mask_token_for(tok, kind: str, model_config=None, override: int | None = None, vocab: int | None = None) -> int:
    """The mask id. A diffusion model's: `override`, else the tokenizer's mask token, else the model
    config's `mask_token_id` (LLaDA/Dream configs carry one). An AR model's: the placeholder one past
    its logits (`vocab`, the logits width), whatever mask token its tokenizer may name."""
    from toydlm.errors import UserError

    if kind == "ar":
        if override is not None:
            raise UserError("--mask-id applies to diffusion (--kind dlm) checkpoints; an AR model's uncommitted "
                            "positions use a placeholder id that is never a real token")
        if vocab is None:
            raise ValueError("an AR model's mask placeholder needs the logits width (vocab)")
        return ar_placeholder(vocab)
    if override is not None:
        return int(override)
    if tok.mask_token_id is not None:
        return int(tok.mask_token_id)
    cfg_mask = getattr(model_config, "mask_token_id", None)
    if cfg_mask is not None:
        return int(cfg_mask)
    raise UserError("this diffusion checkpoint names no mask token (tokenizer or config); pass --mask-id")
