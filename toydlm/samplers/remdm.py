"""ReMDM's time grid, alpha schedules and re-masking sigma (docs/algorithms.md).

Uniform grid of T steps: step i (0-based) goes from t = (T - i) / T to s = (T - i - 1) / T.
Linear alpha `alpha(t) = 1 - t` (MDLM's log-linear schedule with eps -> 0). Per position:
a committed token is re-masked w.p. sigma; a masked one is unmasked w.p.
`(alpha_s - (1 - sigma) alpha_t) / (1 - alpha_t)`; sigma = 0 is MDLM. At the last step
alpha_s = 1, so sigma_max = 0 and everything left is committed.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from toydlm.samplers.config import SamplerConfig


def times(i, steps: int) -> tuple[jax.Array, jax.Array]:
    """(t, s) of step i on the uniform grid from 1 to 0."""
    i = jnp.asarray(i, jnp.float32)
    return (steps - i) / steps, (steps - i - 1) / steps


def alpha(t, cfg: SamplerConfig):
    """Probability a token is clean at time t: linear, or remdm-loop's three-phase schedule."""
    t = jnp.asarray(t, jnp.float32)
    if cfg.remdm_schedule != "loop":
        return 1.0 - t
    a_on, t_on, t_off = cfg.alpha_on, cfg.t_on, cfg.t_off
    phase1 = a_on * (1.0 - t) / (1.0 - t_on) if t_on < 1 else jnp.float32(a_on)
    phase3 = 1.0 - (1.0 - a_on) * t / t_off if t_off > 0 else jnp.float32(1.0)
    return jnp.where(t > t_on, phase1, jnp.where(t > t_off, a_on, phase3))


def sigma_max(a_t, a_s):
    """Largest valid sigma: `min(1, (1 - alpha_s) / alpha_t)` (1 when alpha_t = 0)."""
    return jnp.where(a_t > 0, jnp.minimum(1.0, (1.0 - a_s) / jnp.maximum(a_t, 1e-30)), 1.0)


def sigma(cfg: SamplerConfig, t, a_t, a_s, psi_L: jax.Array,
          decoded_L: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(re-masking probability `[L]` of decoded positions, sigma entering masked positions' unmasking).

    cap: min(eta, sigma_max); rescale: eta * sigma_max; conf: softmax over decoded positions of
    -psi (psi = prob of the token when it was committed) times sigma_max, so less confident
    tokens are re-masked more (masked positions get sigma 0, hence MDLM's unmasking);
    loop: eta while t_off < t <= t_on, else 0 (clipped to sigma_max).
    """
    smax = sigma_max(a_t, a_s)
    eta = cfg.eta_value
    name = cfg.remdm_schedule
    if name == "cap":
        s = jnp.minimum(eta, smax)
    elif name == "rescale":
        s = eta * smax
    elif name == "loop":
        s = jnp.where((t > cfg.t_off) & (t <= cfg.t_on), jnp.minimum(eta, smax), 0.0)
    else:  # conf
        w = jax.nn.softmax(jnp.where(decoded_L, -jnp.nan_to_num(psi_L, nan=0.0), -jnp.inf))
        w = jnp.where(decoded_L, w, 0.0)  # no decoded position: softmax of all -inf is NaN
        return eta * w * smax, jnp.float32(0.0)  # masked positions carry weight 0
    return jnp.where(decoded_L, s, 0.0), s


def unmask_prob(a_t, a_s, sigma_masked):
    """Probability a masked position is committed this step (clipped to [0, 1])."""
    p = (a_s - (1.0 - sigma_masked) * a_t) / jnp.maximum(1.0 - a_t, 1e-30)
    return jnp.clip(jnp.where(a_t < 1, p, 1.0), 0.0, 1.0)
