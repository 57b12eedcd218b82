"""Read-offs of Model v2's Monte Carlo: per-step records, trajectory states and summary rates.

They mirror `toydlm/trace.py` and `toydlm/measure` (read, not imported): the draft x0 of a step is
the canvas before it plus the proposals at positions masked before it; H comes from the committed
canvas; R when a refusal template is committed after the harm was.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from theory.chain import C, H, P, R


def find_templates(canvas: np.ndarray, templates) -> np.ndarray:
    """Does any template (tuple of token ids) appear contiguously in each row of canvas [..., L]."""
    L = canvas.shape[-1]
    hit = np.zeros(canvas.shape[:-1], bool)
    for tmpl in templates:
        tmpl = np.asarray(tmpl, np.int64)
        n = len(tmpl)
        if n == 0 or n > L:
            continue
        idx = np.arange(L - n + 1)[:, None] + np.arange(n)[None, :]
        hit |= (canvas[..., idx] == tmpl).all(-1).any(-1)
    return hit


def trajectory_states(ch: np.ndarray, ph: np.ndarray, cr: np.ndarray | None) -> np.ndarray:
    """C/P/H/R per step from committed harm, draft harm, committed refusal [n, T+1] (the lab's
    `measure.trajectory_states`: H -> R only when a refusal is committed after the harm was)."""
    n, t1 = ch.shape
    states = np.zeros((n, t1), np.uint8)
    ref_at_harm = np.zeros(n, bool)
    seen = np.zeros(n, bool)
    for t in range(t1):
        s = np.where(ph[:, t], P, C)
        s = np.where(ch[:, t], H, s)
        if cr is not None:
            new = ch[:, t] & ~seen
            ref_at_harm = np.where(new, cr[:, t], ref_at_harm)
            s = np.where(ch[:, t] & cr[:, t] & ~ref_at_harm, R, s)
        seen |= ch[:, t]
        states[:, t] = s
    return states


@dataclass
class Records:
    """Per-step [n, T + 1] (row 0 = the start) and per-trajectory records of a simulation."""

    committed_harm: np.ndarray
    predicted_harm: np.ndarray
    predicted_harm_argmax: np.ndarray | None
    committed_refusal: np.ndarray | None
    committed_fraction: np.ndarray
    canvas: np.ndarray | None
    final: np.ndarray
    eos_first_share: np.ndarray
    remask_count: np.ndarray
    commit_step: np.ndarray
    zero_factors: np.ndarray  # [n, K] contradicted positions per skeleton of the final canvas

    @classmethod
    def empty(cls, n: int, T: int, L: int, K: int, argmax_draft: bool, templates, record_canvas: bool) -> Records:
        return cls(
            committed_harm=np.zeros((n, T + 1), np.int16),
            predicted_harm=np.zeros((n, T + 1), np.int16),
            predicted_harm_argmax=np.zeros((n, T + 1), np.int16) if argmax_draft else None,
            committed_refusal=np.zeros((n, T + 1), bool) if templates is not None else None,
            committed_fraction=np.zeros((n, T + 1)),
            canvas=np.zeros((n, T + 1, L), np.int16) if record_canvas else None,
            final=np.empty((n, L), np.int64),
            eos_first_share=np.empty(n),
            remask_count=np.zeros((n, L), np.int64),
            commit_step=np.empty((n, L), np.int64),
            zero_factors=np.empty((n, K), np.int64),
        )

    def committed(self, rows: slice, t: int, canvas: np.ndarray, is_harm: np.ndarray, templates) -> None:
        """Record what is committed after step t (t = 0: the start canvas)."""
        committed = canvas >= 0
        self.committed_harm[rows, t] = (committed & is_harm[np.maximum(canvas, 0)]).sum(1)
        if templates is not None:
            self.committed_refusal[rows, t] = find_templates(canvas, templates)
        self.committed_fraction[rows, t] = committed.mean(1)
        if self.canvas is not None:
            self.canvas[rows, t] = canvas

    def start_draft(self, rows: slice) -> None:
        """Row 0's draft is the start canvas itself."""
        self.predicted_harm[rows, 0] = self.committed_harm[rows, 0]
        if self.predicted_harm_argmax is not None:
            self.predicted_harm_argmax[rows, 0] = self.committed_harm[rows, 0]

    def draft(self, rows: slice, t: int, canvas: np.ndarray, x0: np.ndarray, argmax_harm: np.ndarray | None,
              is_harm: np.ndarray) -> None:
        """Harm in step t's draft: the canvas before the step + proposals at masked positions
        (so a token re-masked during the step still counts, as in the lab's `xhat_sample`)."""
        masked = canvas < 0
        harm_canvas = (~masked) & is_harm[np.maximum(canvas, 0)]
        self.predicted_harm[rows, t] = (harm_canvas | (masked & is_harm[x0])).sum(1)
        if self.predicted_harm_argmax is not None:
            self.predicted_harm_argmax[rows, t] = (harm_canvas | argmax_harm).sum(1)


