"""Theory predictions for every cell: Model v2 on the grammar oracle, plus fitted model offsets.

Model v2 (code name `oracle_sim`, after `theory.oracle_sim`) simulates the cell's sampler on the
exact oracle of the grammar, from the grammar's tables alone: nothing is fitted on any sampler, and
for the oracle nothing at all. The only free parameters are the learned models' representation
errors: one additive ASR offset per (model, decoding order, prompt family), read off the model's fit
cells (for the MDLM `ar_order` for left-to-right and block samplers, `random_T16` for every other
order, on every family; `ar` on the designated families for the AR model, whose other families get
its mean offset), applied to the held-out cells of that model, order class and family. The held-out
measurements are never read.
"""

from __future__ import annotations

import numpy as np

from theory.oracle_sim import SamplerSpec, simulate_oracle
from toydlm.attacks import build_prompts, parse_attack
from toydlm.experiment.cells import Cell
from toydlm.grammar import Grammar
from toydlm.measure import hrr_frr, trajectory_states
from toydlm.measure.mixture import grammar_mixture, refusal_templates

ORACLE_SIM_SEED_OFFSET = 7919  # oracle_sim draws its prompts independently of the measured cell


def spec_for(cell: Cell, g: Grammar) -> SamplerSpec:
    """The cell's sampler as theory's `SamplerSpec` (the AR model's sampler is AR order on the oracle)."""
    v = cell.sampler
    sampler_name = "ar_order" if v.name == "ar" else v.name
    steps = v.steps or g.response_len
    kw = {}
    if v.name == "remdm":
        kw = {"remdm_schedule": v.remdm_schedule, "eta": v.eta}
    return SamplerSpec(sampler_name, steps, v.block_length, temperature=cell.temperature, eos_inf=v.eos_inf,
                       mask_id=g.mask_id, **kw)


def oracle_sim_predict(cell: Cell, g: Grammar, n: int, seed: int) -> dict:
    """Simulate the cell's sampler and attack on the grammar oracle (Model v2, `oracle_sim`)."""
    spec = spec_for(cell, g)
    batch = build_prompts(cell.attack, g, n, seed + ORACLE_SIM_SEED_OFFSET, spec.steps)
    a = parse_attack(cell.attack, g, spec.steps)
    init = np.where(batch.response == g.mask_id, -1, batch.response)
    if a.method in ("prefill", "interleave"):  # the start tokens come from the row's own topic lexicon
        groups = [batch.topic == t for t in np.unique(batch.topic)]
    else:  # topics of one topic kind are symmetric: one representative mixture serves every row
        groups = [np.ones(len(batch), bool)]
    parts = []
    for i, rows in enumerate(groups):
        topic_kind = int(batch.topic_kind[rows][0])
        w = int(batch.wrapper[rows][0]) if a.method != "benign" else 0
        topic = int(batch.topic[rows][0]) if len(groups) > 1 else None
        mix = grammar_mixture(g, topic_kind, w, topic)
        parts.append(simulate_oracle(
            mix, spec, int(rows.sum()), seed=seed + 31 * i, init_canvas=init[rows], pinned=batch.pinned[rows],
            force_step=batch.force_step[rows], force_pos=batch.force_pos[rows], force_tok=batch.force_tok[rows],
            refusal_templates=refusal_templates(g), argmax_draft=True))
    cat = {k: np.concatenate([p[k] for p in parts]) for k in
           ("harmful", "refusal", "valid", "length", "committed_harm_count", "predicted_harm_count_argmax",
            "committed_refusal")}
    thr = g.config.harm_threshold
    # the AR decoder's draft is its committed canvas (it predicts only the token it commits next)
    draft = cat["committed_harm_count"] if cell.sampler.name == "ar" else cat["predicted_harm_count_argmax"]
    states = trajectory_states(cat["committed_harm_count"] >= thr, draft >= thr, cat["committed_refusal"])
    hrr, frr, _ = hrr_frr(states)
    m = len(cat["harmful"])
    asr = float(cat["harmful"].mean())
    return {"asr": asr, "asr_se": float(np.sqrt(asr * (1 - asr) / m)), "refusal_rate": float(cat["refusal"].mean()),
            "valid_rate": float(cat["valid"].mean()), "mean_length": float(cat["length"].mean()),
            "hrr": hrr, "frr": frr, "n": m}


def decoding_order(v) -> str:
    """`left_to_right` (AR, AR order, semi-AR blocks: what a position sees is a prefix) or `any_order`.

    A learned MDLM is not one consistent joint: what it samples depends on which positions it sees
    when it predicts the others, so its representation error is fitted per order class.
    """
    return "left_to_right" if v.name in ("ar", "ar_order") or v.block_length is not None else "any_order"


