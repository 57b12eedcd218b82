"""Chat-templated prompt ids for a bridge run, with an optional assistant-turn prefill per prompt."""

from __future__ import annotations

import numpy as np


def chat_ids(tok, user: str, prefill: str = "") -> list[int]:
    """The user turn through the chat template (with the generation prompt), then the prefill's tokens:
    the prefill belongs to the prompt, so the response is what the model writes after it."""
    if getattr(tok, "chat_template", None):
        ids = tok.apply_chat_template([{"role": "user", "content": user}], add_generation_prompt=True, tokenize=True)
        if isinstance(ids, dict) or hasattr(ids, "keys"):
            ids = ids["input_ids"]
    else:
        ids = tok(user)["input_ids"]
    ids = list(ids)
    if prefill:
        ids += list(tok(prefill, add_special_tokens=False)["input_ids"])
    return ids


def encode_prompts(tok, instructions: list[str], prefills: list[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Chat-templated prompts, left-padded to one length: (ids [N, P], attention [N, P])."""
    prefills = prefills or [""] * len(instructions)
    rows = [chat_ids(tok, u, p) for u, p in zip(instructions, prefills)]
    P = max(len(r) for r in rows)
    pad = tok.pad_token_id if tok.pad_token_id is not None else (tok.eos_token_id or 0)
    ids = np.full((len(rows), P), pad, np.int64)
    att = np.zeros((len(rows), P), bool)
    for i, r in enumerate(rows):
        ids[i, P - len(r):] = r
        att[i, P - len(r):] = True
    return ids, att
