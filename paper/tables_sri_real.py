"""Tables and figures of the real-SRI section, from `results/real_sri.json` (contract) and
`results/real_sri_signal.json` (details)."""

from __future__ import annotations

from paper.sources import Sources
from paper.tables import f, md, result_figure

SRC = "real_sri_signal.json"
NAMES = {"sri_guard": "SRI Guard", "sri_sigma_t": "σ_t (the SRI value)",
         "text_level_refusal": "text-level refusal signal",
         "linear_probe_first_step": "linear probe, first-step state", "perplexity_filter": "perplexity filter (prompt)",
         "self_examine": "Self-Examine (the 0.5B generator)", "guard_model": "guard model (1.5B)"}


def _ci(x: dict) -> str:
    ci = x.get("auroc_unseen_ci95")
    return f(x.get("auroc_unseen"), "f2") + ("" if not ci else f" [{ci[0]:.2f}, {ci[1]:.2f}]")


def real_sri_detectors(s: Sources) -> tuple[str, str]:
    """SRI Guard and every baseline: the unseen family, all families, FPR, cost, and the harder task."""
    rep = s.get(SRC)
    cost = (rep.get("cost") or {}).get("detectors", {})
    dets = {"sri_guard": rep["sri_guard"]} | rep["baselines"]
    rows = []
    for k, x in dets.items():
        c = cost.get(k, {})
        rows.append([NAMES.get(k, k), _ci(x), f(x.get("auroc", x.get("auroc_all")), "f2"), f(x.get("fpr_benign"), "f2"),
                     f(c.get("overhead_pct"), "f4"), f(c.get("flops_pct"), "f4")])
    head = ["detector", "AUROC, unseen family [95% CI]", "AUROC, all families", "benign FPR", "time, % of generation",
            "FLOPs, % of generation"]
    g = rep["sri_guard"]
    caption = (f"Detectors on {rep['checkpoint']} (greedy, 32 steps). Positives: successful jailbreaks (the 1.5B "
               f"harm judge) of the unseen family `{rep['unseen_family']}` ({g['n_pos_unseen']}) or of every family "
               f"({g['n_pos']}); negatives: {g['n_neg']} held-out harmless generations. Every threshold is the 99% "
               "quantile of the detector's scores on 200 other harmless prompts. The probe trains on the seen "
               "families, so its all-family AUROC would be partly in sample and is not given. Cost: one batch of "
               f"{(rep.get('cost') or {}).get('batch', '–')} rows, each detector timed in the same run as generation "
               "(– : not measured).")
    return md(head, rows), caption


SHOW_STEPS = ("0", "1", "2", "3", "4", "8", "16", "32")


def real_sri_by_step(s: Sources) -> tuple[str, str]:
    """The harder task: AUROC of successful against refused attacks from what each detector saw by step t."""
    d = s.get(SRC)["detection_by_step_detail"]
    rows = []
    for k, v in d["per_detector"].items():
        a = v["auroc"]
        rows.append([NAMES.get(k, k.replace("_", " ")), *(f(a.get(t), "f2") for t in SHOW_STEPS),
                     "never" if v["first_step_auroc_0_9"] is None else str(v["first_step_auroc_0_9"])])
    head = ["detector", *(f"t={t}" for t in SHOW_STEPS), "first step ≥ 0.9"]
    caption = (f"Successful ({d['n_success']}) against refused ({d['n_refused']}) attack responses, every family "
               f"pooled ({d['n_neither']} responses that were neither are left out). Each score has a fixed sign, "
               "higher = predicted jailbreak: σ_t; SRI Guard's reconstruction error of the signal seen so far; no "
               "refusal keyword yet; the prompted detectors' P(Yes) on the response cut to t tokens (scored at "
               "t = 4, 8 and 32 only; at 4 and 8 on the first 100 prompts of each attack, which is all the time "
               "allowed); the probe and the perplexity filter know nothing after the prompt. "
               "– : not scored at that step.")
    return md(head, rows), caption


