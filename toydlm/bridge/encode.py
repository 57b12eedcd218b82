"""Chat-templated prompt ids for a bridge run, with an optional assistant-turn prefill per prompt."""

from __future__ import annotations

import numpy as np

from toydlm.errors import UserError


def chat_ids(tok, user: str, prefill: str = "", chat: bool = True) -> list[int]:
    """The user turn through the chat template (with the generation prompt), then the prefill's tokens:
    the prefill belongs to the prompt, so the response is what the model writes after it. `chat=False`
    encodes the text as it is (a base checkpoint); with `chat`, a tokenizer without a template is an error."""
    if chat:
        if not getattr(tok, "chat_template", None):
            raise UserError(f"the tokenizer of {getattr(tok, 'name_or_path', '') or 'this checkpoint'} has no chat "
                            "template, so the prompts cannot be put in a user turn: use an instruct checkpoint, or "
                            "pass --no-chat-template to feed the raw text")
        ids = tok.apply_chat_template([{"role": "user", "content": user}], add_generation_prompt=True, tokenize=True)
        if isinstance(ids, dict) or hasattr(ids, "keys"):
            ids = ids["input_ids"]
    else:
        ids = tok(user)["input_ids"]
    ids = list(ids)
    if prefill:
        ids += list(tok(prefill, add_special_tokens=False)["input_ids"])
    return ids


def check_lengths(rows: list[list[int]], context: int | None, gen_length: int, what: str = "prompts") -> None:
    """A one-line error naming the first prompt (0-based) whose tokens leave no room for `gen_length`."""
    if context is None:
        return
    room = context - gen_length
    for i, r in enumerate(rows):
        if len(r) > room:
            raise UserError(f"{what}: prompt {i} (0-based) is {len(r)} tokens after the chat template and attack, "
                            f"but the model's context of {context} positions leaves {room} beside --gen-length "
                            f"{gen_length}: shorten or drop that prompt, or lower --gen-length")


def encode_prompts(tok, instructions: list[str], prefills: list[str] | None = None, chat: bool = True,
                   context: int | None = None, gen_length: int = 0, what: str = "prompts",
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Chat-templated prompts, left-padded to one length: (ids [N, P], attention [N, P]). With `context`
    (the model's positions), a prompt that leaves fewer than `gen_length` of them is an error."""
    prefills = prefills or [""] * len(instructions)
    rows = [chat_ids(tok, u, p, chat) for u, p in zip(instructions, prefills)]
    check_lengths(rows, context, gen_length, what)
    return left_pad(rows, pad_id(tok))


def pad_id(tok) -> int:
    """The tokenizer's pad id, else its EOS id, else 0 (left padding is masked out, so any id serves)."""
    return tok.pad_token_id if tok.pad_token_id is not None else (tok.eos_token_id or 0)


def left_pad(rows: list[list[int]], pad: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows left-padded to one length: (ids int64 [N, P], attention bool [N, P], False at padding)."""
    P = max(len(r) for r in rows)
    ids = np.full((len(rows), P), pad, np.int64)
    att = np.zeros((len(rows), P), bool)
    for i, r in enumerate(rows):
        ids[i, P - len(r):] = r
        att[i, P - len(r):] = True
    return ids, att
