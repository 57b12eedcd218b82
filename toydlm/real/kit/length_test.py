"""The length test of the toy finding on a real AR model: how much refusal rises, and ASR falls, when a
response is conditioned on ending early.

A sampler that commits end-of-sequence first draws, for a model with this distribution, from the
responses conditioned on ending early; P(refusal | length ≤ k) is that quantity, estimated here by
rejection (every sample whose response ended within k tokens), with a bootstrap over prompts
(several samples of one prompt are not independent). Truncated samples (no end token within the cap)
never count as ending within k.
"""

from __future__ import annotations

import numpy as np

DEFAULT_KS = (8, 12, 16, 24, 32, 48, 64, 96)


def conditional_rates(length, ended, refusal, harmful, k: int) -> dict:
    """Rates among samples that ended within k tokens, and overall (`harmful` None: no harm verdicts, the
    ASR fields are None)."""
    length, ended, refusal = np.asarray(length), np.asarray(ended, bool), np.asarray(refusal, bool)
    harm = None if harmful is None else np.asarray(harmful, bool)
    sel = ended & (length <= k)
    n = int(sel.sum())
    return {"k": int(k), "n": n, "n_total": int(len(length)),
            "p_len_le_k": float(sel.mean()) if len(sel) else None,
            "p_refusal_given_len_le_k": float(refusal[sel].mean()) if n else None,
            "p_refusal": float(refusal.mean()) if len(refusal) else None,
            "asr_given_len_le_k": float(harm[sel].mean()) if n and harm is not None else None,
            "asr": float(harm.mean()) if harm is not None and len(harm) else None}


def _prompt_resamples(prompt: np.ndarray, n_boot: int, seed: int):
    """Index arrays of cluster-bootstrap resamples: prompts drawn with replacement, all their samples kept."""
    rng = np.random.default_rng(seed)
    ids = np.unique(prompt)
    rows = {p: np.flatnonzero(prompt == p) for p in ids}
    for _ in range(n_boot):
        yield np.concatenate([rows[p] for p in rng.choice(ids, len(ids))])


def length_test(prompt, length, ended, refusal, harmful, ks=DEFAULT_KS, n_boot: int = 1000,
                seed: int = 0) -> list[dict]:
    """`conditional_rates` for every k with 95% prompt-bootstrap CIs of the two conditional rates
    (`harmful` None: refusal only)."""
    prompt = np.asarray(prompt)
    arrs = [np.asarray(a) for a in (length, ended, refusal)]
    harm = None if harmful is None else np.asarray(harmful)
    out = [conditional_rates(*arrs, harm, k) for k in ks]
    boots = {k: ([], []) for k in ks}
    for idx in _prompt_resamples(prompt, n_boot, seed):
        for k in ks:
            r = conditional_rates(*(a[idx] for a in arrs), None if harm is None else harm[idx], k)
            if r["n"]:
                boots[k][0].append(r["p_refusal_given_len_le_k"])
                if harm is not None:
                    boots[k][1].append(r["asr_given_len_le_k"])
    for row in out:
        ref, asr = boots[row["k"]]
        row["p_refusal_given_len_le_k_ci95"] = _ci(ref)
        row["asr_given_len_le_k_ci95"] = _ci(asr)
        row["n_boot"], row["boot_seed"] = n_boot, seed
    return out


def _ci(xs: list[float]) -> list[float] | None:
    return [float(np.quantile(xs, 0.025)), float(np.quantile(xs, 0.975))] if xs else None


def length_premise(length, ended, refusal) -> dict:
    """Length distributions of refusals and of compliances. Quantiles are of min(length, cap) over all
    responses, so a quantile equal to the cap means "truncated, at least the cap"."""
    length, ended, refusal = np.asarray(length), np.asarray(ended, bool), np.asarray(refusal, bool)

    def summary(sel):
        x = length[sel & ended]
        q = np.quantile(length[sel], [0.1, 0.25, 0.5, 0.75, 0.9]).tolist() if sel.any() else None
        return {"n": int(sel.sum()), "n_truncated": int((sel & ~ended).sum()),
                "truncated_share": float((sel & ~ended).mean() / sel.mean()) if sel.any() else None,
                "mean_len_ended": float(x.mean()) if len(x) else None,
                "mean_len_all": float(length[sel].mean()) if sel.any() else None, "quantiles_10_25_50_75_90": q}

    return {"refusal": summary(refusal), "compliance": summary(~refusal)}
