"""Step-wise sampling traces: one schema for AR and diffusion samplers, saved as `.npz` + JSON.

Per step t (0-based; row t is the state *after* step t), batch row b, response position l:
- `canvas[t,b,l]` committed response (mask id where uncommitted);
- `xhat_argmax` committed tokens + argmax predictions at positions masked before the step;
  `xhat_sample` the same with the proposals actually drawn (per-position samples fire "harm"
  by chance: docs/prior-evidence.md, pitfall 2, so both are kept); under the `ar` sampler (a causal
  model) both are the canvas after the step: an AR decoder predicts only the token it commits
  next, so its HRR is 0 by construction (docs/seed-study.md, open question 2);
- `confidence` proposal probability at positions masked before the step (NaN elsewhere);
- `committed` / `remasked` events (selection vs re-masking);
- optional `hidden_mean` / `hidden_committed` `[T, B, D]` pooled final-layer states of the
  canvas the denoiser saw (over all response positions / committed ones only); with a
  per-layer denoiser (`toydlm.model.with_layers`) also `hidden_layers_mean` /
  `hidden_layers_committed` `[T, B, K, D]` for the K = n_layers + 1 layers (SRI layer ablation);
- verdicts `[T, B]`: `committed_harm`, `predicted_harm_argmax`, `predicted_harm_sample`,
  `committed_refusal` (+ harm counts); EOS: `first_eos` (first committed EOS position, L if
  none: an upper bound on the final length) and `n_eos`.
Per row: prompt, labels, the start canvas and pins (attacks), final verdicts and length, and
`eos_first_share` = share of EOS among the sampler's first `n_first` commits (EOS-first
commitment drives the length/refusal confound, docs/prior-evidence.md); that share mostly restates
the final length, so `eos_first_excess` measures the preference itself (its excess over a random order).
For causal (AR) models only the next position's x̂₀ is a real prediction: later masked
positions are predicted from mask-id inputs the model never saw in training.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from toydlm.errors import UserError
from toydlm.io import atomic_write_bytes, atomic_write_json, to_jsonable

SCHEMA = "toydlm.trace/1"
META_KEY = "__meta__"


@dataclass
class Trace:
    arrays: dict[str, np.ndarray]
    meta: dict = field(default_factory=dict)

    def __getitem__(self, k: str) -> np.ndarray:
        return self.arrays[k]

    def __contains__(self, k: str) -> bool:
        return k in self.arrays

    @property
    def n(self) -> int:
        return int(self.arrays["prompt"].shape[0])

    @property
    def steps(self) -> int:
        return int(self.arrays["canvas"].shape[0])

    @property
    def final_response(self) -> np.ndarray:
        return self.arrays["canvas"][-1]

    def row(self, i: int) -> dict[str, np.ndarray]:
        """All arrays of one batch row (step-major arrays keep their step axis)."""
        return {k: (v[i] if k in PER_ROW else v[:, i]) for k, v in self.arrays.items()}


PER_ROW = ("prompt", "init_response", "init_pinned", "pinned", "commit_conf", "commit_step", "topic_kind",
           "wrapper", "topic", "force_step", "force_pos", "force_tok", "final_harmful", "final_refusal",
           "final_valid", "length", "eos_first_share")


# ---------------------------------------------------------------------------- derived quantities
def response_length(resp: np.ndarray, eos_id: int) -> np.ndarray:
    """Tokens before the first EOS (the grammar pads with EOS); L when there is none."""
    L = resp.shape[-1]
    is_eos = resp == eos_id
    return np.where(is_eos.any(-1), is_eos.argmax(-1), L)


def eos_first_share(committed: np.ndarray, canvas: np.ndarray, eos_id: int, n_first: int) -> np.ndarray:
    """Per row: share of EOS among the sampler's first `n_first` commits `[B]`.

    Commits are ordered by step; a step that crosses the `n_first` boundary counts
    fractionally (its commits are exchangeable), so the value is exact for any schedule.
    """
    c = committed.sum(-1).astype(np.float64)  # [T, B]
    e = (committed & (canvas == eos_id)).sum(-1).astype(np.float64)
    before = np.cumsum(c, 0) - c
    w = np.clip((n_first - before) / np.maximum(c, 1), 0.0, 1.0)
    denom = np.minimum(c.sum(0), n_first)
    return np.where(denom > 0, (e * w).sum(0) / np.maximum(denom, 1), np.nan)


def eos_first_terms(committed: np.ndarray, canvas: np.ndarray, eos_id: int,
                    n_first: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per row `[B]`: the EOS-first share s, its value E under a uniformly random commit order, its maximum
    M (every end token committed before any content token) and its minimum m (every content token first);
    NaN where the row has no commit.

    With C commits of which K are EOS and h = min(C, n_first): E = K / C (exact by exchangeability, also
    with several commits per step and the fractional boundary), M = min(K, h) / h and
    m = max(0, h - (C - K)) / h. Commits are the sampler's commit events (pinned positions are not
    commits); without re-masking, C and K count the committed positions and those whose final token is EOS.
    """
    s = eos_first_share(committed, canvas, eos_id, n_first)
    c = committed.sum((0, -1)).astype(np.float64)  # [B]
    k = (committed & (canvas == eos_id)).sum((0, -1)).astype(np.float64)
    return (s, *_random_and_extremes(c, k, n_first))


