"""Does `toydlm audit` reproduce the stored real-AR cells? Compare an audit of Qwen2.5-Coder-0.5B-Instruct
with `results/real_ar.json`'s samples of the same settings (temperature 0.7, 96 tokens, keyword judge).

The stored experiment drew its harmful prompts half from HarmBench and half from AdvBench; the audit ran
on all of HarmBench. Each comparison is made twice: on the HarmBench prompts both ran (same prompts,
independent draws), and audit-on-all-HarmBench against stored-on-its-HarmBench-half.

The rule, written while the audit ran and before its results were seen: two estimates agree when their
difference lies within the 95% interval of a difference, 1.96 * sqrt(se_a^2 + se_b^2), each se taken from
its own prompt-bootstrap interval (width / 3.92). Whether the two intervals overlap is reported beside it.

  python experiments/audit_agreement.py runs/audit-qwen05 [--out results/audit/qwen2.5-coder-0.5b-instruct]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from toydlm.bridge.judges import keyword_refusal  # noqa: E402
from toydlm.bridge.prompts import load_prompts  # noqa: E402
from toydlm.io import atomic_write_json, provenance  # noqa: E402
from toydlm.real.audit.analyse import cluster_ci  # noqa: E402
from toydlm.real.kit.prompts import prompt_sets  # noqa: E402

STORED = ROOT / "results" / "real_ar_cells" / "qwen2.5-coder-0.5b-instruct"
PAIRS = (("raw", "raw_T0.7"), ("refusal_suppression", "refusal_suppression_T0.7"))
N_BOOT, SEED, KS = 2000, 0, (16, 32)


def stored_cell(name: str) -> dict:
    for p in STORED.glob("*.json"):
        rec = json.loads(p.read_text())
        if rec["spec"]["name"] == name:
            return rec
    raise SystemExit(f"no stored cell {name} under {STORED}")


def rows_of(samples: list[dict], prompt_text, keep: set[str] | None) -> dict:
    """Per-row arrays (prompt text, refusal, length, ended) of the samples whose prompt is in `keep`."""
    sel = [s for s in samples if keep is None or prompt_text(s) in keep]
    return {"prompt": np.array([prompt_text(s) for s in sel]), "refusal": np.array([keyword_refusal(s["text"])
            for s in sel], float), "length": np.array([s["length"] for s in sel], float),
            "ended": np.array([s["ended"] for s in sel], bool)}


def estimate(r: dict, what: str, k: int | None = None) -> dict:
    """Refusal rate, mean length, or P(refusal | ended within k), with a prompt-bootstrap 95% interval."""
    if what == "refusal_rate":
        x, p = r["refusal"], r["prompt"]
    elif what == "mean_length":
        x, p = r["length"], r["prompt"]
    else:
        sel = r["ended"] & (r["length"] <= k)
        x, p = r["refusal"][sel], r["prompt"][sel]
    if not len(x):
        return {"value": None, "ci95": None, "n": 0}
    return {"value": float(x.mean()), "ci95": cluster_ci(p, x, N_BOOT, SEED), "n": int(len(x))}


def agree(a: dict, b: dict) -> dict:
    if a["value"] is None or b["value"] is None:
        return {"difference": None, "agree": None, "intervals_overlap": None}
    se = [(e["ci95"][1] - e["ci95"][0]) / 3.92 for e in (a, b)]
    d = a["value"] - b["value"]
    half = 1.96 * float(np.hypot(*se))
    overlap = a["ci95"][0] <= b["ci95"][1] and b["ci95"][0] <= a["ci95"][1]
    return {"difference": d, "difference_ci95_halfwidth": half, "agree": abs(d) <= half, "intervals_overlap": overlap}


def compare(audit_dir: Path) -> dict:
    audit = json.loads((audit_dir / "audit.json").read_text())
    hb = load_prompts("harmbench")
    harmful = prompt_sets(100, 100, 0)["harmful"]
    stored_hb = set(harmful[:50])  # the stored experiment's HarmBench half
    out = []
    for attack, name in PAIRS:
        st = stored_cell(name)
        a_rec = _audit_cell(audit_dir, attack)
        stored_text = (lambda s, st=st: harmful[st["spec"]["prompt_ids"][s["prompt"]]])
        audit_text = (lambda s: hb[s["prompt"]])
        for scope, keep_a in (("shared HarmBench prompts", stored_hb), ("all HarmBench (audit)", None)):
            ra, rs = rows_of(a_rec["samples"], audit_text, keep_a), rows_of(st["samples"], stored_text, stored_hb)
            for what, k in (("refusal_rate", None), ("mean_length", None), *(("p_refusal_given_len_le_k", k)
                                                                              for k in KS)):
                ea, es = estimate(ra, what, k), estimate(rs, what, k)
                out.append({"attack": attack, "scope": scope, "metric": what, "k": k, "audit": ea, "stored": es,
                            "stored_cell": name, "stored_samples_per_prompt": st["spec"]["samples"],
                            **agree(ea, es)})
    checked = [r for r in out if r["agree"] is not None]
    return {"experiment": "audit_agreement", "audit_model": audit["model"]["name"],
            "audit_sha256": audit["model"]["sha256"], "audit_settings": audit["settings"],
            "audit_git_revision": audit.get("git_revision"), "rule": __doc__.split("The rule")[1].split("\n\n")[0],
            "comparisons": out, "n_agree": sum(r["agree"] for r in checked), "n_checked": len(checked),
            **provenance(seed=SEED, config={"n_boot": N_BOOT, "ks": list(KS)})}


def _audit_cell(audit_dir: Path, attack: str) -> dict:
    for p in (audit_dir / "cells").glob("*.json"):
        rec = json.loads(p.read_text())
        if rec["spec"]["attack"] == attack and rec["spec"]["x"] is None:
            return rec
    raise SystemExit(f"the audit under {audit_dir} has no finished {attack} cell")


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("audit_dir", help="the audit's --out folder (audit.json and cells/)")
    ap.add_argument("--out", default=str(ROOT / "results" / "audit" / "qwen2.5-coder-0.5b-instruct"))
    a = ap.parse_args(argv)
    res = compare(Path(a.audit_dir))
    atomic_write_json(Path(a.out) / "agreement.json", res)
    for r in res["comparisons"]:
        ea, es = r["audit"], r["stored"]
        fmt = (lambda e: "—" if e["value"] is None else f"{e['value']:.3f} [{e['ci95'][0]:.3f}, {e['ci95'][1]:.3f}] "
               f"n={e['n']}")
        print(f"{r['attack']:20s} {r['scope']:26s} {r['metric']}{'' if r['k'] is None else r['k']:<3} "
              f"audit {fmt(ea)}  stored {fmt(es)}  agree={r['agree']}")
    print(f"{res['n_agree']} of {res['n_checked']} comparisons agree; wrote {a.out}/agreement.json")
    return res


if __name__ == "__main__":
    main()
