"""Stored swap cells, read back and pooled over the MDLM students' training seeds.

One stored cell is one student (`ar`, `mdlm_s0`, ...) under one sampler on one prompt set at one length.
The report pools the MDLM seeds' cells of the same sampler, prompt set and length into one cell. Its rates
come from the pooled rows, with the SE clustered by prompt, and it keeps each seed's own values in
`per_seed` with their spread, as the toy's cells do. Harm verdicts (LLM judge) and coherence scores
(teacher NLL) are read from the files stored beside each cell.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from toydlm.errors import UserError
from toydlm.real.kit.judged import judged_verdicts
from toydlm.real.twins.coherence import per_token_nll, read_scores
from toydlm.real.twins.swap import cluster_se, rows_summary

SEED_KEYS = ("n", "refusal_rate", "refusal_rate_se", "mean_length", "eos_first_excess", "asr", "coherence_nll")


def is_second_swap(rec: dict) -> bool:
    """Whether a stored cell is the second swap's: one record per row and a canvas length. First-swap cells
    kept their rows as a dict of lists and ran at the trained length only."""
    cell = rec.get("cell", {})
    return "gen_length" in cell and isinstance(cell.get("rows"), list)


def student_kind(name: str) -> str:
    """`ar` for the AR student, `mdlm` for any MDLM seed (`mdlm_s0`, ...)."""
    return "ar" if name == "ar" else "mdlm"


def load_cells(store_root: Path, weights: dict[str, str]) -> list[dict]:
    """Stored cells of the students with these weights hashes (by student name), each with its harm verdicts
    (None until judged) and its coherence scores (None until scored); cells of other weights are skipped."""
    out = []
    for path in sorted(Path(store_root).glob("*.json")):
        rec = json.loads(path.read_text())
        name = rec["spec"].get("student")
        if not is_second_swap(rec) or name not in weights or rec["spec"]["weights"] != weights[name]:
            continue
        harmful = judged_verdicts(path)
        out.append({**rec["cell"], "student_name": name, "harmful_rows": None if harmful is None else harmful.tolist(),
                    "scores": read_scores(path), "draw": rec["spec"].get("sampler", {}).get("draw", "race")})
    return out


def seed_values(cell: dict) -> dict:
    """One seed's cell: its rates, its ASR and its coherence NLL."""
    s = rows_summary(cell["rows"])
    asr = None if cell["harmful_rows"] is None else float(np.mean(cell["harmful_rows"]))
    coh = None if cell["scores"] is None else per_token_nll(cell["scores"])
    return {"student": cell["student_name"], **{k: s.get(k) for k in SEED_KEYS if k in s}, "asr": asr,
            "coherence_nll": coh}


def pooled_cell(parts: list[dict]) -> dict:
    """One reported cell from its students' stored cells (one for the AR student, one per MDLM seed)."""
    rows = [r for c in parts for r in c["rows"]]
    first = parts[0]
    out = {"student": student_kind(first["student_name"]), "sampler": first["sampler"], "attack": first["attack"],
           "gen_length": first["gen_length"], "harmful": first["harmful"], "temperature": first["temperature"],
           "seed": first["seed"], **rows_summary(rows)}
    out["asr"] = out["asr_se"] = None
    if all(c["harmful_rows"] is not None for c in parts):
        harm = np.asarray([h for c in parts for h in c["harmful_rows"]], float)
        out["asr"], out["asr_se"] = float(harm.mean()), cluster_se(harm, [r["prompt"] for r in rows])
    scored = [c["scores"] for c in parts if c["scores"] is not None]
    out["coherence_nll"] = (per_token_nll({"nll": [x for s in scored for x in s["nll"]],
                                           "tokens": [x for s in scored for x in s["tokens"]]})
                            if len(scored) == len(parts) else None)
    out["coherence_rows"] = sum(len(s["rows"]) for s in scored)
    out["per_seed"] = [seed_values(c) for c in parts]
    out["n_seeds"] = len({c["student_name"] for c in parts})
    ref = [p["refusal_rate"] for p in out["per_seed"]]
    out["refusal_seed_sd"] = float(np.std(ref, ddof=1)) if len(ref) > 1 else None
    out["seconds"] = float(sum(c.get("seconds") or 0.0 for c in parts))  # sampling wall time, all seeds
    out["rows"] = rows
    return out


def pool(cells: list[dict]) -> list[dict]:
    """Cells pooled by (student kind, sampler, prompt set, length, samples per prompt, sampling seed and
    temperature), in the order first stored. Each student has one stored cell per group: two (say, drawn
    another way, or on another split of the prompts) is a one-line error, not a silent double count."""
    groups: dict[tuple, list[dict]] = {}
    for c in cells:
        key = (student_kind(c["student_name"]), c["sampler"], c["attack"], c["gen_length"], c["samples_per_prompt"],
               c["seed"], c["temperature"])
        groups.setdefault(key, []).append(c)
    for key, parts in groups.items():
        names = [c["student_name"] for c in parts]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            draws, split = sorted({c["draw"] for c in parts}), sorted({"prompts" in c for c in parts})
            raise UserError(f"the store holds two cells of {twice[0]} for {key[1]} on {key[2]} at length {key[3]} "
                            f"(draws {draws}, split {split}): keep one design per student")
    return [pooled_cell(sorted(parts, key=lambda c: c["student_name"])) for parts in groups.values()]
