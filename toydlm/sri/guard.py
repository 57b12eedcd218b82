"""SRI Guard: a ~3k-parameter autoencoder trained only on benign SRI signals (Optax).

Anomaly score = squared reconstruction error; the threshold is the 99th percentile of scores on
held-out benign signals; a generation is flagged at its end when its score exceeds it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import optax

from toydlm.errors import UserError
from toydlm.sri.metrics import BENIGN_QUANTILE


@dataclass(frozen=True)
class GuardConfig:
    """How SRI Guard's autoencoder is trained and where its threshold sits."""

    hidden: tuple[int, int] = (32, 8)  # encoder widths T-32-8, mirrored decoder 8-32-T
    steps: int = 2000
    lr: float = 3e-3
    batch: int = 128
    quantile: float = BENIGN_QUANTILE  # threshold = this quantile of held-out benign scores
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


@jax.jit
def _reconstruction_error(params, x):
    return ((x - _forward(params, x)) ** 2).sum(-1)


def reconstruction_error(params, signals: np.ndarray) -> np.ndarray:
    """Squared L2 reconstruction error per signal `[N]` (one jitted call for the whole batch)."""
    return np.asarray(_reconstruction_error(params, jnp.asarray(signals, jnp.float32)))


@partial(jax.jit, static_argnames=("steps", "lr", "batch"))
def _train(params, x, key, steps: int, lr: float, batch: int):
    """All Adam steps in one `lax.scan`; step i draws its minibatch with `fold_in(key, 10_000 + i)`."""
    tx = optax.adam(lr)

    def loss_fn(p, xb):
        return ((xb - _forward(p, xb)) ** 2).sum(-1).mean()

    def body(carry, i):
        p, o = carry
        idx = jax.random.randint(jax.random.fold_in(key, 10_000 + i), (batch,), 0, x.shape[0])
        loss, g = jax.value_and_grad(loss_fn)(p, x[idx])
        upd, o = tx.update(g, o, p)
        return (optax.apply_updates(p, upd), o), loss

    (params, _), losses = jax.lax.scan(body, (params, tx.init(params)), jnp.arange(steps))
    return params, losses


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

    def score_recorded(self, hidden_committed_TBD, hidden_mean_TBD, benign_centre, refusal_centre,
                       tau: float = 0.1) -> np.ndarray:
        """Anomaly scores `[B]` straight from what a sampler records (`hidden_committed` / `hidden_mean`,
        `[T, B, D]`): `generated` pooling, SRI signal and autoencoder in one jitted float32 call.

        The deployable path whose cost is SRI Guard's overhead; it equals `score(sri_signal(...))`
        up to float32 rounding."""
        return np.asarray(score_recorded_states(self.params, jnp.asarray(hidden_committed_TBD, jnp.float32),
                                                jnp.asarray(hidden_mean_TBD, jnp.float32),
                                                jnp.asarray(benign_centre, jnp.float32),
                                                jnp.asarray(refusal_centre, jnp.float32), tau))


@jax.jit
def score_recorded_states(params, committed_TBD, mean_TBD, bc_TD, rc_TD, tau):
    """`SRIGuard.score_recorded` as one pure jitted function of the guard's params (for cost analysis)."""
    acts = jnp.where(jnp.isnan(committed_TBD), mean_TBD, committed_TBD).transpose(1, 0, 2)  # [B, T, D]
    eps = 1e-8

    def log_dist(c_TD):
        num = (acts * c_TD[None]).sum(-1)
        den = jnp.linalg.norm(acts, axis=-1) * jnp.linalg.norm(c_TD, axis=-1)[None] + eps
        return jnp.log(jnp.maximum(1.0 - num / den, 0) + eps)

    sig = jax.nn.sigmoid((log_dist(rc_TD) - log_dist(bc_TD)) / tau)
    return ((sig - _forward(params, sig)) ** 2).sum(-1)


def fit_guard(benign_train: np.ndarray, benign_heldout: np.ndarray, config: GuardConfig | None = None) -> SRIGuard:
    """Train on benign signals `[N, T]` only; calibrate the threshold on held-out benign ones."""
    cfg = config or GuardConfig()
    x = np.asarray(benign_train, np.float32)
    if x.ndim != 2 or len(x) < 2:
        raise UserError(f"benign training signals must be [N >= 2, T], got shape {x.shape}")
    if np.asarray(benign_heldout).ndim != 2 or len(benign_heldout) < 1:
        raise UserError("held-out benign signals are needed to calibrate the threshold")
    if np.asarray(benign_heldout).shape[1] != x.shape[1]:
        raise UserError(f"held-out signals have {np.asarray(benign_heldout).shape[1]} steps, training {x.shape[1]}")
    key = jax.random.PRNGKey(cfg.seed)
    params = _init(key, x.shape[1], cfg.hidden)
    params, _ = _train(params, jnp.asarray(x), key, cfg.steps, cfg.lr, min(cfg.batch, len(x)))
    thr = float(np.quantile(reconstruction_error(params, benign_heldout), cfg.quantile))
    return SRIGuard(params=params, threshold=thr, config=cfg)
