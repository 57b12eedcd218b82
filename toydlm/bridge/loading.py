"""Safe local loading of Hugging Face checkpoints: safetensors only, no downloads, memory check."""

from __future__ import annotations

import os
from pathlib import Path

from toydlm.errors import UserError
from toydlm.weights import resolve_model

DTYPES = ("float32", "bfloat16", "float16")
_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}


def require_local(path: str | Path) -> Path:
    """The model folder (a path, or a `toydlm weights` name), or a clear error: the bridge never downloads."""
    p = resolve_model(path)
    if not p.is_dir():
        offline = os.environ.get("HF_HUB_OFFLINE") == "1"
        raise UserError(f"model not found at {p}: the bridge loads local folders only"
                         + (" (HF_HUB_OFFLINE=1)" if offline else "") + "; download it first and pass its path")
    if not (p / "config.json").is_file() and not any(p.glob("*.gguf")):
        raise UserError(f"{p} has neither config.json nor a .gguf file: not a Hugging Face model folder")
    return p


def weight_files(p: Path) -> list[Path]:
    st = sorted(p.glob("*.safetensors"))
    gguf = sorted(p.glob("*.gguf"))
    if not st and not gguf:
        pickles = sorted(p.glob("*.bin")) + sorted(p.glob("*.pt")) + sorted(p.glob("*.pth"))
        if pickles:
            raise UserError(f"{p} holds only pickle weights ({pickles[0].name}); the bridge loads safetensors "
                             "(or GGUF) only, never pickle — convert them first")
        raise UserError(f"{p} has no safetensors weights")
    return st or gguf


def estimate_memory_gb(p: Path, dtype: str) -> float:
    """Weights at the requested dtype, plus 20% for activations and buffers (a rough bound)."""
    files = weight_files(p)
    size = sum(f.stat().st_size for f in files)
    if files[0].suffix == ".safetensors":
        size = _stored_params(files) * _BYTES[dtype] or size
    return 1.2 * size / 2**30


def _stored_params(files: list[Path]) -> int:
    import json
    import struct

    n = 0
    for f in files:
        with open(f, "rb") as fh:
            hlen = struct.unpack("<Q", fh.read(8))[0]
            header = json.loads(fh.read(hlen))
        for k, v in header.items():
            if k != "__metadata__":
                c = 1
                for d in v["shape"]:
                    c *= d
                n += c
    return n


def available_memory_gb(device: str) -> float:
    import torch

    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UserError("--device cuda was asked for, but torch sees no CUDA device")
        free, _ = torch.cuda.mem_get_info(torch.device(device))
        return free / 2**30
    pages = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return pages / 2**30


def check_fits(p: Path, dtype: str, device: str) -> dict:
    need, have = estimate_memory_gb(p, dtype), available_memory_gb(device)
    if need > have:
        raise UserError(f"model at {p} needs about {need:.1f} GiB in {dtype} but {device} has {have:.1f} GiB free; "
                         "use --dtype bfloat16, a smaller model, or a bigger device")
    return {"estimated_gb": need, "available_gb": have}


def torch_dtype(dtype: str):
    import torch

    if dtype not in DTYPES:
        raise UserError(f"unknown dtype {dtype!r} (valid: {', '.join(DTYPES)})")
    return getattr(torch, dtype)


def load_model(path: str | Path, kind: str, device: str = "cpu", dtype: str = "float32",
               trust_remote_code: bool = False):
    """(model, tokenizer) for kind `ar` (causal LM) or `dlm` (masked LM, LLaDA/Dream-style)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import transformers as tf

    p = require_local(path)
    files = weight_files(p)
    if not trust_remote_code and _auto_map(p):
        raise UserError(f"{p} ships its own modelling code (config.json auto_map: {', '.join(_auto_map(p))}); "
                         "loading it runs that code on your machine: pass --trust-remote-code if you trust it")
    check_fits(p, dtype, device)
    kw = {"local_files_only": True, "trust_remote_code": trust_remote_code, "dtype": torch_dtype(dtype)}
    if files[0].suffix == ".gguf":
        kw["gguf_file"] = files[0].name
    else:
        kw["use_safetensors"] = True
    tok_kw = {k: v for k, v in kw.items() if k not in ("dtype", "use_safetensors")}
    tok = tf.AutoTokenizer.from_pretrained(p, **tok_kw)
    if kind == "ar":
        model = tf.AutoModelForCausalLM.from_pretrained(p, **kw)
    elif kind == "dlm":
        try:
            model = tf.AutoModelForMaskedLM.from_pretrained(p, **kw)
        except ValueError as e:
            if not trust_remote_code:
                raise UserError(f"{p} is not a masked LM that transformers knows; LLaDA/Dream-style checkpoints "
                                 "need --trust-remote-code (their modelling code runs on your machine)") from e
            model = tf.AutoModel.from_pretrained(p, **kw)
    else:
        raise UserError(f"unknown model kind {kind!r} (valid: ar, dlm)")
    model.eval()
    return model.to(device), tok


def _auto_map(p: Path) -> list[str]:
    """The auto classes a checkpoint maps to its own code (config.json `auto_map`), if any."""
    import json

    try:
        cfg = json.loads((p / "config.json").read_text())
    except (OSError, ValueError):
        return []
    return sorted(cfg.get("auto_map") or {}) if isinstance(cfg, dict) else []


def load_classifier(path: str | Path, device: str = "cpu", trust_remote_code: bool = False):
    import transformers as tf

    p = require_local(path)
    weight_files(p)
    kw = {"local_files_only": True, "trust_remote_code": trust_remote_code, "use_safetensors": True}
    tok = tf.AutoTokenizer.from_pretrained(p, local_files_only=True, trust_remote_code=trust_remote_code)
    model = tf.AutoModelForSequenceClassification.from_pretrained(p, **kw).eval().to(device)
    return model, tok
