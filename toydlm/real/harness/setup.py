"""The `toydlm` model's arguments, checked before any weights load, and the loaded checkpoint they describe.

model_args (`--model_args pretrained=DIR,kind=dlm,sampler=low_confidence,...`):
  pretrained   a local Hugging Face folder or a `toydlm weights` name (required; nothing is downloaded)
  kind         `dlm` (default) or `ar`
  sampler      any diffusion sampler spec of the audit (`low_confidence`, `random@32+eos_last`, ...); `ar` for AR
  steps        diffusion steps (default: one per position)    block_length  semi-AR blocks (same as NAME@B)
  gen_length   canvas length (default: the task's max_gen_toks)
  temperature  overrides the task's (default: the task's; 0 when it does not sample)
  seed         the run's seed, as `toydlm audit --seed` (default 0)
  elbo_draws   Monte-Carlo draws per loglikelihood request of a diffusion model (default 32)
  dtype, mask_id, logits_shift, trust_remote_code   as for `toydlm audit`
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np

from toydlm.errors import UserError
from toydlm.real.audit.plan import AuditCell, cell_seed
from toydlm.real.audit.shard import barrier, rank_and_world
from toydlm.real.harness.requests import CellKey
from toydlm.real.kit.sampler_specs import parse_sampler

ARGS = ("kind", "sampler", "steps", "block_length", "gen_length", "temperature", "seed", "elbo_draws", "dtype",
        "mask_id", "logits_shift", "trust_remote_code")
DEFAULT_BATCH = 16


@dataclass
class HarnessSetup:
    """A loaded checkpoint (the bridge's Setup, `st`) with the sampler and settings the harness runs."""

    st: object
    kind: str
    sampler_text: str
    steps: int | None
    gen_length: int | None
    temperature: float | None
    seed: int
    elbo_draws: int
    batch_size: int
    context: int | None = None  # the checkpoint's positions, when its config says
    max_canvas: int | None = None  # a twins student's trained canvas: no response can be longer
    device: str = "cpu"
    rank: int = 0
    world: int = 1

    def canvas(self, max_gen_toks: int) -> int:
        """The canvas a request decodes on: gen_length when set, else the task's cap (within a student's canvas)."""
        if self.gen_length is not None:
            return self.gen_length
        return min(max_gen_toks, self.max_canvas) if self.max_canvas else max_gen_toks

    def info(self) -> dict:
        """What the results JSON records of the run (lm-eval-report reads the length cap from it)."""
        return {"toydlm": {"kind": self.kind, "sampler": self.sampler_text, "steps": self.steps,
                           "gen_length": self.gen_length, "max_canvas": self.max_canvas, "seed": self.seed,
                           "elbo_draws": self.elbo_draws, "batch_size": self.batch_size}}

    def cell(self, key: CellKey, samples: int) -> AuditCell:
        """The audit cell these requests belong to: its sampler at the cell's length and temperature, and the
        audit's seed for the cell (prompts are passed encoded, so the cell carries none)."""
        sp = parse_sampler(self.sampler_text, self.kind, key.gen_length, key.temperature, self.steps)
        return AuditCell(sp, key.attack, key.temperature, key.gen_length, (), (), (), (), samples,
                         cell_seed(self.seed, key.attack, key.temperature, key.gen_length))

    @property
    def student(self) -> bool:
        """A twins student: it lays out its prompts itself and has no Hugging Face model to score with."""
        return hasattr(self.st.tok, "encode_prompts")

    def _tokens(self, text: str) -> list[int]:
        return list(self.st.tok(text, add_special_tokens=False)["input_ids"])

    def encode(self, contexts: list[str], gen_length: int) -> tuple[np.ndarray, np.ndarray]:
        """Contexts as the harness hands them (already chat-templated under --apply_chat_template), left-padded."""
        from toydlm.bridge.encode import check_lengths, left_pad, pad_id

        if self.student:  # the context is the user turn, laid out in the student's own prompt window
            return self.st.tok.encode_prompts(list(contexts), [""] * len(contexts))
        rows = [self._tokens(c) or [self.st.eos_id] for c in contexts]
        check_lengths(rows, self.context, gen_length, "lm-eval requests")
        return left_pad(rows, pad_id(self.st.tok))

    def encode_pair(self, context: str, continuation: str) -> tuple[list[int], list[int]]:
        """(context ids, continuation ids): split where the joint encoding starts the continuation, as the
        harness's own models do, so a leading space belongs to the continuation's first token."""
        stripped = context.rstrip(" ")  # a trailing space belongs with the continuation, as lm-eval's hf model has it
        context, continuation = stripped, context[len(stripped):] + continuation
        whole = self._tokens(context + continuation)
        ctx = self._tokens(context)
        n = len(whole) - len(ctx)
        if n < 1:
            raise UserError("an lm-eval loglikelihood request has an empty continuation")
        return (whole[:-n] or [self.st.eos_id]), whole[-n:]

    def decode(self, cell: AuditCell, rows: np.ndarray, ids: np.ndarray, att: np.ndarray) -> list[dict]:
        from toydlm.real.audit.sample import decode_rows

        return decode_rows(self.st, cell, rows, ids, att, steps=False)

    def scorer(self):
        """The checkpoint as a denoiser for scoring (no forbidden ids: scores see the full distribution)."""
        from toydlm.bridge.adapters import HFDenoiser

        if self.student:
            raise UserError("a twins student cannot score continuations here (loglikelihood): run generation tasks")
        st = self.st
        return HFDenoiser(st.hf, self.kind, mask_id=st.mask_id, pad_id=st.pad_id, vocab_size=st.vocab,
                          name=st.name, logits_shift=st.logits_shift)

    def all_gather(self, tensor):
        if self.world == 1:
            return tensor
        import torch
        import torch.distributed as dist

        t = tensor.reshape(-1).cpu()  # gloo gathers host tensors
        parts = [torch.zeros_like(t) for _ in range(self.world)]
        dist.all_gather(parts, t)
        return torch.cat(parts)

    def gather_object(self, obj, dst: int = 0):
        if self.world == 1:
            return [obj]
        import torch.distributed as dist

        out = [None] * self.world if self.rank == dst else None
        dist.gather_object(obj, out, dst=dst)
        return out

    def barrier(self) -> None:
        barrier(self.world)


def _number(args: dict, name: str, kind: type, default=None, low: float = 0):
    """A numeric model_arg (int or float) at least `low`, None when absent, or a one-line error."""
    v = args.get(name, default)
    if v is None:
        return None
    try:
        out = kind(v)
    except (TypeError, ValueError):
        raise UserError(f"model_args {name}={v!r} must be {'an integer' if kind is int else 'a number'}") from None
    if not out >= low:
        raise UserError(f"model_args {name}={v!r} must be at least {low:g}")
    return out


def _choice(args: dict, name: str, choices: tuple, default):
    v = args.get(name, default)
    if v not in choices:
        raise UserError(f"model_args {name}={v!r} must be one of {', '.join(map(str, choices))}")
    return v


def _batch(batch_size) -> int:
    """The harness's --batch_size: a number, or `auto` (which the toydlm model reads as 16)."""
    if batch_size is None or str(batch_size).startswith("auto"):
        return DEFAULT_BATCH
    if not str(batch_size).isdigit() or int(batch_size) < 1:
        raise UserError(f"--batch_size {batch_size!r} must be a positive integer or auto")
    return int(batch_size)


def _device(device: str | None, world: int) -> str:
    """The harness defaults --device to cuda:0; without a GPU the toydlm model says so and runs on the CPU.
    Under several processes each takes the GPU of its local rank."""
    import os

    import torch

    device = device or "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        print(f"toydlm: --device {device} asked but no GPU is visible; running on cpu", file=sys.stderr)
        return "cpu"
    if device.startswith("cuda") and world > 1:
        return f"cuda:{os.environ.get('LOCAL_RANK', '0')}"
    return device


def sampler_text(kind: str, sampler: str | None, block_length) -> str:
    """The sampler spec the args describe (block_length=B is the same as NAME@B)."""
    if kind == "ar":
        if sampler not in (None, "ar") or block_length is not None:
            raise UserError(f"model_args kind=ar runs only sampler=ar, not sampler={sampler!r}"
                            + (f" with block_length={block_length}" if block_length is not None else "")
                            + "; use kind=dlm for a diffusion checkpoint")
        return "ar"
    text = sampler or "low_confidence"
    if block_length is not None:
        base, plus, control = text.partition("+")
        if "@" in base:
            raise UserError(f"model_args sampler={text!r} names a block already; drop block_length")
        text = f"{base}@{block_length}{plus}{control}"
    return text


def open_harness_setup(pretrained: str | None, batch_size, device: str | None, args: dict) -> HarnessSetup:
    """Check every argument (one-line errors, nothing loaded yet), then load the checkpoint."""
    unknown = sorted(set(args) - set(ARGS))
    if unknown:
        raise UserError(f"unknown toydlm model_args {', '.join(unknown)} (valid: pretrained, {', '.join(ARGS)})")
    if not pretrained:
        raise UserError("the toydlm model needs model_args pretrained=PATH (a local folder or a toydlm weights name)")
    kind = str(args.get("kind", "dlm"))
    if kind not in ("ar", "dlm"):
        raise UserError(f"model_args kind={kind!r} must be ar or dlm")
    L = _number(args, "gen_length", int, None, 1)
    steps, block = _number(args, "steps", int, None, 1), _number(args, "block_length", int, None, 1)
    if kind == "ar" and steps is not None:
        raise UserError("model_args kind=ar decodes one token per step: drop steps")
    text = sampler_text(kind, args.get("sampler"), block)
    parse_sampler(text, kind, L or block or 1, 1.0, steps)  # an unknown sampler fails here, before any load
    from toydlm.bridge.loading import DTYPES

    _choice(args, "dtype", DTYPES, "float32")
    _choice(args, "logits_shift", (None, True, False), None)
    _choice(args, "trust_remote_code", (True, False), False)
    hs = dict(kind=kind, sampler_text=text, steps=steps, gen_length=L, seed=_number(args, "seed", int, 0),
              temperature=_number(args, "temperature", float), elbo_draws=_number(args, "elbo_draws", int, 32, 1),
              batch_size=_batch(batch_size))
    rank, world = rank_and_world()
    device = _device(device, world)
    st, context = _load(str(pretrained), kind, device, args, L, hs["batch_size"], hs["seed"])
    canvas = getattr(st, "response_len", None)  # a student decodes on its trained canvas or a shorter one
    barrier(world)  # under `accelerate launch`: every process joins the gloo group the harness gathers over
    return HarnessSetup(st, **hs, context=context, max_canvas=canvas, device=device, rank=rank, world=world)


def _load(pretrained: str, kind: str, device: str, args: dict, L: int | None, batch: int,
          seed: int) -> tuple[object, int | None]:
    """The audit's checks of the folder (kind against its config, its mask id), then its weights."""
    from toydlm.bridge.loading import context_length, load_tokenizer, require_local
    from toydlm.real.audit.checkpoint import check_kind, logits_shift_for
    from toydlm.real.kit.checkpoint import open_checkpoint
    from toydlm.real.twins.student_setup import student_root

    if student_root(pretrained) is not None:
        return _load_student(pretrained, kind, L)

    trust = bool(args.get("trust_remote_code", False))
    mask = _number(args, "mask_id", int, None)
    p = require_local(pretrained)
    tok = load_tokenizer(p, trust)
    try:
        check_kind(p, kind, tok, mask)
    except UserError as e:  # the audit names its flags; here they are model_args
        raise UserError(str(e).replace("use --kind ar", "use kind=ar").replace("pass --mask-id", "pass mask_id=ID")
                        ) from None
    shift = logits_shift_for(p, args.get("logits_shift")) if kind == "dlm" else False
    st = open_checkpoint(str(p), kind, gen_length=L or 128, batch_size=batch, dtype=str(args.get("dtype", "float32")),
                         device=device, seed=seed, trust_remote_code=trust, mask_id=mask, tok=tok,
                         logits_shift=shift, verbose=False)
    return st, context_length(p)


def _load_student(pretrained: str, kind: str, L: int | None) -> tuple[object, int | None]:
    """A real-text twins student (the audit opens it the same way): a diffusion model on its trained canvas."""
    from toydlm.real.twins.student_setup import open_student, read_record, student_root, student_tokenizer

    root = student_root(pretrained)
    if kind != "dlm":
        raise UserError(f"{pretrained} is a twins student: run it with kind=dlm")
    canvas = int(read_record(root)["response_len"])
    if L is not None and L > canvas:
        raise UserError(f"gen_length {L} is longer than the {canvas}-token canvas the student was trained on")
    return open_student(pretrained, student_tokenizer(root)), None
