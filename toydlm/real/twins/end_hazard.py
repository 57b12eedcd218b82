"""The end-of-answer hazard in AR order, teacher-forced: at each response position, how likely a student
is to end its answer there, given the true prefix with every later position masked (the state AR-order
decoding is in). Read at the teacher's own answers, it says whether a student ends where the teacher
ended or runs past it, without sampling.

For a causal AR student the masked suffix is invisible, so its hazard is its next-token end probability.
For an MDLM student decoded in AR order, the end must be predicted with the whole rest of the canvas
masked, a state random-rate masking shows it rarely: the hazard is where a length drift would start.
"""

from __future__ import annotations

import numpy as np

from toydlm.real.twins.swap import end_lengths
from toydlm.real.twins.vocab import END_IDS, MASK_ID


def ar_order_canvases(row: np.ndarray, prompt_len: int, upto: int, mask_id: int = MASK_ID) -> np.ndarray:
    """Canvases [upto + 1, P + L]: the j-th keeps the prompt and the first j response tokens and masks
    every later position."""
    out = np.repeat(row[None], upto + 1, axis=0)
    resp = out[:, prompt_len:]
    resp[np.arange(resp.shape[1])[None, :] >= np.arange(upto + 1)[:, None]] = mask_id
    return out


def end_probabilities(denoiser, canvases: np.ndarray, prompt_len: int, end_ids: tuple[int, ...] = END_IDS,
                      batch: int = 64) -> np.ndarray:
    """P(an end token at response position j | canvas j) for the j-th canvas: its first masked position."""
    import jax
    import jax.numpy as jnp

    out = []
    for s in range(0, len(canvases), batch):
        chunk = canvases[s:s + batch]
        j = prompt_len + _masked_from(chunk, prompt_len)
        logits = denoiser(jnp.asarray(chunk)).logits[np.arange(len(chunk)), j]
        probs = jax.nn.softmax(logits.astype(jnp.float32), axis=-1)
        out.append(np.asarray(probs[:, list(end_ids)].sum(-1)))
    return np.concatenate(out) if out else np.zeros(0)


def _masked_from(canvases: np.ndarray, prompt_len: int) -> np.ndarray:
    """Per canvas, the response index of its first masked position."""
    masked = canvases[:, prompt_len:] == MASK_ID
    return np.where(masked.any(1), masked.argmax(1), masked.shape[1])


def row_hazards(denoiser, rows: np.ndarray, prompt_len: int, batch: int = 64) -> list[np.ndarray]:
    """Per row, the end probability at response positions 0..e (e: its first end; up to the canvas's last
    position when it has none)."""
    lengths = np.minimum(end_lengths(rows[:, prompt_len:])[0], rows.shape[1] - prompt_len - 1).tolist()
    canvases = np.concatenate([ar_order_canvases(r, prompt_len, e) for r, e in zip(rows, lengths)])
    flat = end_probabilities(denoiser, canvases, prompt_len, END_IDS, batch)
    return np.split(flat, np.cumsum([e + 1 for e in lengths])[:-1])


def hazard_summary(rows: np.ndarray, hazards: list[np.ndarray], prompt_len: int) -> dict:
    """The teacher-forced length log-likelihood, split in two: ending where the teacher's answer ended
    (rows that end), and not ending before it (every row)."""
    eps = 1e-12
    ends, survive, at_end, before = [], [], [], []
    for e, ended, h in zip(*end_lengths(rows[:, prompt_len:]), hazards):
        pre = h[:e] if ended else h
        survive.append(float(np.log1p(-np.minimum(pre, 1 - eps)).sum()))
        before.extend(pre.tolist())
        if ended:
            ends.append(float(np.log(max(h[e], eps))))
            at_end.append(float(h[e]))
    return {"n_rows": len(rows), "n_ended": len(ends),
            "end_logprob": float(np.mean(ends)) if ends else None,
            "survival_logprob": float(np.mean(survive)),
            "length_nll": -(float(np.sum(ends)) + float(np.sum(survive))) / len(rows),
            "mean_hazard_at_end": float(np.mean(at_end)) if at_end else None,
            "mean_hazard_before_end": float(np.mean(before)) if before else None}