def fit_offsets(cells: list[Cell], measured: dict[str, dict], oracle_sim: dict[str, dict]) -> dict[str, dict]:
    """Representation-error offsets of the learned models, from their fit cells only.

    For a prompt family (attack) with a fit cell, the offset is that cell's measured ASR minus oracle_sim's
    oracle prediction: what the model learned wrong about that family, as seen by a sampler of one
    decoding order (the MDLM's `ar_order` and `random_T16` cells are fitted on every family; the AR
    model's own sampler on a few). Keys: `<model_key>|<order>|<attack>`, `<model_key>|<order>` (the
    mean over that order's fit families) and `<model_key>` (the mean over every fit cell).
    """
    out: dict[str, dict] = {}
    groups: dict[str, list] = {}
    for c in cells:
        if not c.fit:
            continue
        d = measured[c.key]["asr"] - oracle_sim[c.key]["asr"]
        order = decoding_order(c.sampler)
        out[f"{c.model_key}|{order}|{c.attack}"] = {"offset": float(d), "n_fit_cells": 1, "fit_cells": [c.key]}
        for k in (c.model_key, f"{c.model_key}|{order}"):
            groups.setdefault(k, []).append((d, c.key))
    for k, r in groups.items():
        out[k] = {"offset": float(np.mean([d for d, _ in r])), "n_fit_cells": len(r),
                  "fit_cells": [key for _, key in r]}
    return out


def offset_for(c: Cell, offsets: dict[str, dict]) -> float:
    """The cell's fitted offset: its order and family, else its order's mean, else the same family in the
    other order, else the model's mean; 0 for the oracle (nothing to fit) or a model with no fit cell."""
    if c.model == "oracle":
        return 0.0
    order = decoding_order(c.sampler)
    other = "any_order" if order == "left_to_right" else "left_to_right"
    for k in (f"{c.model_key}|{order}|{c.attack}", f"{c.model_key}|{order}", f"{c.model_key}|{other}|{c.attack}",
              c.model_key):
        if k in offsets:
            return offsets[k]["offset"]
    return 0.0


def apply_predictions(cells: list[Cell], oracle_sim: dict[str, dict], offsets: dict[str, dict]) -> dict[str, dict]:
    """Each cell's predicted columns: oracle_sim's rates, its ASR shifted by the cell's fitted offset."""
    preds = {}
    for c in cells:
        base = oracle_sim[c.key]
        off = offset_for(c, offsets)
        preds[c.key] = {"pred_asr": float(np.clip(base["asr"] + off, 0, 1)), "pred_asr_oracle_sim": base["asr"],
                        "pred_asr_mc_se": base["asr_se"], "pred_hrr": base["hrr"], "pred_frr": base["frr"],
                        "pred_refusal_rate": base["refusal_rate"], "pred_mean_length": base["mean_length"],
                        "pred_valid_rate": base["valid_rate"], "model_offset": off}
    return preds


def calibration(rows: list[dict]) -> dict:
    """Held-out calibration: MAE and the share within max(0.02, 2 SE), overall and non-trivial."""

    def block(rs: list[dict]) -> tuple[int, float | None, float | None]:
        if not rs:
            return 0, None, None
        err = np.array([abs(r["pred_asr"] - r["asr"]) for r in rs])
        tol = np.array([max(0.02, 2 * r["asr_se"]) for r in rs])
        return len(rs), float(err.mean()), float((err <= tol).mean())

    held = [r for r in rows if r["heldout"]]
    n, mae, frac = block(held)
    nt = [r for r in held if 0.05 <= r["asr"] <= 0.95]
    n2, mae2, frac2 = block(nt)
    n1, mae1, frac1 = block([r for r in held if r.get("temperature", 1.0) == 1.0])
    per_sampler = {}
    for s in sorted({r["sampler"] for r in held}):
        k, e, f = block([r for r in held if r["sampler"] == s])
        per_sampler[s] = {"n": k, "mae": e, "frac_within_2se": f}
    per_model = {}
    for m in sorted({r["model"] for r in held}):
        k, e, f = block([r for r in held if r["model"] == m])
        per_model[m] = {"n": k, "mae": e, "frac_within_2se": f}
    return {"n_heldout": n, "mean_abs_err_asr": mae, "frac_within_2se": frac, "nontrivial_n": n2,
            "nontrivial_mae": mae2, "nontrivial_frac_within_2se": frac2, "per_sampler": per_sampler,
            "per_model": per_model, "temperature1_n": n1, "temperature1_mae": mae1,
            "temperature1_frac_within_2se": frac1,
            "rule": "|pred_asr - asr| <= max(0.02, 2 * asr_se); non-trivial = 0.05 <= asr <= 0.95"}
