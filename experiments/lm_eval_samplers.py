"""The sampler swap inside lm-evaluation-harness: one MDLM twin student (fixed weights) through `--model toydlm`
under three samplers, each on the refusal tasks and the offline capability tasks.

Refusal: `toydlm_refusal_raw` and `_harmless` on the twins' held-out prompts (the first N of each set; the
student never trained on them), 4 samples each at temperature 1 on the student's 96-token canvas. Capability:
`toydlm_capability` (greedy, 64 positions): a short answer (arithmetic) and a long one (counting). The student has
3.5M parameters, so its capability is expected near zero; the point is the path and the side-by-side columns.

    python experiments/lm_eval_samplers.py run      # resumable per sampler; writes runs/lm_eval_samplers
    python experiments/lm_eval_samplers.py report   # results/lm_eval_samplers.json and its figure
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

OFFLINE = {"HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_EVALUATE_OFFLINE": "1"}
TASKS = "toydlm_refusal_raw,toydlm_refusal_harmless,toydlm_capability"
TEACHER = "qwen2.5-coder-0.5b-instruct"


def args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("stage", choices=["run", "report"])
    ap.add_argument("--runs", default="runs/twins", help="the twins' run folder")
    ap.add_argument("--corpus", default=f"results/twins_cells/{TEACHER}", help="the twins' corpus (students.json)")
    ap.add_argument("--student", default="mdlm_s0")
    ap.add_argument("--samplers", default="ar_order,low_confidence,random")
    ap.add_argument("--n", type=int, default=25, help="first N held-out prompts of each set")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--work", default="runs/lm_eval_samplers")
    ap.add_argument("--out", default="results/lm_eval_samplers.json")
    return ap.parse_args(argv)


def prompt_files(work: Path, n: int) -> tuple[Path, Path]:
    """The first n held-out harmful and harmless instructions of the twins, as prompt files."""
    from toydlm.io import atomic_write_json
    from toydlm.real.twins.corpus import holdout_prompts

    h = holdout_prompts()
    paths = work / f"holdout_harmful_{n}.json", work / f"holdout_harmless_{n}.json"
    for path, key in zip(paths, ("harmful", "harmless")):
        atomic_write_json(path, [{"instruction": x} for x in h[key][:n]])
    return paths


def student_folder(a: argparse.Namespace) -> Path:
    rec = json.loads((Path(a.corpus) / "students.json").read_text()).get(a.student)
    if rec is None or rec["arch"] != "mdlm":
        raise SystemExit(f"error: {a.student} is not an MDLM student of {a.corpus}/students.json")
    return Path(a.runs) / rec["out_dir"] / "best"


def harness_args(student: Path, sampler: str, harmful: Path, harmless: Path, out: Path, a) -> list[str]:
    return ["lm-eval", "--model", "toydlm", "--model_args",
            f"pretrained={student},kind=dlm,sampler={sampler},seed={a.seed}", "--tasks", TASKS,
            "--metadata", json.dumps({"prompts": str(harmful), "harmless": str(harmless)}),
            "--batch_size", str(a.batch_size), "--seed", str(a.seed), "--output_path", str(out), "--log_samples"]


def run(a: argparse.Namespace) -> None:
    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    harmful, harmless = prompt_files(work, a.n)
    student = student_folder(a)
    for sampler in a.samplers.split(","):
        out = work / sampler
        if list(out.rglob("results_*.json")):
            print(f"{sampler}: done, kept", flush=True)
            continue
        cmd = [sys.executable, "-m", "toydlm", *harness_args(student, sampler, harmful, harmless, out, a)]
        print(" ".join(cmd), flush=True)
        subprocess.run(cmd, env={**os.environ, **OFFLINE}, check=True)


def sampler_row(sampler: str, out: Path, names: dict, student: Path, a: argparse.Namespace) -> dict:
    """One sampler's columns: refusal and over-refusal (harness), lengths and the length test (lm-eval-report,
    in the student's own tokens), and capability (harness)."""
    from _lm_eval_runs import copy_run, latest_results, lengths, metric

    dst = ROOT / "results" / "lm_eval" / "samplers" / sampler
    res = json.loads(copy_run(latest_results(out), dst, names).read_text())
    rep = lengths(dst, str(student), 1000, a.seed)
    raw, benign = rep["tasks"]["toydlm_refusal_raw"], rep["tasks"]["toydlm_refusal_harmless"]
    k16 = next((r for r in raw["length_test"] if r["k"] == 16), None)
    return {"sampler": sampler, "run_git_revision": res.get("git_hash"), "cut_margin": rep["cut_margin"],
            "refusal_rate": metric(res, "toydlm_refusal_raw", "refusal_rate", "samples"),
            "refusal_rate_ci95": raw["refusal_rate_ci95"],
            "over_refusal_rate": metric(res, "toydlm_refusal_harmless", "over_refusal_rate", "samples"),
            "over_refusal_rate_ci95": benign["refusal_rate_ci95"],
            "mean_length_refusal": raw["lengths"]["refusal"]["mean_len_all"],
            "mean_length_compliance": raw["lengths"]["compliance"]["mean_len_all"],
            "p_refusal_given_len_le_16": None if k16 is None else {
                k: k16[k] for k in ("p_refusal_given_len_le_k", "p_refusal_given_len_le_k_ci95", "n", "n_total")},
            "arithmetic": metric(res, "toydlm_capability_arithmetic", "exact_match", "none"),
            "counting": metric(res, "toydlm_capability_counting", "exact_match", "none"),
            "canvas": res["config"].get("toydlm", {}).get("max_canvas"), "n_rows_refusal": raw["n"]}


