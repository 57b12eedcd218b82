"""Qwen2.5-Coder-0.5B-Instruct through lm-evaluation-harness (`--model hf`) on `toydlm_refusal_raw`, set beside
the stored length test of `results/real_ar.json`.

The harness decodes the shipped HarmBench prompts, chat-templated, 4 samples each at temperature 1 over the full
distribution (top_k=0, top_p=1), at most 96 new tokens as `real_ar.json`'s length cells; `toydlm lm-eval-report`
counts lengths in the model's tokens and runs the audit's length test with prompt-bootstrap intervals.

Agreement rule, fixed before the run: at each k of the grid both reports share, the harness's
P(refusal | length <= k) and `real_ar.json`'s agree when their 95% intervals overlap; the overall refusal rates
are set side by side with their intervals. `real_ar.json` used other prompts (half HarmBench, half AdvBench), so
the comparison is of the premise's shape, not of one prompt set.

`--prompts real_ar` runs `real_ar.json`'s own 100 harmful prompts instead (`toydlm.real.kit.prompts.prompt_sets`,
seed 0), so the two length tests share their prompts as well as their settings.

    python experiments/lm_eval_qwen.py run      # about an hour on 2 cores; writes runs/lm_eval_qwen
    python experiments/lm_eval_qwen.py report   # results/lm_eval/<checkpoint>/ and results/lm_eval_qwen.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CHECKPOINT = "qwen2.5-coder-0.5b-instruct"
GGUF = "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
GEN_KWARGS = "max_gen_toks=96,top_k=0,top_p=1.0"
CUT_MARGIN = 4  # lm-eval-report's default: a response within 4 tokens of the cap counts as cut
OFFLINE = {"HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_EVALUATE_OFFLINE": "1"}


PROMPTS = {"harmbench": "shipped HarmBench test set",
           "real_ar": "real_ar.json's own 100 harmful prompts (half HarmBench, half AdvBench, seed 0)"}


def real_ar_prompt_file(work: Path) -> Path:
    """real_ar.json's harmful prompts as a prompt file the task reads through --metadata."""
    from toydlm.io import atomic_write_json
    from toydlm.real.kit.prompts import prompt_sets

    path = work / "real_ar_harmful.json"
    atomic_write_json(path, [{"instruction": x} for x in prompt_sets(100, 100, seed=0)["harmful"]])
    return path


def lm_eval_args(model_dir: str, out: Path, seed: int, batch_size: int, prompt_file: str | None = None) -> list[str]:
    """The harness command line (after `toydlm lm-eval`)."""
    meta = [] if prompt_file is None else ["--metadata", json.dumps({"prompts": prompt_file})]
    return [*meta, "--model", "hf", "--model_args", f"pretrained={model_dir},gguf_file={GGUF},dtype=float32",
            "--tasks", "toydlm_refusal_raw", "--apply_chat_template", "--gen_kwargs", GEN_KWARGS,
            "--batch_size", str(batch_size), "--device", "cpu", "--seed", str(seed), "--output_path", str(out),
            "--log_samples"]


def run(work: Path, seed: int, batch_size: int, prompts: str) -> None:
    """Decode in `work`, where the checkpoint is linked under its name, so the harness records no machine path."""
    from toydlm.weights import resolve_model

    work.mkdir(parents=True, exist_ok=True)
    link = work / CHECKPOINT
    if not link.is_symlink():
        link.symlink_to(resolve_model(CHECKPOINT).resolve())
    prompt_file = None if prompts == "harmbench" else real_ar_prompt_file(work).name
    cmd = [sys.executable, "-m", "toydlm", "lm-eval",
           *lm_eval_args(CHECKPOINT, Path("out"), seed, batch_size, prompt_file)]
    print(" ".join(cmd), flush=True)
    subprocess.run(cmd, cwd=work, env={**os.environ, **OFFLINE}, check=True)


def ci_overlap(a: list[float] | None, b: list[float] | None) -> bool | None:
    """Whether two intervals overlap (None when either is missing)."""
    if a is None or b is None:
        return None
    return a[0] <= b[1] and b[0] <= a[1]


def stored_rows() -> dict[int, dict]:
    """`real_ar.json`'s length test of this checkpoint on raw prompts at temperature 1, by k."""
    stored = json.loads((ROOT / "results" / "real_ar.json").read_text())
    return {r["k"]: r for r in stored["length_test"]
            if r["checkpoint"] == CHECKPOINT and r["attack"] == "raw" and r["temperature"] == 1.0}


def compare(ours: list[dict], stored: dict[int, dict]) -> list[dict]:
    """Side by side at every k both reports have, with the preregistered rule (95% intervals overlap)."""
    rows = []
    for r in ours:
        s = stored.get(r["k"])
        if s is None:
            continue
        key, ci = "p_refusal_given_len_le_k", "p_refusal_given_len_le_k_ci95"
        rows.append({"k": r["k"], "harness": {"p": r[key], "ci95": r[ci], "n": r["n"], "n_total": r["n_total"]},
                     "stored": {"p": s[key], "ci95": s[ci], "n": s["n"], "n_total": s["n_total"]},
                     "agree": ci_overlap(r[ci], s[ci])})
    return rows


