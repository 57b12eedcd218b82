"""Detectors to set beside SRI Guard that need no extra model run: a text-level refusal signal and a
linear probe on the first step's pooled state (the last prompt token's final-norm state).

Each detector's threshold follows SRI Guard's rule: the 99% quantile of its scores on held-out
harmless prompts. The probe is supervised: it trains on the seen families' successful jailbreaks
against harmless training prompts, and is scored on the unseen family.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

from toydlm.sri.metrics import BENIGN_QUANTILE, auroc, auroc_ci, roc_curve


def fit_probe(x: np.ndarray, y: np.ndarray, steps: int = 500, lr: float = 0.05, l2: float = 1e-3,
              seed: int = 0):
    """Logistic regression on standardised features (full-batch Adam); returns a scoring function."""
    mu, sd = x.mean(0), x.std(0) + 1e-6
    z = jnp.asarray((x - mu) / sd, jnp.float32)
    t = jnp.asarray(y, jnp.float32)
    params = {"w": 0.01 * jax.random.normal(jax.random.PRNGKey(seed), (x.shape[1],)), "b": jnp.zeros(())}
    tx = optax.adam(lr)

    def loss(p):
        logit = z @ p["w"] + p["b"]
        return optax.sigmoid_binary_cross_entropy(logit, t).mean() + l2 * (p["w"] ** 2).sum()

    @jax.jit
    def train(p):
        def step(carry, _):
            p, s = carry
            g = jax.grad(loss)(p)
            u, s = tx.update(g, s, p)
            return (optax.apply_updates(p, u), s), None

        return jax.lax.scan(step, (p, tx.init(p)), None, length=steps)[0][0]

    p = train(params)
    w, b = np.asarray(p["w"]), float(p["b"])
    return lambda xs: ((np.asarray(xs) - mu) / sd) @ w + b


def evaluate(score_threshold_set: np.ndarray, score_neg: np.ndarray, score_pos_unseen: np.ndarray) -> dict:
    """AUROC on the unseen family against held-out harmless prompts, and the benign FPR at the 99% quantile."""
    thr = float(np.quantile(score_threshold_set, BENIGN_QUANTILE))
    return {"auroc_unseen": auroc(score_neg, score_pos_unseen) if len(score_pos_unseen) else None,
            "auroc_unseen_ci95": list(auroc_ci(score_neg, score_pos_unseen)) if len(score_pos_unseen) else None,
            "fpr_benign": float((score_neg > thr).mean()), "threshold": thr,
            "roc_unseen": roc_lists(score_neg, score_pos_unseen)}


def roc_lists(neg: np.ndarray, pos: np.ndarray) -> dict | None:
    """The ROC curve as JSON lists (for the figure), or None without positives."""
    if not len(pos):
        return None
    fpr, tpr = roc_curve(neg, pos)
    return {"fpr": np.round(fpr, 4).tolist(), "tpr": np.round(tpr, 4).tolist()}


def scored(scores: dict[str, np.ndarray], success: dict[str, np.ndarray], unseen: str) -> dict:
    """A detector's scores per group (higher = jailbreak) evaluated like SRI Guard: thresholded on
    `guard_threshold`, AUROC against `benign_eval` on the unseen family, and over every family's successes."""
    pos_all = np.concatenate([scores[k][v] for k, v in success.items() if k in scores])
    pos_all = pos_all[np.isfinite(pos_all)]  # rows a slow detector has not scored yet are left out, and counted
    return evaluate(scores["guard_threshold"], scores["benign_eval"], scores[unseen][success[unseen]]) | {
        "auroc_all": auroc(scores["benign_eval"], pos_all), "n_pos_all": int(len(pos_all)),
        "n_pos_all_judged": int(sum(v.sum() for v in success.values()))}


def text_level(refused: dict[str, np.ndarray], success: dict[str, np.ndarray], unseen: str) -> dict:
    """The text-level refusal signal: a response scores 1 unless the keyword judge finds a refusal."""
    return scored({k: (~v).astype(float) for k, v in refused.items()}, success, unseen)


def fit_first_step_probe(first: dict[str, np.ndarray], success: dict[str, np.ndarray], unseen: str):
    """(score function, training counts) of the probe on step-1 states: the seen families' successes (1)
    against harmless training prompts (0)."""
    seen = [k for k in success if k != unseen]
    pos = np.concatenate([first[k][success[k]] for k in seen])
    x = np.concatenate([first["guard_train"], pos])
    y = np.r_[np.zeros(len(first["guard_train"])), np.ones(len(pos))]
    return fit_probe(x, y), {"n_train_pos": int(len(pos)), "n_train_neg": int(len(first["guard_train"])), "seen": seen}


def first_step_probe(first: dict[str, np.ndarray], success: dict[str, np.ndarray], unseen: str):
    """(evaluation on the unseen family, score function) of the probe; its AUROC over all families would be
    partly in sample, so it is not given."""
    score, counts = fit_first_step_probe(first, success, unseen)
    return evaluate(score(first["guard_threshold"]), score(first["benign_eval"]),
                    score(first[unseen][success[unseen]])) | counts, score
