"""Scoring a continuation: exactly for a causal model, by the Monte-Carlo ELBO for a diffusion model.

The diffusion estimator is the one LLaDA evaluates with (written here from its definition): a draw picks
l uniformly from 1..n, masks l of the n continuation positions uniformly, and scores
(n / l) * sum over the masked positions of log p(x_i | context, unmasked continuation). Its expectation is
the masked-diffusion ELBO, a lower bound on log p(continuation | context) (exact when n = 1). Each draw is
an unbiased sample of it; the mean over `draws` draws has standard error sd / sqrt(draws), which
`elbo_estimate` returns beside it.
"""

from __future__ import annotations

import hashlib

import numpy as np


def request_rng(seed: int, context: str, continuation: str) -> np.random.Generator:
    """A generator fixed by the run's seed and the request's text, so a score never depends on the order,
    batching or sharding of the requests."""
    h = int(hashlib.sha256(f"{context}\0{continuation}".encode()).hexdigest()[:12], 16)
    return np.random.default_rng([int(seed), h])


def mask_draws(n: int, draws: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(masks bool [draws, n], weights [draws]): l ~ U{1..n} masked positions per draw, weight n / l."""
    if n < 1:
        raise ValueError("a continuation needs at least one token to score")
    ls = rng.integers(1, n + 1, size=draws)
    masks = np.zeros((draws, n), bool)
    for d, k in enumerate(ls):
        masks[d, rng.choice(n, size=int(k), replace=False)] = True
    return masks, n / ls.astype(np.float64)


def elbo_estimate(logp: np.ndarray, masks: np.ndarray, weights: np.ndarray) -> tuple[float, float]:
    """(mean, standard error) over draws of weight * sum of the masked positions' log-probabilities."""
    per_draw = weights * np.where(masks, logp, 0.0).sum(-1)
    se = float(per_draw.std(ddof=1) / np.sqrt(len(per_draw))) if len(per_draw) > 1 else float("nan")
    return float(per_draw.mean()), se


def token_logprobs(den, ctx: list[int], cont: list[int], masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(log p of the true token [D, n], argmax == true token [D, n]) at each continuation position, with
    the positions of `masks` [D, n] replaced by the mask id (a causal model sees the whole sequence and
    ignores `masks` but for its batch size)."""
    import torch

    D, n = masks.shape
    seq = np.asarray(ctx + cont, np.int64)
    canvas = np.repeat(seq[None], D, 0)
    canvas[:, len(ctx):] = np.where(masks, den.mask_id, canvas[:, len(ctx):])
    den.attention_mask = torch.ones(canvas.shape, dtype=torch.bool)
    logits, _ = den(torch.as_tensor(canvas))
    lp = torch.log_softmax(logits[:, len(ctx):].float(), -1)
    target = torch.as_tensor(seq[len(ctx):], device=lp.device)[None].expand(D, n)
    true_lp = lp.gather(-1, target[..., None])[..., 0]
    greedy = lp.argmax(-1) == target
    return true_lp.cpu().numpy().astype(np.float64), greedy.cpu().numpy()


def score(den, ctx: list[int], cont: list[int], kind: str, draws: int, rng: np.random.Generator
          ) -> tuple[float, bool, float]:
    """(log-likelihood or its ELBO, greedy, Monte-Carlo standard error; 0 when exact).

    Greedy: a causal model's argmax is the continuation at every position; a diffusion model's argmax with
    the whole continuation masked is the continuation (one parallel step, the harness's usual reading)."""
    n = len(cont)
    if kind == "ar":
        lp, g = token_logprobs(den, ctx, cont, np.zeros((1, n), bool))
        return float(lp.sum()), bool(g.all()), 0.0
    masks, weights = mask_draws(n, draws, rng)
    lp, _ = token_logprobs(den, ctx, cont, masks)
    est, se = elbo_estimate(lp, masks, weights)
    _, g = token_logprobs(den, ctx, cont, np.ones((1, n), bool))
    return est, bool(g.all()), se
