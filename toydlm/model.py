"""One pre-norm transformer backbone for both toy language models (Flax NNX).

The same module serves the autoregressive model (`causal=True`) and the masked-diffusion
model (`causal=False`, bidirectional, time-agnostic as in MDLM/RADD). It returns float32
logits and the final-layer hidden states after the final norm (what SRI pools); on request
also every layer's states (`return_layers`, `with_layers`) for the SRI layer ablation.
`make_denoiser` wraps a model as a pure `fn(params, canvas) -> DenoiserOutput` whose logits
are aligned to positions for both architectures, so one sampler drives either model.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from toydlm.denoiser import DenoiserOutput, JaxDenoiser
from toydlm.errors import UserError

NEG_INF = -1e9  # "never": the logit of the mask id (SUBS zero-masking)
ARCHS = ("ar", "mdlm")
POSITION_ENCODINGS = ("learned", "rope")


@dataclass(frozen=True)
class ModelConfig:
    vocab_size: int
    seq_len: int
    d_model: int
    n_layers: int
    n_heads: int
    d_ff: int
    causal: bool
    pos: str = "learned"  # or "rope"
    shift: bool = False  # bidirectional, but output i predicts token i + 1 (Dream: a diffusion LM adapted from AR)

    def __post_init__(self) -> None:
        for name in ("vocab_size", "seq_len", "d_model", "n_layers", "n_heads", "d_ff"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise UserError(f"model config field {name!r} = {v!r}: must be a positive integer")
        if self.d_model % self.n_heads:
            raise UserError(
                f"model config d_model={self.d_model} is not divisible by n_heads={self.n_heads}"
            )
        if self.pos not in POSITION_ENCODINGS:
            raise UserError(f"model config pos={self.pos!r}: must be one of {POSITION_ENCODINGS}")
        if self.pos == "rope" and (self.d_model // self.n_heads) % 2:
            raise UserError("rotary positions need an even head dimension")
        if self.shift and self.causal:
            raise UserError("model config shift=True is for a bidirectional model (a causal one is always shifted)")

    def to_dict(self) -> dict:
        """The fields; `shift` only when set, so configs (and the hashes of runs) made before it existed
        read the same."""
        d = asdict(self)
        if not d["shift"]:
            del d["shift"]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        return cls(**d)


# size fields per preset; vocab/seq_len come from the grammar, causal from the arch
MODEL_PRESETS: dict[str, dict] = {
    "tiny": dict(d_model=32, n_layers=2, n_heads=2, d_ff=64),
    "default": dict(d_model=64, n_layers=3, n_heads=4, d_ff=256),
    "small": dict(d_model=128, n_layers=4, n_heads=4, d_ff=512),
}


def check_arch(arch: str) -> str:
    if arch not in ARCHS:
        raise UserError(f"unknown arch {arch!r} (valid: {', '.join(ARCHS)})")
    return arch


def check_preset(preset: str) -> str:
    if preset not in MODEL_PRESETS:
        raise UserError(f"unknown model preset {preset!r} (valid: {', '.join(MODEL_PRESETS)})")
    return preset


def model_config(preset: str, grammar, arch: str, *, pos: str = "learned", shift: bool = False) -> ModelConfig:
    """The model config for a size preset, a grammar (vocab, length) and an arch (`ar`/`mdlm`); `shift`:
    an MDLM whose output i predicts token i + 1, as an AR model's does (for one adapted from an AR model)."""
    check_preset(preset)
    check_arch(arch)
    return ModelConfig(
        vocab_size=int(grammar.vocab_size),
        seq_len=int(grammar.seq_len),
        causal=arch == "ar",
        pos=pos,
        shift=shift,
        **MODEL_PRESETS[preset],
    )


# ---------------------------------------------------------------------------- layers
def rope(x_BLHK: jax.Array) -> jax.Array:
    """Rotary position embedding (half-split form) over the sequence axis."""
    L, K = x_BLHK.shape[1], x_BLHK.shape[-1]
    half = K // 2
    freq = 1.0 / (10000.0 ** (jnp.arange(half, dtype=jnp.float32) / half))
    ang = jnp.arange(L, dtype=jnp.float32)[:, None] * freq[None]  # [L, K/2]
    cos, sin = jnp.cos(ang)[None, :, None], jnp.sin(ang)[None, :, None]
    x1, x2 = x_BLHK[..., :half], x_BLHK[..., half:]
    return jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)