def figure(rows: list[dict], path: Path, prompts: str) -> None:
    from toydlm.real.kit.figures import pyplot

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.2))
    for side, dx, label in (("harness", -0.6, f"lm-eval --model hf ({prompts})"),
                            ("stored", 0.6, "real_ar.json")):
        pts = [(r["k"] + dx, r[side]["p"], r[side]["ci95"]) for r in rows if r[side]["p"] is not None]
        ks, ps = [p[0] for p in pts], [p[1] for p in pts]
        err = [[p[1] - (p[2] or [p[1]])[0] for p in pts], [(p[2] or [0, p[1]])[1] - p[1] for p in pts]]
        ax.errorbar(ks, ps, yerr=err, fmt="o-", ms=3, capsize=2, label=label)
    ax.set_xlabel("k (tokens)")
    ax.set_ylabel("P(refusal | length <= k)")
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=7)
    ax.set_title(f"Qwen2.5-Coder-0.5B, T=1, 4 samples per prompt; harness lengths with cut margin {CUT_MARGIN} "
                 "(post hoc)", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    plt.close(fig)


def report(work: Path, prompts: str) -> None:
    """Copy the run into results/lm_eval/, run the length report, and set it beside real_ar.json."""
    from _lm_eval_runs import copy_run, latest_results, lengths, metric

    from toydlm.io import atomic_write_json, provenance
    from toydlm.weights import resolve_model

    res_path = latest_results(work / "out")
    names = {str(work.resolve()): ".", str(ROOT): ".", str(work): ".",
             str(resolve_model(CHECKPOINT).resolve()): CHECKPOINT}
    tag = "" if prompts == "harmbench" else f"_{prompts}_prompts"
    dst = ROOT / "results" / "lm_eval" / f"{CHECKPOINT}{tag}"
    copied = copy_run(res_path, dst, names)
    pre = lengths(dst, CHECKPOINT, 1000, 0, cut_margin=0)["tasks"]["toydlm_refusal_raw"]  # as the rule was fixed
    rep = lengths(dst, CHECKPOINT, 1000, 0, cut_margin=CUT_MARGIN)  # the stored lengths file keeps this one
    res = json.loads(copied.read_text())
    raw = rep["tasks"]["toydlm_refusal_raw"]
    stored = stored_rows()
    rows, with_margin = compare(pre["length_test"], stored), compare(raw["length_test"], stored)
    any_k = next(iter(stored.values()))
    prompt_file = None if prompts == "harmbench" else "real_ar_harmful.json"
    out = {"experiment": "lm_eval_qwen", "checkpoint": CHECKPOINT, "command": "toydlm lm-eval " + " ".join(
               lm_eval_args(CHECKPOINT, Path("out"), res["config"].get("random_seed", 0),
                            int(res["config"]["batch_size"]), prompt_file)),
           "rule": "at each shared k, agree when the two 95% prompt-bootstrap intervals of P(refusal | len <= k) "
                   "overlap (fixed before the run)",
           "prompts": {"harness": PROMPTS[prompts], "stored": PROMPTS["real_ar"]},
           "harness": {"refusal_rate": metric(res, "toydlm_refusal_raw", "refusal_rate", "samples"),
                       "refusal_rate_ci95": raw["refusal_rate_ci95"], "n_rows": raw["n"],
                       "max_gen_toks": raw["max_gen_toks"], "near_cap": raw["near_cap"], "lengths": raw["lengths"]},
           "stored": {"p_refusal": any_k["p_refusal"], "n_rows": any_k["n_total"]},
           "by_k": rows, "n_k": sum(r["agree"] is not None for r in rows),
           "n_agree": sum(r["agree"] is True for r in rows),
           "cut_margin": {"margin": CUT_MARGIN, "why": "added after the first run: counted again, cut responses "
                          "come back a few tokens short of the cap (near_cap), and the fixed rule counted them as "
                          "ending early; not preregistered", "by_k": with_margin,
                          "n_k": sum(r["agree"] is not None for r in with_margin),
                          "n_agree": sum(r["agree"] is True for r in with_margin)},
           "files": sorted(p.name for p in dst.iterdir())}
    figure(with_margin, ROOT / "results" / f"lm_eval_qwen{tag}.png", PROMPTS[prompts])
    atomic_write_json(ROOT / "results" / f"lm_eval_qwen{tag}.json", {**out, **provenance(seed=0, config={
        "gen_kwargs": GEN_KWARGS, "batch_size": int(res["config"]["batch_size"]), "prompts": prompts})})
    print(f"agree at {out['n_agree']} of {out['n_k']} k with data on both sides; wrote results/lm_eval_qwen{tag}.json")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("stage", choices=["run", "report"])
    ap.add_argument("--work", default="runs/lm_eval_qwen", help="where the harness writes its run")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--prompts", choices=sorted(PROMPTS), default="harmbench")
    a = ap.parse_args(argv)
    if a.stage == "run":
        run(Path(a.work), a.seed, a.batch_size, a.prompts)
    else:
        report(Path(a.work), a.prompts)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
