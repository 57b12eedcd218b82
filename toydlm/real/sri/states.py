"""Per-step pooled states of an AR generation, as the study's AR wrapper pools them.

The study's signal at step t (t = 1..T) pools the final-layer states (after the final norm) that
*produce* response tokens 1..t: the last prompt token's state, then the states of tokens 1..t-1.
The bridge's KV-cached trace records, per step index i, `hidden_mean` (i = 0: the last prompt
token's state) and `hidden_committed` (the mean state of the first i committed tokens, held at its
last value once a row has ended). The producing-state mean follows from the two exactly.
"""

from __future__ import annotations

import numpy as np

from toydlm.errors import UserError


def producing_states(hidden_mean_TND: np.ndarray, hidden_committed_TND: np.ndarray,
                     lengths: np.ndarray | None = None) -> np.ndarray:
    """`[N, T, D]`: at step t (1-based) the mean of the last prompt state and the first t-1 token states.
    With `lengths` (tokens before each row's end token), a row's pooled state is held once the state that
    produced its end token is in: the study pads an ended generation with its last state."""
    hm, hc = np.asarray(hidden_mean_TND, np.float64), np.asarray(hidden_committed_TND, np.float64)
    if hm.ndim != 3 or hm.shape != hc.shape:
        raise UserError(f"hidden_mean and hidden_committed must be [T, N, D] of one shape, got {hm.shape} and "
                        f"{hc.shape}")
    T = hm.shape[0]
    h0 = hm[0]  # the last prompt token's state
    out = np.empty((hm.shape[1], T, hm.shape[2]))
    out[:, 0] = h0
    for t in range(1, T):  # step t+1 pools h0 and the first t token states, whose mean is hc[t]
        out[:, t] = (h0 + t * hc[t]) / (t + 1)
    if lengths is not None:
        n = np.asarray(lengths, int)
        if n.shape != (out.shape[0],):
            raise UserError(f"lengths must have one entry per row ({out.shape[0]}), got shape {n.shape}")
        for r in np.flatnonzero(n < T - 1):
            out[r, n[r] + 1:] = out[r, n[r]]
    return out


def trace_states(trace, lengths: np.ndarray) -> np.ndarray:
    """`[N, T, D]` producing-state means of a KV-cached bridge trace sampled with `record_hidden`."""
    if "hidden_mean" not in trace or "hidden_committed" not in trace:
        raise UserError("the trace has no hidden states: sample it with record_hidden=True")
    return producing_states(trace["hidden_mean"], trace["hidden_committed"], lengths)
