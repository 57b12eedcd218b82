"""SRI Guard: a ~3k-parameter autoencoder trained only on benign SRI signals (Optax).

Anomaly score = squared reconstruction error; the threshold is the 99th percentile of scores on
held-out benign signals; a generation is flagged at its end when its score exceeds it.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import optax


@dataclass(frozen=True)
class GuardConfig:
    hidden: tuple[int, int] = (32, 8)  # encoder widths T-32-8, mirrored decoder 8-32-T
    steps: int = 2000
    lr: float = 3e-3
    batch: int = 128
    quantile: float = 0.99
    seed: int = 0


def _init(key: jax.Array, T: int, hidden: tuple[int, int]) -> list[tuple[jax.Array, jax.Array]]:
    dims = [T, hidden[0], hidden[1], hidden[0], T]
    params = []
    for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
        k = jax.random.fold_in(key, i)
        params.append((jax.random.normal(k, (a, b)) * np.sqrt(2.0 / a), jnp.zeros(b)))
    return params


def _forward(params, x):
    h = x
    for i, (w, b) in enumerate(params):
        h = h @ w + b
        if i < len(params) - 1:
            h = jax.nn.gelu(h)
    return jax.nn.sigmoid(h)  # signals live in (0, 1)


def reconstruction_error(params, signals: np.ndarray) -> np.ndarray:
    x = jnp.asarray(signals, jnp.float32)
    return np.asarray(((x - _forward(params, x)) ** 2).sum(-1))


@dataclass
class SRIGuard:
    params: list
    threshold: float
    config: GuardConfig

    @property
    def n_params(self) -> int:
        return int(sum(w.size + b.size for w, b in self.params))

    def score(self, signals: np.ndarray) -> np.ndarray:
        return reconstruction_error(self.params, signals)

    def flag(self, signals: np.ndarray) -> np.ndarray:
        return self.score(signals) > self.threshold


def fit_guard(benign_train: np.ndarray, benign_heldout: np.ndarray, config: GuardConfig | None = None) -> SRIGuard:
    """Train on benign signals `[N, T]` only; calibrate the threshold on held-out benign ones."""
    cfg = config or GuardConfig()
    x = np.asarray(benign_train, np.float32)
    if x.ndim != 2 or len(x) < 2:
        raise ValueError(f"benign training signals must be [N >= 2, T], got shape {x.shape}")
    if np.asarray(benign_heldout).ndim != 2 or len(benign_heldout) < 1:
        raise ValueError("held-out benign signals are needed to calibrate the threshold")
    if np.asarray(benign_heldout).shape[1] != x.shape[1]:
        raise ValueError(f"held-out signals have {np.asarray(benign_heldout).shape[1]} steps, training {x.shape[1]}")
    key = jax.random.PRNGKey(cfg.seed)
    params = _init(key, x.shape[1], cfg.hidden)
    tx = optax.adam(cfg.lr)
    opt = tx.init(params)

    def loss_fn(p, xb):
        return ((xb - _forward(p, xb)) ** 2).sum(-1).mean()

    @jax.jit
    def step(p, o, k):
        idx = jax.random.randint(k, (min(cfg.batch, len(x)),), 0, len(x))
        loss, g = jax.value_and_grad(loss_fn)(p, jnp.asarray(x)[idx])
        upd, o = tx.update(g, o, p)
        return optax.apply_updates(p, upd), o, loss

    for i in range(cfg.steps):
        params, opt, _ = step(params, opt, jax.random.fold_in(key, 10_000 + i))
    thr = float(np.quantile(reconstruction_error(params, benign_heldout), cfg.quantile))
    return SRIGuard(params=params, threshold=thr, config=cfg)
