"""Everything stored for one checkpoint's real-SRI run, read once: anchors (cached), each group's SRI
signal, first-step state, keyword refusals, judged harm and detector scores, attack chunks merged.

An attack's cells of 100 prompts are concatenated in prompt order. Its judged harm counts only when
every stored chunk has it, so labels and signals always line up; a detector's scores are NaN in the
chunks it has not scored yet (the slow guard model is run in priority order).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from toydlm.bridge.judges import keyword_refusal
from toydlm.errors import UserError
from toydlm.real.kit.judged import judged_verdicts
from toydlm.real.kit.store import CellStore
from toydlm.real.sri.anchors import anchor_path, anchor_spec, cached_anchors, centres_from
from toydlm.real.sri.collect import POOLING, load_signal_cell, signal_spec
from toydlm.real.sri.detectors import PREFIX_STEPS, load_scores
from toydlm.real.sri.plan import STEPS, anchor_cells, attack_cells, attack_of, guard_cells
from toydlm.sri.metrics import auroc
from toydlm.sri.signal import sri_signal

DETECTORS = ("perplexity", "self_examine", "guard_model")


def refusals(rec: dict) -> np.ndarray:
    return np.asarray([keyword_refusal(s["text"]) for s in rec["samples"]], bool)


def lengths(rec: dict) -> np.ndarray:
    """Tokens before each row's end token (the generation length where it did not end)."""
    return np.asarray([s["length"] for s in rec["samples"]], int)


@dataclass
class Loaded:
    """One checkpoint's stored run, by group (an attack name, or a guard split such as `benign_eval`)."""

    model: str
    sha: str
    compliance: np.ndarray  # [T, D] anchor
    refusal: np.ndarray  # [T, D] anchor
    anchors: dict
    states: dict[str, np.ndarray] = field(default_factory=dict)  # [N, T, D]
    records: dict[str, list[dict]] = field(default_factory=dict)  # the cells' records, chunk order
    paths: dict[str, list[Path]] = field(default_factory=dict)
    harmful: dict[str, np.ndarray] = field(default_factory=dict)  # judged successes; only fully judged groups
    scores: dict[tuple[str, str, int | None], np.ndarray] = field(default_factory=dict)  # (detector, group, step)

    def signal(self, group: str) -> np.ndarray:
        return sri_signal(self.states[group], self.compliance, self.refusal)

    def refused(self, group: str) -> np.ndarray:
        return np.concatenate([refusals(r) for r in self.records[group]])

    def samples(self, group: str) -> list[dict]:
        return [s for r in self.records[group] for s in r["samples"]]

    def lengths(self, group: str) -> np.ndarray:
        return np.concatenate([lengths(r) for r in self.records[group]])


def anchor_records(store: CellStore, model: str, sha: str) -> tuple[tuple[dict, np.ndarray], tuple[dict, np.ndarray]]:
    """The stored harmless and harmful anchor cells, each (record, states `[N, T, D]`)."""
    b, h = (load_signal_cell(store, signal_spec(p, sha, STEPS)) for p in anchor_cells())
    if b is None or h is None:
        raise UserError(f"the anchor cells of {model} are not sampled yet: run `real_sri.py signals --groups anchors`")
    return b, h


def load_anchors(store: CellStore, model: str, sha: str, work: Path) -> tuple[np.ndarray, np.ndarray, dict]:
    """(compliance anchor, refusal anchor, what they came from), through the spec-checked cache."""
    b, h = anchor_records(store, model, sha)
    b_ref, h_ref = refusals(b[0]), refusals(h[0])
    spec = anchor_spec(sha, b[0]["spec"], h[0]["spec"], POOLING)
    comp, ref, reused = cached_anchors(anchor_path(work, model), spec, lambda: centres_from(b[1], b_ref, h[1], h_ref))
    sig = lambda x: sri_signal(x, comp, ref)  # noqa: E731
    info = {"n_benign": len(b_ref), "n_benign_answered": int((~b_ref).sum()), "n_harmful": len(h_ref),
            "n_harmful_refused": int(h_ref.sum()), "reused_from_cache": reused,
            "in_sample_final_auroc": auroc(1 - sig(b[1][~b_ref])[:, -1], 1 - sig(h[1][h_ref])[:, -1])}
    return comp, ref, info


def load_run(model: str, work: Path) -> Loaded:
    """Read every stored cell of `model`'s run under `work` (the checkpoint's own folder)."""
    from toydlm.weights import checkpoint

    sha, store = checkpoint(model).sha256, CellStore(work)
    comp, ref, info = load_anchors(store, model, sha, work)
    run = Loaded(model, sha, comp, ref, info)
    for plan in attack_cells() + guard_cells():
        got = load_signal_cell(store, signal_spec(plan, sha, STEPS))
        if got is None:
            continue
        g = attack_of(plan.name)
        run.states[g] = np.concatenate([run.states[g], got[1]]) if g in run.states else got[1]
        run.records.setdefault(g, []).append(got[0])
        run.paths.setdefault(g, []).append(store.path(got[0]["spec"]))
    for g, paths in run.paths.items():
        verdicts = [judged_verdicts(p) for p in paths]
        if all(v is not None for v in verdicts):
            run.harmful[g] = np.concatenate(verdicts)
        sizes = [len(r["samples"]) for r in run.records[g]]
        for det in DETECTORS:
            for step in (None, *PREFIX_STEPS):
                got = [load_scores(p, det, step) for p in paths]
                if any(x is not None for x in got):  # NaN where a cell is not scored yet
                    run.scores[(det, g, step)] = np.concatenate(
                        [np.full(n, np.nan) if x is None else x for x, n in zip(got, sizes)])
    return run