def real_sri_irr(s: Sources) -> tuple[str, str]:
    """Per attack: outcomes, internal recovery at the study's thresholds, and SRI Guard's hit rate."""
    rep = s.get(SRC)
    fam = (rep.get("sri_guard") or {}).get("per_family", {})
    ci = (rep.get("sri_guard") or {}).get("by_family", {})
    rows = []
    for a, c in rep["cells"].items():
        if a not in rep["irr"]:
            continue
        pf = fam.get(a, {})
        rows.append([f"`{a}`", c["n"], f(c["refusal_rate"], "f2"), f(c.get("asr"), "f2"), c.get("n_successful", "–"),
                     *(f(c["irr"][str(lr)], "f2") for lr in rep["lambda_r"]), f(c["ever_compliance_aligned"], "f2"),
                     f(c["final_sigma_mean"], "f2"), _with_ci(pf.get("auroc"), ci.get(a, {}).get("auroc_ci95")),
                     f(pf.get("tpr"), "f2")])
    head = ["attack", "n", "refusal (keyword)", "ASR (judge)", "successes",
            *(f"IRR λ_r={lr}" for lr in rep["lambda_r"]), "ever compliance-aligned", "mean final σ",
            "SRI Guard AUROC [95% CI]", "SRI Guard TPR"]
    caption = ("Internal recovery on the real model, per attack (the study's Definition 1 with λ_c = 0.5: among "
               "responses compliance-aligned at some step before the last, the share that end below λ_r). Prompts: "
               "159 HarmBench and 120 AdvBench prompts disjoint from the anchors. SRI Guard columns: that family's "
               "successful jailbreaks against the held-out harmless generations, at the benign 99% threshold.")
    return md(head, rows), caption


def _with_ci(x: float | None, ci: list | None) -> str:
    return f(x, "f2") + ("" if not ci else f" [{ci[0]:.2f}, {ci[1]:.2f}]")


CHECKS = {"main": "as reported (harmless rows refused or not; pooled state held after the end)",
          "answered_harmless_only": "harmless rows the model answered only",
          "literal_end_padding": "the study's literal end padding (anchors, signals and guard recomputed)"}


def real_sri_checks(s: Sources) -> tuple[str, str]:
    """SRI Guard as reported and under the two checks: AUROCs with intervals, false positives, share flagged."""
    rep = s.get("real_sri.json")
    rows = []
    for k, name in CHECKS.items():
        c = rep["sri_guard_checks"][k]
        rows.append([name, c["n_train"], c["n_neg"], _with_ci(c["auroc_unseen"], c["auroc_unseen_ci95"]),
                     _with_ci(c["auroc_all"], c["auroc_all_ci95"]), f(c["fpr_benign"], "f3"),
                     f(c["flagged_share"], "pct1")])
    head = ["SRI Guard", "harmless rows trained on", "harmless rows evaluated", "AUROC, unseen family [95% CI]",
            "AUROC, every success [95% CI]", "benign FPR", "successes flagged"]
    caption = (f"SRI Guard on {rep['checkpoint']} as reported and under two checks computed from the same stored "
               "states: training, threshold and evaluation on the harmless prompts the model answered, and the "
               "study's own padding after the end token. Intervals: stratified bootstrap over rows. Flagged: share "
               "of all successful jailbreaks above the 99% benign threshold.")
    return md(head, rows), caption


def _fig(name: str, caption: str):
    return result_figure(SRC, name, caption)


FIGURES_SRI_REAL = {
    "real_sri_traj_fig": _fig("real_sri_trajectories.png", "Mean SRI per step on the real model: every cell (left) "
                              "and the attack cells split by keyword outcome (right, dashed: refused)."),
    "real_sri_irr_fig": _fig("real_sri_irr.png", "Internal recovery rate per attack at three refusal thresholds, "
                             "with the judged ASR (triangles)."),
    "real_sri_roc_fig": _fig("real_sri_roc.png", "ROC curves on the unseen family's successful jailbreaks against "
                             "held-out harmless generations (AUROC in brackets)."),
    "real_sri_step_fig": _fig("real_sri_by_step.png", "The harder task: AUROC of successful against refused attack "
                              "responses from what each detector has seen by step t."),
}
TABLES_SRI_REAL = {"real_sri_detectors": real_sri_detectors, "real_sri_irr": real_sri_irr,
                   "real_sri_by_step": real_sri_by_step, "real_sri_checks": real_sri_checks}