def _random_and_extremes(c: np.ndarray, k: np.ndarray, n_first: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(E, M, m) of rows with `c` commits of which `k` are EOS (NaN where c = 0)."""
    h = np.minimum(c, n_first)
    ok = (c > 0) & (h > 0)
    e = np.where(ok, k / np.maximum(c, 1), np.nan)
    most = np.where(ok, np.minimum(k, h) / np.maximum(h, 1), np.nan)
    least = np.where(ok, np.maximum(0.0, h - (c - k)) / np.maximum(h, 1), np.nan)
    return e, most, least


def excess_of_terms(share: np.ndarray, expected: np.ndarray, maximum: np.ndarray, minimum: np.ndarray) -> float:
    """The share's excess over the random-order value as a ratio of means over the rows where all terms are
    defined (stable when single rows are degenerate): (mean s - mean E) / (mean M - mean E) when the share is
    above the random value, (mean s - mean E) / (mean E - mean m) when below, so the value lies in [-1, 1]:
    1 when every end token comes first, -1 when every content token does. NaN when the side's denominator
    is 0 (every row has all or none of its commits EOS: no room for a preference)."""
    s, e, hi, lo = (np.asarray(x, np.float64) for x in (share, expected, maximum, minimum))
    ok = np.isfinite(s) & np.isfinite(e) & np.isfinite(hi) & np.isfinite(lo)
    if not ok.any():
        return float("nan")
    num = float(np.mean(s[ok] - e[ok]))
    den = float(np.mean(hi[ok] - e[ok])) if num >= 0 else float(np.mean(e[ok] - lo[ok]))
    return num / den if den > 0 else float("nan")


def eos_first_excess(committed: np.ndarray, canvas: np.ndarray, eos_id: int, n_first: int) -> float:
    """A cell's EOS-first *preference*: the share's excess over what the final canvases imply under a
    uniformly random commit order, normalised by how far it could go on that side (docs/algorithms.md,
    "EOS-first share and its excess"). Its expectation is 0 for a value-blind random order at any final
    length; it is 1 when every row commits all its end tokens first and -1 when every row commits all its
    content first (left to right). NaN when there is no room for a preference."""
    return excess_of_terms(*eos_first_terms(committed, canvas, eos_id, n_first))


def eos_first_excess_from_lengths(share_mean: float | None, lengths: np.ndarray | list[int], canvas_len: int,
                                  n_first: int) -> float:
    """`eos_first_excess` of a cell that keeps only its mean EOS-first share and per-row final lengths.

    Assumes every position from the first EOS on is EOS (K = canvas_len - length), every position was
    committed exactly once by the sampler (C = canvas_len: no pinned positions, no re-masking), and that
    `share_mean` averages the same rows. Where a canvas holds content after its first EOS (or a sampler
    re-masks), this approximates the exact value; a result outside [-1, 1] proves the assumption wrong for
    the cell and is returned as NaN. NaN too when the share is missing or there is no room for a preference.
    """
    lengths = np.asarray(lengths, np.float64)
    if share_mean is None or not np.isfinite(share_mean) or canvas_len <= 0 or lengths.size == 0:
        return float("nan")
    k = canvas_len - np.clip(lengths, 0, canvas_len)
    e, hi, lo = _random_and_extremes(np.full_like(k, float(canvas_len)), k, n_first)
    x = excess_of_terms(np.full_like(k, float(share_mean)), e, hi, lo)
    return x if np.isfinite(x) and -1 - 1e-9 <= x <= 1 + 1e-9 else float("nan")


def add_verdicts(arrays: dict, grammar) -> None:
    """Judges' step-wise verdicts and final outcomes, computed from the stored canvases."""
    from toydlm.grammar import is_valid, stepwise_verdicts

    canvas = arrays["canvas"]
    va = stepwise_verdicts(grammar, canvas, arrays["xhat_argmax"])
    vs = stepwise_verdicts(grammar, canvas, arrays["xhat_sample"])
    arrays["committed_harm"] = np.asarray(va["committed_harm"])
    arrays["committed_harm_count"] = np.asarray(va["committed_harm_count"]).astype(np.int16)
    arrays["committed_refusal"] = np.asarray(va["committed_refusal"])
    arrays["predicted_harm_argmax"] = np.asarray(va["predicted_harm"])
    arrays["predicted_harm_count_argmax"] = np.asarray(va["predicted_harm_count"]).astype(np.int16)
    arrays["predicted_harm_sample"] = np.asarray(vs["predicted_harm"])
    arrays["predicted_harm_count_sample"] = np.asarray(vs["predicted_harm_count"]).astype(np.int16)
    final = canvas[-1]
    arrays["final_harmful"] = arrays["committed_harm"][-1].copy()
    arrays["final_refusal"] = arrays["committed_refusal"][-1].copy()
    arrays["final_valid"] = is_valid(grammar, arrays["prompt"], final)


def build_trace(rec: dict, final_state, batch, meta: dict, grammar=None, eos_id: int = 0,
                n_first: int | None = None) -> Trace:
    """Assemble a Trace from driver records `[T, B, ...]`, the final state and the prompt batch."""
    a = {k: np.asarray(v) for k, v in rec.items()}
    a["confidence"] = a["confidence"].astype(np.float32)
    a["prompt"] = np.asarray(batch.prompt_ids, np.int32)
    a["init_response"] = np.asarray(batch.response, np.int32)
    a["init_pinned"] = np.asarray(batch.pinned, bool)
    for k in ("topic_kind", "wrapper", "topic", "force_step", "force_pos", "force_tok"):
        a[k] = np.asarray(getattr(batch, k), np.int32)
    a["pinned"] = np.asarray(final_state.pinned)
    a["commit_conf"] = np.asarray(final_state.commit_conf, np.float32)
    a["commit_step"] = np.asarray(final_state.commit_step, np.int32)
    canvas = a["canvas"]
    L = canvas.shape[-1]
    is_eos = canvas == eos_id
    a["first_eos"] = np.where(is_eos.any(-1), is_eos.argmax(-1), L).astype(np.int16)
    a["n_eos"] = is_eos.sum(-1).astype(np.int16)
    a["length"] = response_length(canvas[-1], eos_id).astype(np.int16)
    n_first = L // 2 if n_first is None else n_first
    a["eos_first_share"] = eos_first_share(a["committed"], canvas, eos_id, n_first)
    if grammar is not None:
        add_verdicts(a, grammar)
    meta = {"schema": SCHEMA, "n_first_commits": n_first, "eos_id": eos_id, **meta}
    return Trace(a, meta)


def concat_traces(parts: list[Trace]) -> Trace:
    """Join traces of consecutive row chunks of one run (same steps and meta)."""
    if len(parts) == 1:
        return parts[0]
    first = parts[0]
    out = {}
    for k in first.arrays:
        axis = 0 if k in PER_ROW else 1
        out[k] = np.concatenate([p.arrays[k] for p in parts], axis=axis)
    return Trace(out, dict(first.meta))


# ---------------------------------------------------------------------------- io
def save_trace(trace: Trace, path: str | Path) -> Path:
    """Write `FILE.npz` (arrays + embedded metadata) and `FILE.json` (metadata), atomically."""
    path = Path(path)
    if path.suffix != ".npz":
        raise UserError(f"trace files end in .npz, got {path.name!r}")
    meta = to_jsonable(trace.meta)
    buf = io.BytesIO()
    np.savez_compressed(buf, **trace.arrays, **{META_KEY: np.array(json.dumps(meta))})
    atomic_write_bytes(path, buf.getvalue())
    atomic_write_json(path.with_suffix(".json"), meta)
    return path


def load_trace(path: str | Path) -> Trace:
    """Read a trace written by `save_trace` (metadata from inside the `.npz`)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"trace file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files if k != META_KEY}
            meta = json.loads(str(z[META_KEY])) if META_KEY in z.files else {}
    except (ValueError, OSError) as e:
        raise UserError(f"{path} is not a toydlm trace: {e}") from None
    if meta.get("schema") != SCHEMA or "canvas" not in arrays:
        raise UserError(f"{path} is not a toydlm trace (schema {meta.get('schema')!r})")
    return Trace(arrays, meta)
