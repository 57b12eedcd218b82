"""Safe local loading of Hugging Face checkpoints: safetensors only, no downloads, memory check."""

from __future__ import annotations

import json
import mmap
import os
import struct
from pathlib import Path
from typing import NamedTuple

from toydlm.errors import UserError
from toydlm.weights import resolve_model

DTYPES = ("float32", "bfloat16", "float16")
DEVICE_MAPS = ("auto", "balanced", "balanced_low_0", "sequential")  # accelerate's placement strategies
_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}


def require_local(path: str | Path) -> Path:
    """The model folder (a path, or a `toydlm weights` name), or a clear error: the bridge never downloads."""
    from toydlm.weights import REGISTRY

    p = resolve_model(path)
    if not p.is_dir():
        offline = os.environ.get("HF_HUB_OFFLINE") == "1"
        raise UserError(f"model not found at {p}: the bridge loads local folders only"
                         + (" (HF_HUB_OFFLINE=1)" if offline else "") + "; download it first and pass its path, "
                         f"or a checkpoint name from `toydlm weights list` ({', '.join(REGISTRY)})")
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
    """Weights at the requested dtype, plus 20% for activations and buffers (a rough bound).

    A GGUF checkpoint is dequantised to float32 while it loads (transformers), so its peak holds the
    quantised file, the float32 weights, the tensor being dequantised and, for another dtype, the cast
    copy: far more than the file (Qwen2.5-Coder-0.5B Q4_K_M in float32: a 0.46 GiB file; loading grew the
    process by 3.45 GiB at peak, 2.55 GiB after; this estimate says 3.97 GiB).
    """
    files = weight_files(p)
    size = sum(f.stat().st_size for f in files)
    if files[0].suffix == ".safetensors":
        size = _stored_params(files) * _BYTES[dtype] or size
    else:
        heads = [gguf_header(f) for f in files]
        n = sum(h.n_params for h in heads)
        size += 4 * (n + max(h.largest for h in heads)) + (n * _BYTES[dtype] if dtype != "float32" else 0)
    return 1.2 * size / 2**30


def _stored_params(files: list[Path]) -> int:
    n = 0
    for f in files:
        with open(f, "rb") as fh:
            hlen = struct.unpack("<Q", fh.read(8))[0]
            header = json.loads(fh.read(hlen))
        n += sum(_prod(v["shape"]) for k, v in header.items() if k != "__metadata__")
    return n


def _prod(dims: list[int]) -> int:
    out = 1
    for d in dims:
        out *= d
    return out


_GGUF_SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
_GGUF_STRING, _GGUF_ARRAY = 8, 9


