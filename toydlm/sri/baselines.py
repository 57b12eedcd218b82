"""The detectors SRI Guard is compared with; each scores one generation, higher = more likely a jailbreak.

- guard model: a small bidirectional transformer classifier on the final prompt + response text,
  trained on the seen attack families (the toy's LlamaGuard);
- perplexity filter: mean per-token NLL of the final response under the AR model;
- text-level refusal signal: per step, whether a refusal is committed yet (scored by an autoencoder
  like SRI Guard's, so it differs from SRI Guard only in reading text instead of activations);
- first-step activations: cosine distance of the first step's pooled state to the benign mean.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import jax
import jax.numpy as jnp
import numpy as np
import optax

from toydlm.grammar import Grammar

GUARD_MODEL_WIDTH = 32  # d_model of the guard-model transformer (2 layers, 2 heads, d_ff 64)


@dataclass(frozen=True)
class GuardModel:
    """The trained guard-model classifier: `gm(tokens) -> [N]` logits (harmful = high)."""

    fn: Callable  # jitted (params, tokens [N, L]) -> logits [N]
    params: dict

    def __call__(self, tokens: np.ndarray) -> np.ndarray:
        return np.asarray(self.fn(self.params, jnp.asarray(tokens)))


def guard_model_baseline(g: Grammar, seen_families: list[str], seed: int, steps: int = 300) -> GuardModel:
    """Train the guard model (harmful vs not) on `steps` batches of 128 grammar samples whose prompts
    carry no wrapper or a *seen* one, so the unseen family stays unseen; one jitted Adam scan."""
    from flax import nnx

    from toydlm.model import ModelConfig, Transformer

    cfg = ModelConfig(vocab_size=g.vocab_size, seq_len=g.seq_len, d_model=GUARD_MODEL_WIDTH, n_layers=2, n_heads=2,
                      d_ff=64, causal=False)
    graph, body = nnx.split(Transformer(cfg, rngs=nnx.Rngs(params=seed)))
    params = {"body": body, "w": jnp.zeros((GUARD_MODEL_WIDTH,)), "b": jnp.zeros(())}
    fams = [g.wrapper_index(f) for f in seen_families] + [0]
    rng = np.random.default_rng(seed)
    batches = [g.sample(128, seed * 100_000 + i, wrapper=int(rng.choice(fams))) for i in range(steps)]
    x = jnp.asarray(np.stack([b.tokens for b in batches]))
    y = jnp.asarray(np.stack([b.harmful for b in batches]), jnp.float32)

    def logit(p, tokens):  # mean-pooled response states -> one logit
        _, h = nnx.merge(graph, p["body"])(tokens)
        return h[:, g.prompt_len:].mean(1) @ p["w"] + p["b"]

    tx = optax.adam(3e-3)

    @jax.jit
    def train(p):
        def step(carry, xy):
            p, o = carry
            bce = lambda q: optax.sigmoid_binary_cross_entropy(logit(q, xy[0]), xy[1]).mean()  # noqa: E731
            loss, gr = jax.value_and_grad(bce)(p)
            u, o = tx.update(gr, o, p)
            return (optax.apply_updates(p, u), o), loss

        return jax.lax.scan(step, (p, tx.init(p)), (x, y))[0][0]

    return GuardModel(jax.jit(logit), train(params))


@lru_cache(maxsize=8)
def _jit_fn(fn: Callable) -> Callable:
    return jax.jit(fn)


def response_nll(ar_den, tokens: np.ndarray, g: Grammar) -> np.ndarray:
    """Mean per-token NLL `[N]` of each final response under the AR model (the perplexity filter)."""
    out = _jit_fn(ar_den.fn)(ar_den.params, jnp.asarray(tokens))
    logp = jax.nn.log_softmax(out.logits[:, g.prompt_len:], -1)
    tok = jnp.asarray(tokens[:, g.prompt_len:])
    return -np.asarray(jnp.take_along_axis(logp, tok[..., None], -1)[..., 0].mean(-1))


def text_refusal_signal(trace) -> np.ndarray:
    """`[N, T]` text-level signal of a trace: 1 while no refusal is committed yet, 0 after."""
    return (~trace["committed_refusal"].T).astype(float)


def first_step_distance(first_ND: np.ndarray, benign_mean_D: np.ndarray) -> np.ndarray:
    """Cosine distance `[N]` of first-step pooled states to the mean benign first-step state."""
    cos = (first_ND @ benign_mean_D) / (np.linalg.norm(first_ND, axis=-1) * np.linalg.norm(benign_mean_D) + 1e-8)
    return 1 - cos
