"""Figures for one trace: a decoding-order heatmap and step-wise refusal/harm trajectories."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import ListedColormap  # noqa: E402

from toydlm.errors import UserError
from toydlm.io import atomic_write_bytes  # noqa: E402
from toydlm.trace import Trace  # noqa: E402

# cell states of the per-row heatmap
STATES = ("masked", "committed", "pinned", "new: other", "new: EOS", "new: harm", "new: refusal", "re-masked")
COLORS = ("#ffffff", "#d9d9d9", "#404040", "#6baed6", "#fdae6b", "#de2d26", "#31a354", "#9e9ac8")


def row_states(trace: Trace, index: int, grammar=None) -> np.ndarray:
    """`[T, L]` cell state codes (indices into STATES) for one batch row."""
    r = trace.row(index)
    canvas, com, rem, pinned = r["canvas"], r["committed"], r["remasked"], r["pinned"]
    mask_id, eos = int(trace.meta.get("mask_id", 1)), int(trace.meta.get("eos_id", 0))
    st = np.where(canvas == mask_id, 0, 1)
    st = np.where(pinned[None] & (canvas != mask_id), 2, st)
    new = np.full(canvas.shape, 3)
    if grammar is not None:
        harm_tok = np.asarray(grammar.is_harm_token)[canvas]
        ref_ids = np.unique(np.array(grammar.vocab.refusal_templates))
        new = np.where(np.isin(canvas, ref_ids), 6, new)
        new = np.where(harm_tok, 5, new)
    new = np.where(canvas == eos, 4, new)
    st = np.where(com, new, st)
    return np.where(rem, 7, st)


def plot_trace(trace: Trace, index: int = 0, path: str | Path | None = None, grammar=None):
    """Three panels: row `index`'s canvas per step, the batch's commit heatmap, trajectories."""
    if not 0 <= index < trace.n:
        raise UserError(f"--index {index} is out of range (the trace has {trace.n} rows)")
    T, L = trace.steps, trace.final_response.shape[-1]
    fig, axes = plt.subplots(1, 3, figsize=(16, max(4.5, 0.28 * T + 2.0)),
                             gridspec_kw={"width_ratios": [1.3, 1.0, 1.1]})
    ax = axes[0]
    ax.imshow(row_states(trace, index, grammar), cmap=ListedColormap(COLORS), vmin=-0.5,
              vmax=len(STATES) - 0.5, aspect="auto", interpolation="nearest")
    if grammar is not None and L * T <= 1200:
        canvas = trace.row(index)["canvas"]
        for t in range(T):
            for j in range(L):
                if canvas[t, j] != int(trace.meta.get("mask_id", 1)):
                    ax.text(j, t, grammar.vocab.names[canvas[t, j]][:5], ha="center", va="center", fontsize=5)
    ax.set(xlabel="response position", ylabel="step", title=f"row {index}: canvas after each step")
    handles = [plt.Rectangle((0, 0), 1, 1, fc=c, ec="k", lw=0.3) for c in COLORS]
    ax.legend(handles, STATES, fontsize=6, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=4)

    ax = axes[1]
    im = ax.imshow(trace["committed"].mean(1), aspect="auto", cmap="viridis", interpolation="nearest")
    ax.set(xlabel="response position", ylabel="step", title=f"decoding order: P(commit at step), n={trace.n}")
    fig.colorbar(im, ax=ax, fraction=0.046)

    ax = axes[2]
    steps = np.arange(1, T + 1)
    series = [("committed_refusal", "committed refusal", "#31a354"),
              ("committed_harm", "committed harm", "#de2d26"),
              ("predicted_harm_argmax", "predicted harm (argmax x̂₀)", "#fb6a4a"),
              ("predicted_harm_sample", "predicted harm (sampled x̂₀)", "#fcbba1")]
    for key, label, color in series:
        if key in trace:
            ax.plot(steps, trace[key].mean(1), label=label, color=color)
    ax.plot(steps, (trace["n_eos"] > 0).mean(1), label="some EOS committed", color="#fdae6b", ls="--")
    masked = (trace["canvas"] == int(trace.meta.get("mask_id", 1))).mean((1, 2))
    ax.plot(steps, masked, label="masked fraction", color="#969696", ls=":")
    ax.set(xlabel="step", ylabel="fraction of rows", ylim=(-0.02, 1.02),
           title="step-wise verdicts (batch mean)")
    ax.legend(fontsize=7)
    s = trace.meta.get("sampler", {})
    fig.suptitle(f"{s.get('name', '?')} (steps {s.get('steps')}, block {s.get('block_length')}, "
                 f"temperature {s.get('temperature')}), attack {trace.meta.get('attack')}, "
                 f"model {trace.meta.get('model')}", fontsize=10)
    fig.tight_layout()
    if path is not None:
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=110)
        atomic_write_bytes(path, buf.getvalue())
        plt.close(fig)
    return fig
