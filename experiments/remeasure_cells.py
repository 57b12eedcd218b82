"""Re-measure stored cells of a `toydlm run` summary with today's code: the bit-for-bit check of a refactor.

Trains (or reads from `$TOYDLM_CACHE`) the run preset's models exactly as `toydlm run` does,
measures the chosen cells with the run's own seeds, and compares every measured value with the
stored one. Exit status 1 when any value differs. The default preset's models take about 4 minutes
to train on 2 cores when they are not cached.

  python experiments/remeasure_cells.py --run results/default-s1 \
      --cell default__mdlm-s0__low_confidence_T16__temp1__wrapper-prefix
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from toydlm.hostdevices import split_host_cpu  # noqa: E402

DEFAULT_CELLS = ("default__mdlm-s0__low_confidence_T16__temp1__wrapper-prefix",
                 "default__ar-s0__ar__temp1__wrapper-hypothetical",
                 "default__oracle__entropy_T16__temp1__prefill-2")
MEASURED = ("n", "asr", "refusal_rate", "valid_rate", "mean_length", "eos_first_share", "hrr", "frr",
            "n_ever_pending", "remask_events_per_seq")


def parse(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", default="results/default-s1", help="folder with the stored summary.json")
    ap.add_argument("--cell", action="append", help=f"cell key, repeatable (default: {', '.join(DEFAULT_CELLS)})")
    return ap.parse_args(argv)


def remeasure(summary: dict, keys: list[str]) -> list[dict]:
    """Each chosen cell measured again: its stored and fresh values side by side."""
    from toydlm.experiment.cells import enumerate_cells, stable_seed
    from toydlm.experiment.metrics import measure_cell
    from toydlm.experiment.presets import get_preset
    from toydlm.experiment.runner import cell_n, model_stage
    from toydlm.grammar import load_grammar
    from toydlm.io import to_jsonable

    p, seed = get_preset(summary["config"]["preset"]), summary["seed"]
    cells = {c.key: c for c in enumerate_cells(p)}
    unknown = [k for k in keys if k not in cells]
    if unknown:
        sys.exit(f"not cells of preset {p.name}: {', '.join(unknown)}")
    stored = stored_cells(summary)
    grammars = {g: load_grammar(g) for g in p.grammars}
    denoisers, _ = model_stage(p, grammars, progress=True)
    rows = []
    for k in keys:
        c = cells[k]
        fresh = measure_cell(c, grammars[c.grammar], denoisers[(c.grammar, c.model, c.seed)], cell_n(p, c),
                             seed * 1_000_003 + stable_seed(c.attack))
        kept = [m for m in MEASURED if m in stored[k]]  # a pooled cell keeps fewer values per seed
        rows.append({"key": k, "stored": {m: stored[k][m] for m in kept},
                     "fresh": {m: to_jsonable(fresh.get(m)) for m in kept}})  # NaN -> null, as stored
    return rows


def stored_cells(summary: dict) -> dict[str, dict]:
    """Every stored cell by key: oracle rows as they are, and each training seed's entry of a pooled row."""
    out = {}
    for c in summary["cells"]:
        out[c["key"]] = c
        for e in c.get("per_seed") or []:
            out[e["key"]] = e
    return out


def main(argv=None) -> int:
    args = parse(argv)
    summary = json.loads((Path(args.run) / "summary.json").read_text())
    split_host_cpu()  # the same two host devices as `toydlm run`, before JAX starts
    rows = remeasure(summary, args.cell or list(DEFAULT_CELLS))
    same = True
    for r in rows:
        diff = [m for m in r["stored"] if r["stored"][m] != r["fresh"][m]]
        same &= not diff
        print(f"{r['key']}: {'identical' if not diff else 'DIFFERS in ' + ', '.join(diff)}  "
              f"(asr stored {r['stored']['asr']}, fresh {r['fresh']['asr']})")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