class Attention(nnx.Module):
    """Multi-head self-attention with a fused QKV projection; causal or bidirectional."""

    def __init__(self, cfg: ModelConfig, *, rngs: nnx.Rngs):
        self.n_heads = cfg.n_heads
        self.causal = cfg.causal
        self.use_rope = cfg.pos == "rope"
        self.qkv = nnx.Linear(cfg.d_model, 3 * cfg.d_model, rngs=rngs)
        self.out = nnx.Linear(cfg.d_model, cfg.d_model, rngs=rngs)

    def __call__(self, x_BLD: jax.Array) -> jax.Array:
        B, L, D = x_BLD.shape
        H = self.n_heads
        qkv = self.qkv(x_BLD).reshape(B, L, 3, H, D // H)
        q, k, v = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]
        if self.use_rope:
            q, k = rope(q), rope(k)
        o_BLHK = jax.nn.dot_product_attention(q, k, v, is_causal=self.causal, implementation="xla")
        return self.out(o_BLHK.reshape(B, L, D))


class Block(nnx.Module):
    """Pre-norm residual block: x + attn(ln(x)); x + mlp(ln(x)) with a GELU MLP."""

    def __init__(self, cfg: ModelConfig, *, rngs: nnx.Rngs):
        self.ln1 = nnx.LayerNorm(cfg.d_model, rngs=rngs)
        self.attn = Attention(cfg, rngs=rngs)
        self.ln2 = nnx.LayerNorm(cfg.d_model, rngs=rngs)
        self.fc1 = nnx.Linear(cfg.d_model, cfg.d_ff, rngs=rngs)
        self.fc2 = nnx.Linear(cfg.d_ff, cfg.d_model, rngs=rngs)

    def __call__(self, x_BLD: jax.Array) -> jax.Array:
        x_BLD = x_BLD + self.attn(self.ln1(x_BLD))
        return x_BLD + self.fc2(jax.nn.gelu(self.fc1(self.ln2(x_BLD))))


class Transformer(nnx.Module):
    """Token (+ learned position) embedding, pre-norm blocks, final norm, untied output head."""

    def __init__(self, cfg: ModelConfig, *, rngs: nnx.Rngs):
        self.cfg = cfg
        init = nnx.initializers.normal(0.02)
        self.embed = nnx.Embed(cfg.vocab_size, cfg.d_model, embedding_init=init, rngs=rngs)
        self.pos_emb = (
            nnx.Param(init(rngs.params(), (cfg.seq_len, cfg.d_model))) if cfg.pos == "learned" else None
        )
        self.blocks = nnx.List([Block(cfg, rngs=rngs) for _ in range(cfg.n_layers)])
        self.ln_f = nnx.LayerNorm(cfg.d_model, rngs=rngs)
        self.head = nnx.Linear(cfg.d_model, cfg.vocab_size, rngs=rngs)

    def __call__(self, tokens_BL: jax.Array, return_layers: bool = False, logits_from: int = 0):
        """`(logits, hidden)`; with `return_layers` also every layer's states `[n_layers + 1, B, L, D]`.
        `logits_from`: the output head runs on positions from there on only (`logits` `[B, L - from, V]`).

        Layer convention (the one of Hugging Face `output_hidden_states`, which the SRI paper's
        layer ablation reads): entry 0 is the embedding output, entry k < n_layers the raw
        residual stream after block k, and the last entry the output of the final norm (= `hidden`).
        """
        L = tokens_BL.shape[1]
        if L > self.cfg.seq_len:
            raise ValueError(f"sequence length {L} exceeds the model's seq_len={self.cfg.seq_len}")
        x_BLD = self.embed(tokens_BL)
        if self.pos_emb is not None:
            x_BLD = x_BLD + self.pos_emb[...][:L][None]
        states = [x_BLD]
        for blk in self.blocks:
            x_BLD = blk(x_BLD)
            states.append(x_BLD)
        hidden_BLD = self.ln_f(x_BLD)
        logits_BLV = self.head(hidden_BLD[:, logits_from:]).astype(jnp.float32)
        if not return_layers:
            return logits_BLV, hidden_BLD
        return logits_BLV, hidden_BLD, jnp.stack([*states[:-1], hidden_BLD])


def init_model(cfg: ModelConfig, seed: int = 0) -> Transformer:
    return Transformer(cfg, rngs=nnx.Rngs(params=seed))


def count_params(model: Transformer) -> int:
    return int(sum(x.size for x in jax.tree.leaves(nnx.state(model, nnx.Param))))


# ---------------------------------------------------------------------------- denoiser
def shift_right(logits_BLV: jax.Array) -> jax.Array:
    """Outputs that predict the next token, moved to the position they predict (position 0, which nothing
    predicts, gets uniform logits)."""
    return jnp.concatenate([jnp.zeros_like(logits_BLV[:, :1]), logits_BLV[:, :-1]], axis=1)


def aligned_logits(logits_BLV: jax.Array, shifted: bool, mask_id: int) -> jax.Array:
    """Logits aligned to positions, with the mask id never predicted.

    A causal model's output at i predicts token i + 1, and so does a shifted MDLM's, so theirs are
    moved right by one (`shift_right`).
    """
    if shifted:
        logits_BLV = shift_right(logits_BLV)
    return logits_BLV.at[..., mask_id].set(NEG_INF)