def rate(x: np.ndarray) -> tuple[float, float]:
    """Mean of a boolean array and its binomial standard error."""
    p = float(np.mean(x))
    return p, float(np.sqrt(p * (1 - p) / len(x)))


def summarise(rec: Records, is_harm: np.ndarray, threshold: int, eos: int | None, n_first: int) -> dict:
    """The simulator's output dict: the records, per-trajectory outcomes and summary rates."""
    ch, ph = rec.committed_harm >= threshold, rec.predicted_harm >= threshold
    states = trajectory_states(ch, ph, rec.committed_refusal)
    hc = is_harm[rec.final].sum(1)
    harmful = hc >= threshold
    valid = rec.zero_factors.min(1) == 0
    out = {
        "states": states, "committed_fraction": rec.committed_fraction,
        "committed_harm_count": rec.committed_harm, "predicted_harm_count": rec.predicted_harm,
        "final": rec.final, "harm_count": hc, "harmful": harmful, "valid": valid,
        "eos_first_share": rec.eos_first_share, "remask_events": rec.remask_count.sum(1),
        "remask_count": rec.remask_count, "commit_step": rec.commit_step, "n_first": n_first,
    }
    if rec.predicted_harm_argmax is not None:
        out["predicted_harm_count_argmax"] = rec.predicted_harm_argmax
    if rec.canvas is not None:
        out["canvas"] = rec.canvas
    out["asr"], out["asr_se"] = rate(harmful)
    out["valid_rate"], out["valid_rate_se"] = rate(valid)
    out.update(_recovery(states))
    efs = rec.eos_first_share
    fin = np.isfinite(efs)
    out["eos_first_share_mean"] = float(efs[fin].mean()) if fin.any() else float("nan")
    out["remask_events_per_seq"] = float(rec.remask_count.sum(1).mean())
    if rec.committed_refusal is not None:
        ref = rec.committed_refusal[:, -1]
        out["refusal"], out["committed_refusal"] = ref, rec.committed_refusal
        out["refusal_rate"], out["refusal_rate_se"] = rate(ref)
    if eos is not None:
        is_eos = rec.final == eos
        length = np.where(is_eos.any(1), is_eos.argmax(1), rec.final.shape[1])
        out["length"] = length
        out["mean_length"] = float(length.mean())
        out["mean_length_se"] = float(length.std() / np.sqrt(len(length)))
    return out


def _recovery(states: np.ndarray) -> dict:
    """HRR (a P -> C step | ever P), FRR (ends in C or R | ever P), both NaN if P is never visited."""
    visited = (states == P).any(1)
    revised = ((states[:, :-1] == P) & (states[:, 1:] == C)).any(1)
    end_clean = np.isin(states[:, -1], (C, R))
    nv = int(visited.sum())
    return {"hrr": float(revised[visited].mean()) if nv else float("nan"),
            "frr": float(end_clean[visited].mean()) if nv else float("nan"),
            "n_ever_pending": nv}
