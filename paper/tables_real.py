"""Tables and figures of the real-checkpoint section, from `results/real_ar.json`."""

from __future__ import annotations

from paper.sources import Sources
from paper.tables import f, md, result_figure

SRC = "real_ar.json"


def _ck(name: str) -> str:
    out = name.replace("-instruct", "").replace("qwen2.5-coder-", "Qwen2.5-Coder-").replace("smollm2-", "SmolLM2-")
    return out[:-1] + out[-1].upper() if out[-1] in "bm" and out[-2].isdigit() else out  # 0.5b -> 0.5B, 135m -> 135M


def real_cells(s: Sources) -> tuple[str, str]:
    """(a) Refusal rate and ASR per attack on real AR chat models, with lengths."""
    rows = []
    for c in s.get(SRC)["cells"]:
        rr = f(c["refusal_rate"], "f2") + " ± " + f(c["refusal_rate_se"], "f2")
        rows.append([_ck(c["checkpoint"]), c["attack"], c["n"], rr,
                     "–" if c["asr"] is None else f(c["asr"], "f2") + " ± " + f(c["asr_se"], "f2"),
                     f(c["asr_keyword_proxy"], "f2"), f(c["mean_len_refusal"], "f1"), f(c["mean_len_compliance"], "f1"),
                     f(c["truncated_share"], "f2")])
    head = ["checkpoint", "attack", "n", "refusal rate", "ASR (LLM judge)", "not refused", "len refusal",
            "len compliance", "truncated"]
    return md(head, rows), ("Real AR chat models at temperature 0.7, one sample per prompt (raw: the first of four). "
                            "Refusal: the study's keyword judge; ASR: the LLM harm judge (– where not yet judged); "
                            "lengths in tokens up to the end-of-turn token; truncated: no end within 96 tokens.")


def real_length_test(s: Sources) -> tuple[str, str]:
    """(c) P(refusal | length ≤ k) and ASR(length ≤ k) against k."""
    rows = []
    for r in s.get(SRC)["length_test"]:
        ci = r.get("p_refusal_given_len_le_k_ci95")
        ref = f(r["p_refusal_given_len_le_k"], "f2") + ("" if not ci else f" [{ci[0]:.2f}, {ci[1]:.2f}]")
        rows.append([_ck(r["checkpoint"]), r["attack"], f"{r['temperature']:g}", r["k"], r["n"],
                     f(r["p_len_le_k"], "f2"), ref, f(r["p_refusal"], "f2"), f(r["asr_given_len_le_k"], "f2"),
                     f(r["asr"], "f2")])
    head = ["checkpoint", "prompts", "T", "k", "n (ended ≤ k)", "P(len ≤ k)", "P(refusal | len ≤ k) [95% CI]",
            "P(refusal)", "ASR(len ≤ k)", "ASR"]
    return md(head, rows), ("The length test: refusal and harm among the responses that ended within k tokens, "
                            "which is what a sampler that forces an early end would draw from this model. Raw harmful "
                            "prompts with four samples each; harmless prompts with one. CIs: bootstrap over prompts.")


def real_recovery(s: Sources) -> tuple[str, str]:
    """(d) ASR and refusal against prefill length and against an injected refusal opener."""
    rows = []
    for ck, r in s.get(SRC)["recovery"].items():
        for p in r["prefill"]:
            rows.append([_ck(ck), "prefill (compliance opener)", p["prefill_tokens"], p["n"],
                         f(p["refusal_rate"], "f2"), f(p["asr"], "f2")])
        for p in r["inject"]:
            rows.append([_ck(ck), "refusal opener after t own tokens", p["inject_step"], p["n"],
                         f(p["refusal_rate"], "f2"), f(p["asr"], "f2")])
    return md(["checkpoint", "intervention", "tokens / step", "n", "refusal rate", "ASR"], rows), (
        "Recovery curves on real AR models (temperature 0.7). Prefill: the first k tokens of a compliance opener "
        "start the reply. Injection: a refusal opener follows the first t tokens of the model's own harmful reply "
        "(LLM judge); refusal rate: the keyword judge on what the model wrote after it.")


def _fig(name: str, caption: str):
    return result_figure(SRC, name, caption)


FIGURES_REAL = {
    "real_length_fig": _fig("real_ar_length_test.png", "The length test: refusal and harm among responses that end "
                            "within k tokens (dotted: unconditional), 95% prompt-bootstrap bands."),
    "real_premise_fig": _fig("real_ar_length_premise.png", "Length quantiles of refusals and compliances per cell."),
    "real_recovery_fig": _fig("real_ar_recovery.png", "Prefill and refusal-injection curves on the two Qwen models."),
    "real_stepwise_fig": _fig("real_ar_stepwise.png", "Share of responses with a refusal committed by step t, per "
                              "attack (the AR side of the study's Figure 3)."),
}
TABLES_REAL = {"real_cells": real_cells, "real_length_test": real_length_test, "real_recovery": real_recovery}
