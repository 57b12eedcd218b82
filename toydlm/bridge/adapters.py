"""Hugging Face models as Denoisers: canvas (JAX or torch ids) -> (logits, hidden) via DLPack.

Logits are aligned to positions (`logits[:, i]` predicts token i) for both kinds, as in the toy
lab: a causal LM's outputs are shifted right by one. Diffusion models adapted from an AR model
(Dream: position i predicts token i + 1) need the same shift: `logits_shift=True` applies
Dream's `cat(logits[:, :1], logits[:, :-1])`. The mask id never gets probability; an AR model's
mask id is a placeholder one past its logits (`toydlm.bridge.ends`), so its logits get one more
column (-1e9) and the placeholder is never written into its input. An AR model's position ids
count only attended tokens (as `generate` does with left padding).
When JAX runs on the CPU and the model on a GPU, outputs are copied to the host before DLPack.
Hidden states are the final layer *after the final norm*, captured by a forward hook on the
model's final norm module (as the reference LLaDA wrapper hooks `ln_f`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

NEG = -1e9
_FINAL_NORMS = ("model.norm", "model.final_norm", "transformer.ln_f", "model.transformer.ln_f",
                "transformer.norm", "gpt_neox.final_layer_norm", "model.decoder.final_layer_norm")


def _get(obj: Any, path: str):
    for part in path.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


def find_final_norm(model):
    """The module whose output is the final-layer state after the final norm, or None."""
    for path in _FINAL_NORMS:
        m = _get(model, path)
        if m is not None:
            return m
    return None


def _for_jax(t):
    """The tensor where JAX can read it through DLPack: on the host when JAX has no GPU backend."""
    import jax

    if t.device.type != "cpu" and jax.default_backend() == "cpu":
        return t.cpu()
    return t


def position_ids(attention_mask):
    """Positions counting attended tokens only (left padding gets 0), as `generate` computes them."""
    am = attention_mask.long()
    return (am.cumsum(-1) - 1).clamp(min=0)


def widen(logits, mask_id: int, forbid: tuple[int, ...] = ()):
    """float32 logits `[..., V]` with columns up to `mask_id` added when it lies past them; the mask id
    and `forbid` ids get -1e9 (no probability)."""
    import torch

    V = logits.shape[-1]
    if mask_id >= V:
        logits = torch.cat([logits, logits.new_full((*logits.shape[:-1], mask_id + 1 - V), NEG)], dim=-1)
    logits[..., mask_id] = NEG
    for i in forbid:
        logits[..., i] = NEG
    return logits


@dataclass
class HFDenoiser:
    """A Denoiser over a torch model; `pad_id` fills masked positions a causal model cannot see."""

    model: Any
    kind: str  # "ar" | "dlm"
    mask_id: int
    pad_id: int
    vocab_size: int
    prompt_len: int = 0
    response_len: int = 0
    attention_mask: Any = None  # [B, P+L] torch bool, False at left padding
    name: str = "hf"
    logits_shift: bool = False  # Dream-style diffusion LMs: position i predicts token i + 1
    forbid: tuple[int, ...] = ()  # ids that never get probability (with eos_inf: every end id)
    _captured: list = field(default_factory=list, repr=False)

    def __post_init__(self):
        self.causal = self.kind == "ar"
        norm = find_final_norm(self.model)
        self._hook = norm.register_forward_hook(lambda m, i, o: self._captured.append(o)) if norm else None

    @property
    def device(self):
        return next(self.model.parameters()).device

    def _ids(self, canvas):
        import torch

        if isinstance(canvas, torch.Tensor):
            ids = canvas
        else:
            ids = torch.from_dlpack(canvas) if hasattr(canvas, "__dlpack__") else torch.as_tensor(canvas)
        ids = ids.to(self.device, dtype=torch.long)
        if self.kind == "ar":  # masked future positions are invisible to a causal model anyway
            ids = torch.where((ids == self.mask_id) | (ids >= self.vocab_size), torch.full_like(ids, self.pad_id), ids)
        return ids

    def __call__(self, canvas):
        import torch

        ids = self._ids(canvas)
        am = self.attention_mask
        if am is not None:
            am = am.to(self.device)
        kw = {"position_ids": position_ids(am)} if self.kind == "ar" and am is not None else {}
        self._captured.clear()
        with torch.no_grad():
            out = self.model(input_ids=ids, attention_mask=am, output_hidden_states=self._hook is None, **kw)
        logits = out.logits.float()[..., : self.vocab_size]
        hidden = self._captured[-1] if self._captured else out.hidden_states[-1]
        if isinstance(hidden, tuple):
            hidden = hidden[0]
        if self.kind == "ar":
            logits = torch.cat([torch.zeros_like(logits[:, :1]), logits[:, :-1]], dim=1)
        elif self.logits_shift:
            logits = torch.cat([logits[:, :1], logits[:, :-1]], dim=1)
        logits = widen(logits, self.mask_id, self.forbid)
        return _for_jax(logits.contiguous()), _for_jax(hidden.float().contiguous())

    def close(self) -> None:
        if self._hook is not None:
            self._hook.remove()
            self._hook = None
