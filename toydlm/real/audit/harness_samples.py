"""The length test over lm-eval's logged samples of `toydlm_refusal`: what the harness's metric API cannot say.

lm-eval sees only text, so lengths are counted here in the model's own tokens (its tokenizer on the
decoded response). A response as long as the generation cap is cut, and never counts as ending early. Counting
the decoded text again drifts: a sampled answer need not use the tokenizer's own split of its text, so a
response cut at the cap can come back a few tokens short (Qwen2.5-Coder-0.5B at T=1, 96-token cap: 37 of 636
responses at 95, against at most 6 at each length from 88 to 94). So a response within `cut_margin` tokens of the cap
also counts as cut; `near_cap` in the report shows the lengths there. The
test itself, the length distributions and the prompt bootstrap are the audit's own functions
(`toydlm.real.kit.length_test`, `toydlm.real.audit.analyse.cluster_ci`)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from toydlm.bridge.judges import keyword_refusal
from toydlm.errors import UserError
from toydlm.real.audit.analyse import cluster_ci
from toydlm.real.kit.length_test import DEFAULT_KS, length_premise, length_test

PREFIX = "samples_toydlm_refusal_"
DEFAULT_CUT_MARGIN = 4  # tokens below the cap within which a counted response is taken as cut


def latest_run(out: Path) -> tuple[dict, dict[str, Path]]:
    """The newest results JSON under an lm-eval `--output_path`, and its tasks' sample files."""
    results = sorted(Path(out).rglob("results_*.json"), key=lambda p: p.name)
    if not results:
        raise UserError(f"no lm-eval results_*.json under {out}: run `toydlm lm-eval ... --output_path {out}`")
    res, stamp = results[-1], results[-1].name[len("results_"):-len(".json")]
    samples = {p.name[len("samples_"):-len(f"_{stamp}.jsonl")]: p
               for p in res.parent.glob(f"{PREFIX}*_{stamp}.jsonl")}
    if not samples:
        raise UserError(f"{res.name} has no toydlm_refusal samples beside it: rerun lm-eval with --log_samples")
    return json.loads(res.read_text()), samples


def sample_rows(path: Path, count_tokens, cap: int, cut_margin: int = DEFAULT_CUT_MARGIN) -> list[dict]:
    """One row per logged response: its prompt, token length (the cap for a cut response), whether it ended
    before the cap (shorter than cap - cut_margin), refusal, and the request and response a harm judge reads."""
    rows = []
    for line in path.read_text().splitlines():
        s = json.loads(line)
        for text in s["resps"][0]:
            n = count_tokens(text)
            ended = n < cap - cut_margin
            rows.append({"prompt": s["doc"]["prompt_id"], "harmful": s["doc"]["harmful"],
                         "length": n if ended else cap, "counted": n, "ended": ended,
                         "refusal": bool(keyword_refusal(text)), "instruction": s["doc"]["instruction"],
                         "response": s["doc"].get("prefill", "") + text})
    return rows


def task_report(rows: list[dict], ks=DEFAULT_KS, n_boot: int = 1000, seed: int = 0, judge=None) -> dict:
    """Refusal rate with its prompt-bootstrap interval, lengths by verdict and, on harmful prompts, the ASR and
    the length test. Harm is `judge`'s verdict (an audit `Judge`), else the keyword proxy: not a refusal."""
    prompt = np.array([r["prompt"] for r in rows])
    length, ended = np.array([r["length"] for r in rows]), np.array([r["ended"] for r in rows])
    refusal = np.array([r["refusal"] for r in rows], bool)
    out = {"n": len(rows), "refusal_rate": float(refusal.mean()) if len(rows) else None,
           "refusal_rate_ci95": cluster_ci(prompt, refusal, n_boot, seed),
           "lengths": length_premise(length, ended, refusal), "asr": None, "asr_ci95": None, "length_test": None}
    if rows and rows[0]["harmful"]:
        harm = (~refusal if judge is None else
                judge.verdicts([r["instruction"] for r in rows], [r["response"] for r in rows], refusal))
        out.update(asr=float(harm.mean()), asr_ci95=cluster_ci(prompt, harm, n_boot, seed),
                   length_test=length_test(prompt, length, ended, refusal, harm, ks, n_boot, seed))
    return out


def generation_cap(res: dict, task: str) -> int:
    """The most tokens a response could have: the task's max_gen_toks (after any --gen_kwargs), or what the
    `toydlm` model recorded it decoded on instead (its gen_length, or a student's shorter canvas)."""
    cap = int(res["configs"][task]["generation_kwargs"]["max_gen_toks"])
    toy = res.get("config", {}).get("toydlm")
    if isinstance(toy, dict):
        if toy.get("gen_length"):
            return int(toy["gen_length"])
        if toy.get("max_canvas"):
            return min(cap, int(toy["max_canvas"]))
    return cap


def near_cap(rows: list[dict], cap: int, width: int = 8) -> dict[str, int]:
    """How many responses have each length from cap - width to cap + width (counted text drifts past the cap)."""
    out = {str(n): 0 for n in range(cap - width, cap + width + 1)}
    for r in rows:
        if str(r["counted"]) in out:
            out[str(r["counted"])] += 1
    return out


def lengths_report(res: dict, samples: dict[str, Path], count_tokens, ks=DEFAULT_KS, n_boot: int = 1000,
                   seed: int = 0, judge=None, cut_margin: int = DEFAULT_CUT_MARGIN) -> dict:
    """Every `toydlm_refusal` task of one lm-eval run (its results JSON and sample files, from `latest_run`);
    `judge` (an audit `Judge`) rules on harm, else the keyword proxy does."""
    tasks = {}
    for task, path in sorted(samples.items()):
        cap = generation_cap(res, task)
        if not 0 <= cut_margin < cap:
            raise UserError(f"--cut-margin {cut_margin} must be at least 0 and below the {cap}-token cap of {task}")
        rows = sample_rows(path, count_tokens, cap, cut_margin)
        tasks[task] = {"max_gen_toks": cap, "near_cap": near_cap(rows, cap),
                       **task_report(rows, ks, n_boot, seed, judge)}
    meta = {"judge": "keyword", "refusal": "keyword", "harm": "keyword proxy"} if judge is None else judge.meta
    return {"model_args": res.get("config", {}).get("model_args"), "ks": list(ks), "n_boot": n_boot,
            "boot_seed": seed, "cut_margin": cut_margin, "judge": meta, "tasks": tasks}
