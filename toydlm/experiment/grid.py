"""Measure an arbitrary list of cells (sweeps, recovery curves) on a run preset's models.

The experiment scripts that go beyond `toydlm run`'s own grid (steps, block length, sigma and
temperature sweeps; ASR against prefill length and injection step) use this: the same cached
models, the same per-cell measurement as the run, and the same theory (Model v2, `oracle_sim`, on
the oracle plus the learned model's representation-error offset fitted on the source run's fit
cells, so nothing here is fitted on the grid's own measurements). Resumable: each cell is written
atomically to `out_dir/cells/` and never recomputed (a record from before the `oracle_sim` name,
which stored its prediction under `v2`, is recomputed).
"""

from __future__ import annotations

from pathlib import Path

from tqdm import tqdm

from toydlm.errors import UserError
from toydlm.experiment.cells import Cell, stable_seed
from toydlm.experiment.metrics import measure_cell
from toydlm.experiment.models import ensure_model
from toydlm.experiment.predict import offset_for, oracle_sim_predict
from toydlm.experiment.presets import RunPreset
from toydlm.grammar import grammar_oracle, load_grammar
from toydlm.io import atomic_write_json, read_json_or_none, to_jsonable


def load_denoisers(cells: list[Cell], preset: RunPreset, cache: Path, progress: bool = True) -> dict:
    """The denoiser of every (grammar, model, seed) the cells use: cached learned models, oracles."""
    out = {}
    for c in cells:
        k = (c.grammar, c.model, c.seed)
        if k in out:
            continue
        g = load_grammar(c.grammar)
        if c.model == "oracle":
            out[k] = grammar_oracle(g)
        else:
            if c.grammar not in preset.learned_grammars:
                raise UserError(f"preset {preset.name!r} trains no model on grammar {c.grammar!r}")
            out[k], _ = ensure_model(c.model, preset.model_preset, preset.train_steps.get(c.model), c.seed, g,
                                     cache, progress)
    return out


def measure_grid(cells: list[Cell], out_dir: str | Path, preset: RunPreset, n: int, seed: int, cache: Path,
                 oracle_sim_n: int = 800, offsets: dict | None = None, progress: bool = True) -> list[dict]:
    """One row per cell: its measurements (no curves) and the theory's prediction for it.

    `offsets` are a source run's fitted model offsets (`summary["model_offsets"]`); without them
    learned-model predictions are the oracle's (offset 0), which the row records.
    """
    out_dir = Path(out_dir)
    (out_dir / "cells").mkdir(parents=True, exist_ok=True)
    dens = load_denoisers(cells, preset, cache, progress)
    grammars = {c.grammar: load_grammar(c.grammar) for c in cells}
    rows = []
    for c in tqdm(cells, desc="cells", disable=not progress, unit="cell"):
        path = out_dir / "cells" / f"{c.key}.json"
        rec = read_json_or_none(path, "cell result")
        if rec is None or rec.get("cell", {}).get("key") != c.key or rec.get("n") != n or "oracle_sim" not in rec:
            g = grammars[c.grammar]
            m = measure_cell(c, g, dens[(c.grammar, c.model, c.seed)], n, seed * 1_000_003 + stable_seed(c.key))
            m.pop("curves", None)
            pred = oracle_sim_predict(c, g, oracle_sim_n, seed=seed * 7 + stable_seed(c.key))
            rec = to_jsonable({"cell": c.to_dict(), "n": n, "metrics": m, "oracle_sim": pred})
            atomic_write_json(path, rec)
        theory = _prediction_columns(rec["oracle_sim"], offset_for(c, offsets or {}))
        rows.append({**rec["cell"], **rec["metrics"], **theory})
    return rows


def _prediction_columns(sim: dict, offset: float) -> dict:
    """A grid row's theory columns: oracle_sim's rates, its ASR shifted by the learned model's offset."""
    return {"pred_asr": min(1.0, max(0.0, sim["asr"] + offset)), "pred_asr_oracle_sim": sim["asr"],
            "pred_asr_mc_se": sim["asr_se"], "pred_hrr": sim["hrr"], "pred_frr": sim["frr"],
            "pred_refusal_rate": sim["refusal_rate"], "pred_mean_length": sim["mean_length"],
            "model_offset": offset}