def response_logits(m: Transformer, canvas_BL: jax.Array, shifted: bool, mask_id: int, prompt_len: int
                    ) -> tuple[jax.Array, jax.Array]:
    """(aligned logits, hidden) with the output head run on the response only: the prompt positions' logits,
    which no sampler reads, are zeros. It saves the head's work on the prompt; in a sampler step on CPU that
    is a few percent, as the proposals' draw dominates (`toydlm bench twin_sampling`)."""
    start = prompt_len - 1 if shifted else prompt_len  # a shifted model predicts position i at output i - 1
    raw_BRV, hidden_BLD = m(canvas_BL, logits_from=start)
    if shifted:
        raw_BRV = raw_BRV[:, :-1]  # the last output predicts past the canvas
    pad = jnp.zeros((raw_BRV.shape[0], prompt_len, raw_BRV.shape[-1]), raw_BRV.dtype)
    return jnp.concatenate([pad, raw_BRV], axis=1).at[..., mask_id].set(NEG_INF), hidden_BLD


@functools.lru_cache(maxsize=32)
def denoiser_fn(graphdef: nnx.GraphDef, shifted: bool, mask_id: int, response_from: int = 0) -> Callable:
    """`fn(params, canvas_BL) -> DenoiserOutput` of one architecture, shared by every model of it.

    One function object per (graph, shifted, mask id, response start): the samplers' jitted programs are
    cached by it, so the models of several training seeds reuse one compilation instead of one each.
    `response_from` > 0: logits of the response only (`response_logits`), except with `layers`.
    """

    def fn(params: Any, canvas_BL: jax.Array, *, layers: bool = False) -> DenoiserOutput:
        m = nnx.merge(graphdef, params)
        if layers:  # hidden = every layer, [B, L, n_layers + 1, D] (see Transformer.__call__)
            logits_BLV, _, layers_KBLD = m(canvas_BL, return_layers=True)
            return DenoiserOutput(aligned_logits(logits_BLV, shifted, mask_id), jnp.moveaxis(layers_KBLD, 0, 2))
        if response_from:
            return DenoiserOutput(*response_logits(m, canvas_BL, shifted, mask_id, response_from))
        logits_BLV, hidden_BLD = m(canvas_BL)
        return DenoiserOutput(aligned_logits(logits_BLV, shifted, mask_id), hidden_BLD)

    return fn


def make_denoiser(model: Transformer, arch: str, grammar, response_logits_only: bool = False) -> JaxDenoiser:
    """A pure JAX denoiser `fn(params, canvas_BL) -> DenoiserOutput` over this model's weights.

    Logits are aligned to positions for both archs (`logits[:, i]` is the distribution of the
    token at i); hidden states are the model's own (unshifted) final-layer states. With
    `response_logits_only` the prompt positions' logits are zeros, not computed (`response_logits`).
    """
    check_arch(arch)
    causal = arch == "ar"
    if model.cfg.causal != causal:
        raise UserError(f"arch {arch!r} does not match the model (causal={model.cfg.causal})")
    if model.cfg.vocab_size != grammar.vocab_size or model.cfg.seq_len != grammar.seq_len:
        raise UserError(
            f"model (vocab {model.cfg.vocab_size}, seq_len {model.cfg.seq_len}) does not fit the "
            f"grammar (vocab {grammar.vocab_size}, seq_len {grammar.seq_len})"
        )
    graphdef, params = nnx.split(model)
    mask_id = int(grammar.mask_id)
    return JaxDenoiser(
        fn=denoiser_fn(graphdef, causal or model.cfg.shift, mask_id,
                       int(grammar.prompt_len) if response_logits_only else 0),
        params=params,
        vocab_size=int(grammar.vocab_size),
        mask_id=mask_id,
        prompt_len=int(grammar.prompt_len),
        response_len=int(grammar.response_len),
        name=f"{arch}-transformer",
        causal=causal,
    )


def with_layers(den: JaxDenoiser) -> JaxDenoiser:
    """The same denoiser whose `hidden` holds every layer, `[B, P + L, n_layers + 1, D]` (last = final norm).

    Samplers record per-layer pooled states from it (`hidden_layers_mean` / `hidden_layers_committed`)
    next to the usual final-layer ones; only denoisers built by `make_denoiser` support it.
    """
    try:
        params = inspect.signature(den.fn).parameters
    except (TypeError, ValueError):
        params = {}
    if "layers" not in params:
        raise ValueError(f"denoiser {den.name!r} cannot return per-layer states (build it with make_denoiser)")
    return dataclasses.replace(den, fn=functools.partial(den.fn, layers=True))