class _GGUFCursor:
    """Reads a little-endian GGUF v2/v3 header from a buffer; arrays are skipped, not decoded."""

    def __init__(self, buf) -> None:
        self.buf, self.pos = buf, 0

    def take(self, fmt: str):
        (v,) = struct.unpack_from("<" + fmt, self.buf, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return v

    def string(self) -> str:
        n = self.take("Q")
        self.pos += n
        return bytes(self.buf[self.pos - n:self.pos]).decode("utf-8", "replace")

    def value(self, vtype: int):
        """A scalar or string value; an array is skipped and read as None."""
        if vtype == _GGUF_STRING:
            return self.string()
        if vtype != _GGUF_ARRAY:
            return self.take(_GGUF_SCALARS[vtype])
        etype, count = self.take("I"), self.take("Q")
        if etype in _GGUF_SCALARS:
            self.pos += count * struct.calcsize("<" + _GGUF_SCALARS[etype])
        else:
            for _ in range(count):
                self.value(etype)
        return None


class GGUFHeader(NamedTuple):
    n_params: int  # elements of all tensors
    largest: int  # elements of the largest tensor
    meta: dict  # scalar and string metadata (arrays left out)


def gguf_header(f: Path) -> GGUFHeader:
    """The tensor sizes and scalar metadata of a GGUF file, read from its header only (no tensor data)."""
    bad = f"{f} is not a readable GGUF v2/v3 file"
    if f.stat().st_size < 24:
        raise UserError(f"{bad} (only {f.stat().st_size} bytes); fetch it again")
    with open(f, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        c = _GGUFCursor(mm)
        if c.take("4s") != b"GGUF" or c.take("I") not in (2, 3):
            raise UserError(f"{bad} (bad magic or version); the bridge cannot load it")
        try:
            n_tensors, n_kv = c.take("Q"), c.take("Q")
            meta = {c.string(): c.value(c.take("I")) for _ in range(n_kv)}
            sizes = []
            for _ in range(n_tensors):
                c.string()
                sizes.append(_prod([c.take("Q") for _ in range(c.take("I"))]))
                c.take("I"), c.take("Q")  # tensor type, data offset
        except (struct.error, KeyError) as e:
            raise UserError(f"{bad}: its header is truncated or corrupt ({e}); fetch it again") from None
    return GGUFHeader(sum(sizes), max(sizes, default=0), {k: v for k, v in meta.items() if v is not None})


def context_length(p: Path) -> int | None:
    """Positions the checkpoint was built for (config.json `max_position_embeddings` or `n_positions`,
    else GGUF `<arch>.context_length`), or None when it names none."""
    if (p / "config.json").is_file():
        try:
            d = json.loads((p / "config.json").read_text())
        except (OSError, ValueError):
            return None
        v = (d.get("max_position_embeddings") or d.get("n_positions")) if isinstance(d, dict) else None
    else:
        ggufs = sorted(p.glob("*.gguf"))
        meta = gguf_header(ggufs[0]).meta if ggufs else {}
        v = meta.get(f"{meta.get('general.architecture')}.context_length")
    return int(v) if isinstance(v, int) and not isinstance(v, bool) else None


def available_memory_gb(device: str, device_map: str | None = None) -> float:
    """Free memory on `device`; with a device map, on every CUDA device plus the host (accelerate
    spreads the weights over them and offloads the rest to CPU)."""
    import torch

    host = host_available_gb()
    if device_map is not None:
        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        return host + sum(torch.cuda.mem_get_info(i)[0] for i in range(n)) / 2**30
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UserError("--device cuda was asked for, but torch sees no CUDA device")
        free, _ = torch.cuda.mem_get_info(torch.device(device))
        return free / 2**30
    return host


def host_available_gb(meminfo: Path = Path("/proc/meminfo")) -> float:
    """Host memory a new process can use: Linux's MemAvailable (free + reclaimable page cache), else free pages."""
    try:
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024 / 2**30
    except (OSError, ValueError, IndexError):
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**30


def check_fits(p: Path, dtype: str, device: str, device_map: str | None = None) -> dict:
    need, have = estimate_memory_gb(p, dtype), available_memory_gb(device, device_map)
    where = f"--device-map {device_map} (all GPUs + host)" if device_map else device
    if need > have:
        raise UserError(f"model at {p} needs about {need:.1f} GiB in {dtype} but {where} has {have:.1f} GiB free; "
                         "use --dtype bfloat16, a smaller model, or a bigger device")
    return {"estimated_gb": need, "available_gb": have}


def check_device_map(device_map: str | None) -> str | None:
    """The device map, or a one-line error listing the valid ones (before anything loads)."""
    if device_map is not None and device_map not in DEVICE_MAPS:
        raise UserError(f"unknown --device-map {device_map!r} (valid: {', '.join(DEVICE_MAPS)}; "
                        "omit it to place the whole model on --device)")
    return device_map


def torch_dtype(dtype: str):
    import torch

    if dtype not in DTYPES:
        raise UserError(f"unknown dtype {dtype!r} (valid: {', '.join(DTYPES)})")
    return getattr(torch, dtype)


def _load_kw(p: Path, trust_remote_code: bool) -> dict:
    """`from_pretrained` keywords the tokenizer and the model share: offline, and the GGUF file if any."""
    if not trust_remote_code and _auto_map(p):
        raise UserError(f"{p} ships its own modelling code (config.json auto_map: {', '.join(_auto_map(p))}); "
                         "loading it runs that code on your machine: pass --trust-remote-code if you trust it")
    kw = {"local_files_only": True, "trust_remote_code": trust_remote_code}
    files = weight_files(p)
    if files[0].suffix == ".gguf":
        kw["gguf_file"] = files[0].name
    return kw


def load_tokenizer(path: str | Path, trust_remote_code: bool = False):
    """The checkpoint's tokenizer alone (building a GGUF one takes seconds: pass it on to `load_model`)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import transformers as tf

    p = require_local(path)
    return tf.AutoTokenizer.from_pretrained(p, **_load_kw(p, trust_remote_code))


def load_model(path: str | Path, kind: str, device: str = "cpu", dtype: str = "float32",
               trust_remote_code: bool = False, device_map: str | None = None, tok=None):
    """(model, tokenizer) for kind `ar` (causal LM) or `dlm` (masked LM, LLaDA/Dream-style). `device_map`
    (accelerate: "auto", ...) places the weights instead of `device`; `tok` reuses a loaded tokenizer."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import transformers as tf

    p = require_local(path)
    kw = _load_kw(p, trust_remote_code)
    check_fits(p, dtype, device, check_device_map(device_map))
    if tok is None:
        tok = tf.AutoTokenizer.from_pretrained(p, **kw)
    kw["dtype"] = torch_dtype(dtype)
    if "gguf_file" not in kw:
        kw["use_safetensors"] = True
    if device_map is not None:
        kw["device_map"] = device_map
    model = _from_pretrained(tf, p, kind, kw).eval()
    return (model if device_map is not None else model.to(device)), tok


def _from_pretrained(tf, p: Path, kind: str, kw: dict):
    if kind == "ar":
        return tf.AutoModelForCausalLM.from_pretrained(p, **kw)
    if kind != "dlm":
        raise UserError(f"unknown model kind {kind!r} (valid: ar, dlm)")
    try:
        return tf.AutoModelForMaskedLM.from_pretrained(p, **kw)
    except ValueError as e:
        if not kw["trust_remote_code"]:
            raise UserError(f"{p} is not a masked LM that transformers knows; LLaDA/Dream-style checkpoints "
                             "need --trust-remote-code (their modelling code runs on your machine)") from e
        return tf.AutoModel.from_pretrained(p, **kw)


def _auto_map(p: Path) -> list[str]:
    """The auto classes a checkpoint maps to its own code (config.json `auto_map`), if any."""
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