def figure(rows: list[dict], path: Path) -> None:
    from toydlm.real.kit.figures import pyplot

    plt = pyplot()
    cols = [("refusal (raw)", "refusal_rate"), ("over-refusal (harmless)", "over_refusal_rate"),
            ("arithmetic", "arithmetic"), ("counting", "counting")]
    fig, ax = plt.subplots(figsize=(6, 3.2))
    width = 0.8 / len(rows)
    for i, r in enumerate(rows):
        xs = [j + (i - (len(rows) - 1) / 2) * width for j in range(len(cols))]
        vals = [r[key]["value"] for _, key in cols]
        errs = [r[key]["stderr"] or 0 for _, key in cols]
        ax.bar(xs, vals, width, yerr=errs, capsize=2, label=r["sampler"])
    ax.set_xticks(range(len(cols)), [c for c, _ in cols], fontsize=7)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("rate (± lm-eval stderr over prompts)")
    ax.legend(fontsize=7)
    ax.set_title("MDLM twin student, one set of weights, three samplers (lm-eval --model toydlm)", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    plt.close(fig)


def report(a: argparse.Namespace) -> None:
    from toydlm.io import atomic_write_json, provenance

    work, student = Path(a.work), student_folder(a)
    names = {str(work.resolve()): "work", str(work): "work", str(Path(a.runs).resolve()): "runs/twins",
             str(Path(a.runs)): "runs/twins", str(ROOT): "."}
    rows = [sampler_row(s, work / s, names, student, a) for s in a.samplers.split(",")]
    figure(rows, ROOT / "results" / "lm_eval_samplers.png")
    atomic_write_json(Path(a.out), {
        "experiment": "lm_eval_samplers", "student": a.student, "n_prompts": a.n, "samples_per_prompt": 4,
        "tasks": TASKS, "judge": "keyword", "rows": rows,
        "note": "the student has 3.5M parameters; its capability columns measure the path, not a capable model",
        **provenance(seed=a.seed, config={"samplers": a.samplers, "batch_size": a.batch_size, "n": a.n})})
    print(f"wrote {a.out}")


def main(argv: list[str] | None = None) -> int:
    a = args(argv)
    run(a) if a.stage == "run" else report(a)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
