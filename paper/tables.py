"""Tables generated from the result files: each `name(sources) -> (markdown, caption)`."""

from __future__ import annotations

import math
from collections.abc import Callable

from paper.render import fmt_value
from paper.sources import Sources

SAMPLERS = ("ar_order", "random_T16", "low_confidence_T16", "low_confidence_T4", "low_confidence_B4_T16",
            "entropy_T16", "mdlm_T16", "remdm_cap_T32")
FAMILIES = ("none", "wrapper:roleplay", "wrapper:hypothetical", "wrapper:prefix", "wrapper:cipher")
SIGN = "Sign: Δ = sampler − AR order on the same weights; negative Δ ASR = fewer harmful responses."


def f(x, fmt: str = "f3") -> str:
    """Format like the placeholders do (None / NaN as an en dash)."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return fmt_value(x, fmt)


def result_figure(src: str, name: str, caption: str) -> Callable[[Sources], tuple[str, str]]:
    """A figure that a results file's experiment wrote to `results/<name>`: shown only when `src` is read."""
    def gen(s: Sources) -> tuple[str, str]:
        s.get(src)
        return f"../results/{name}", caption

    return gen


def asr_pm(r: dict | None) -> str:
    """A cell's ASR, with ± the SD across training seeds when it was pooled over two or more."""
    if r is None:
        return "–"
    sd = r.get("asr_seed_sd")
    return f(r["asr"]) if sd is None else f"{f(r['asr'])} ± {f(sd)}"


SEED_NOTE = "± = SD of ASR across the training seeds (each seed's own cell), where the weights are learned."


def md(header: list[str], rows: list[list[str]]) -> str:
    """A Markdown pipe table."""
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def sel(rows: list[dict], **kw) -> list[dict]:
    """Rows whose fields equal every keyword."""
    return [r for r in rows if all(r.get(k) == v for k, v in kw.items())]


def one(rows: list[dict], **kw) -> dict | None:
    """The single row matching, or None."""
    hits = sel(rows, **kw)
    return hits[0] if len(hits) == 1 else None


def short(attack: str) -> str:
    """`wrapper:prefix` -> `prefix`."""
    return attack.replace("wrapper:", "")


def models(s: Sources) -> tuple[str, str]:
    """Training outcome of the two learned models and their refusal-rate fidelity."""
    tr = s.get("default-s1/summary.json")["training"]
    mq = s.get("model_quality.json")
    rows = []
    for arch in ("ar", "mdlm"):
        ts = [t for k, t in sorted(tr.items()) if k.startswith(f"default/{arch}/s")]
        t = ts[0] if ts else {}
        losses = [x["eval_loss"] for x in ts]
        loss = f(losses[0]) if len(losses) == 1 else f"{f(sum(losses) / len(losses))} ± {f(_sd(losses))}"
        fams = mq["results"][arch]["families"].values()
        err = max(abs(r[k] - r["exact_refusal"]) for r in fams for k in ("refusal_l2r", "refusal_random") if k in r)
        rows.append([arch.upper(), f(len(ts), "int"), f(t.get("n_params"), "int"), f(t.get("steps"), "int"), loss,
                     f(t.get("entropy_floor")), f(err)])
    cap = ("The learned models of the main run, one per training seed (eval loss in nats per response token: mean ± "
           "SD across seeds; the entropy floor is the grammar's exact conditional entropy) and, from a separate "
           "longer-trained pair (`model_quality.json`), the largest gap between a model's sampled refusal rate and "
           "the grammar's exact rate over all prompt families.")
    head = ["model", "seeds", "parameters", "train steps", "eval loss", "entropy floor", "max refusal-rate gap"]
    return md(head, rows), cap


def _sd(xs: list[float]) -> float:
    m = sum(xs) / len(xs)
    return math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1))


def controls(s: Sources) -> tuple[str, str]:
    """Calibration controls: samplers whose output law is the model's joint must reproduce the exact rates."""
    rows = s.get("default-s1/summary.json")["controls"]["rows"]
    cols = [("ar", "ar"), ("mdlm", "ar_order"), ("mdlm", "random_T16"), ("oracle", "ar_order")]
    out = []
    for a in FAMILIES:
        base = sel(rows, grammar="default", attack=a)
        if not base:
            continue
        cells = []
        for m, smp in cols:
            r = one(base, model=m, sampler=smp)
            cells.append("–" if r is None else f"{f(r['asr'])} ({f(r['z'], '+f1')})")
        out.append([short(a), f(base[0]["exact"])] + cells)
    cap = ("Calibration controls on the default grammar: ASR with its z-score against the exact rate "
           "((measured − exact)/SE). These samplers commit one position at a time without looking at the drawn "
           "values, so on a perfect model they reproduce the grammar's rates exactly.")
    return md(["prompts", "exact", "AR model, AR", "MDLM, AR order", "MDLM, random T16", "oracle, AR order"], out), cap


def sampler_swap(s: Sources) -> tuple[str, str]:
    """Fixed-weights sampler swap on the prefix wrapper: Δ ASR vs AR order with 95% CIs."""
    rows = s.get("exp2_sampler_swap.json")["rows"]
    cells = s.get("default-s1/summary.json")["cells"]
    panels = [("default", "mdlm"), ("default", "oracle"), ("length_matched", "oracle")]
    base = []
    for g, m in panels:
        b = one(cells, grammar=g, model=m, sampler="ar_order", attack="wrapper:prefix", temperature=1.0)
        base.append(asr_pm(b))
    out = [["ar_order (baseline ASR)"] + base]
    for smp in SAMPLERS[1:]:
        line = [smp]
        for g, m in panels:
            r = one(rows, grammar=g, weights=m, sampler=smp, attack="wrapper:prefix")
            line.append("–" if r is None else f"{f(r['delta_asr'], '+f3')} {f(r['delta_asr_ci95'], 'ci3')}")
        out.append(line)
    cap = ("The fixed-weights sampler swap (the seed paper's Table 2 analogue) on the strongest seen wrapper "
           "(`prefix`): change in ASR against AR-order sampling of the same weights, with a 95% normal CI (for the "
           "MDLM, of the means over training seeds, with SEs that include the seeds' spread). "
           + SIGN + " " + SEED_NOTE)
    return md(["sampler", "MDLM, default grammar", "oracle, default grammar", "oracle, length-matched"], out), cap


def length(s: Sources) -> tuple[str, str]:
    """Response length, EOS-first share and its excess over a random order per sampler: the length/EOS confound."""
    rows = s.get("exp7_length_hypothesis.json")["rows"]
    out = []
    for smp in SAMPLERS:
        line = [smp]
        for g, m, a in (("default", "mdlm", "benign"), ("default", "mdlm", "none"), ("length_matched", "oracle",
                                                                                     "none")):
            r = one(rows, grammar=g, model=m, sampler=smp, attack=a)
            line += ["–"] * 3 if r is None else [f(r["mean_length"], "f2"), f(r["eos_first_share"], "f2"),
                                                 f(r.get("eos_first_excess"), "+f2")]
        out.append(line)
    cap = ("Mean response length (tokens before the first EOS), the share of EOS among the first half of the "
           "commits, and that share's excess over a uniformly random commit order on the same final canvases "
           "(`eos_first_excess`: 0 = no preference, whatever the length; +1 = every end token committed before any "
           "content; −1 = every content token first; docs/algorithms.md), per sampler, on benign and on plain "
           "harmful prompts. The share alone mostly restates the length: short answers leave mostly end tokens "
           "to commit in any order.")
    head = ["sampler", "MDLM benign: length", "EOS-first share", "excess", "MDLM harmful: length", "EOS-first share",
            "excess", "oracle, length-matched harmful: length", "EOS-first share", "excess"]
    return md(head, out), cap


def recovery(s: Sources) -> tuple[str, str]:
    """HRR / FRR per sampler on the prefix wrapper, learned MDLM and oracle."""
    rows = s.get("exp1_recovery_by_revision.json")["rows"]
    out = []
    for m, smp in [("ar", "ar")] + [(m, x) for m in ("mdlm", "oracle") for x in SAMPLERS]:
        r = one(rows, model=m, sampler=smp, attack="wrapper:prefix")
        if r is not None:
            out.append([m, smp, asr_pm(r), f(r["hrr"]), f(r["frr"]), f(r["n_ever_pending"], "int"),
                        f(r["pred_hrr"]), f(r["pred_frr"])])
    cap = ("Recovery by revision on `prefix`-wrapped harmful prompts: ASR, the harmful remasking rate HRR "
           "(share of trajectories with a harmful argmax draft that later lose it), the full recovery rate FRR "
           "(share of those that end harmless), how many of the prompts ever had a harmful draft, and theory v2's "
           "predictions of HRR and FRR. Higher HRR/FRR = more recovery. Learned rows: means over the training "
           "seeds. " + SEED_NOTE)
    return md(["weights", "sampler", "ASR", "HRR", "FRR", "ever pending", "v2 HRR", "v2 FRR"], out), cap


def calibration(s: Sources) -> tuple[str, str]:
    """Theory v2 against measurement on held-out cells, by slice."""
    c = s.get("exp3_theory_calibration.json")["calibration"]
    out = [["all held-out", f(c["n_heldout"], "int"), f(c["mean_abs_err_asr"]), f(c["frac_within_2se"], "pct0")],
           ["non-trivial (measured ASR in [0.05, 0.95])", f(c["nontrivial_n"], "int"), f(c["nontrivial_mae"]),
            f(c["nontrivial_frac_within_2se"], "pct0")],
           ["temperature 1", f(c["temperature1_n"], "int"), f(c["temperature1_mae"]),
            f(c["temperature1_frac_within_2se"], "pct0")]]
    for k in ("per_model", "per_sampler"):
        for name, v in c.get(k, {}).items():
            out.append([f"{k.replace('per_', '')} {name}", f(v["n"], "int"), f(v["mae"]),
                        f(v["frac_within_2se"], "pct0")])
    for seed, v in (c.get("per_seed") or {}).items():
        out.append([f"training seed {seed} alone (non-trivial)", f(v["nontrivial_n"], "int"), f(v["nontrivial_mae"]),
                    f(v["nontrivial_frac_within_2se"], "pct0")])
    cap = ("Theory v2 (the sampler simulated on the grammar's exact oracle, plus one fitted representation-error "
           "offset per learned model, training seed and prompt family) against measured ASR on cells never used for "
           "fitting. Learned cells are pooled over the training seeds (mean of the per-seed measurements against "
           "the mean of the per-seed predictions, SE including the seeds' spread); the last rows score each seed's "
           f"own cells, with the oracle's, as a run of that seed alone would. Rule: {c['rule']}.")
    return md(["slice", "cells", "mean abs error", "within tolerance"], out), cap


def calibration_worst(s: Sources) -> tuple[str, str]:
    """The held-out cells the theory misses by most."""
    held = s.get("exp3_theory_calibration.json")["heldout_cells"]
    worst = sorted(held, key=lambda r: -abs(r["pred_asr"] - r["asr"]))[:8]
    out = [[r["grammar"], r["model"], r["sampler"], r["attack"], f(r["temperature"], "f0"),
            f"{f(r['asr'])} ± {f(r['asr_se'])}", f(r["pred_asr"]), f(r["pred_asr"] - r["asr"], "+f3"),
            f(r["model_offset"], "+f3")] for r in worst]
    cap = ("The eight held-out cells with the largest prediction error (predicted − measured). "
           "Temperature-0 cells have deterministic outputs, so their binomial SEs understate the uncertainty.")
    return md(["grammar", "weights", "sampler", "attack", "temp.", "measured", "predicted", "error", "offset"],
              out), cap


def forced(s: Sources) -> tuple[str, str]:
    """ASR under forced-token attacks (prefill, inject, interleave) per sampler."""
    cells = s.get("default-s1/summary.json")["cells"]
    attacks = sorted({c["attack"] for c in cells if c["attack"].split(":")[0] in ("prefill", "inject", "interleave")})
    out = []
    for smp in SAMPLERS:
        line = [smp]
        for a in attacks:
            for m in ("mdlm", "oracle"):
                line.append(asr_pm(one(cells, grammar="default", model=m, sampler=smp, attack=a, temperature=1.0)))
        out.append(line)
    head = ["sampler"] + [f"{a} ({m})" for a in attacks for m in ("MDLM", "oracle")]
    cap = ("ASR under attacks that write tokens into the response canvas: `prefill:k` pins the first k tokens of "
           "a harmful compliance, `inject:refusal@t` overwrites the first response token with a refusal token at "
           "step t, and `interleave` commits scattered compliance tokens below the harm threshold. " + SEED_NOTE)
    return md(head, out), cap


def oracle_vs_learned(s: Sources) -> tuple[str, str]:
    """How far the learned MDLM is from the exact oracle under each sampler."""
    rows = [r for r in s.get("exp6_oracle_vs_learned.json")["rows"] if r["attack"] != "benign"]
    out = []
    for smp in SAMPLERS:
        rs = sel(rows, sampler=smp)
        if not rs:
            continue
        d = [abs(r["diff"]) for r in rs]
        beyond = sum(abs(r["diff"]) > 2 * r["se"] for r in rs if r["se"] > 0)
        out.append([smp, f(len(rs), "int"), f(sum(d) / len(d)), f(max(d)), f(beyond, "int")])
    cap = ("Learned MDLM against the exact oracle, same sampler and attack (benign prompts excluded): mean and "
           "largest |ASR difference|, and how many cells differ by more than two combined SEs.")
    return md(["sampler", "cells", "mean |Δ|", "max |Δ|", "beyond 2 SE"], out), cap


def _sri_runs(s: Sources) -> dict:
    return s.get("default-s1/sri.json").get("runs", {}) or {}


def _primary(s: Sources) -> tuple[str, dict]:
    """The primary SRI run's name and record (the one `sri_guard` in summary.json summarises)."""
    name = (s.get("default-s1/sri.json").get("primary") or {}).get("model_sampler")
    return name, _sri_runs(s).get(name) or {}


def sri_guard(s: Sources) -> tuple[str, str]:
    """Every detector of the primary SRI run: AUROC with CI on seen and unseen families, FPR, overhead."""
    name, run = _primary(s)
    over = (s.get("default-s1/sri.json").get("primary") or {}).get("overhead_pct_by_detector") or {}
    labels = {"last": "SRI Guard (last layer, generated pooling)",
              "last_all_positions": "SRI Guard, all-positions pooling", "middle": "SRI Guard, middle layer",
              "first": "SRI Guard, first layer", "text_level_refusal_signal": "text-level refusal signal",
              "first_step_activation": "first-step activations", "perplexity_filter": "perplexity filter",
              "guard_model": "guard model (classifier on final text)"}
    rows = []
    for group in ("sri", "baselines"):
        for key, rep in (run.get(group) or {}).items():
            def au(part: str, rep: dict = rep) -> str:
                r = rep.get(part) or {}
                if r.get("auroc") is None:
                    return f"– ({r.get('n_pos', 0)} pos.)"
                lo, hi = r["auroc_ci95"]
                return f"{f(r['auroc'], 'f2')} [{f(lo, 'f2')}, {f(hi, 'f2')}]"
            cost = over.get("sri_guard" if key == "last" else key)
            rows.append([labels.get(key, key), au("seen"), au("unseen"), f(rep.get("fpr_benign"), "pct0"),
                         f(cost, "f2") if cost is not None else "–"])
    if not rows:
        return "_sri.json holds no detector results._", "SRI Guard and baselines (none found)."
    seen, unseen = (run.get("sri") or {}).get("last", {}).get("seen", {}), (run.get("sri") or {}).get("last", {}).get(
        "unseen", {})
    cap = (f"SRI Guard against its baselines on the primary run (`{name}`): positives = successful jailbreaks "
           f"({seen.get('n_pos')} on seen families, {unseen.get('n_pos')} on the unseen one), negatives = "
           f"{seen.get('n_neg')} held-out benign generations. AUROC with a 95% bootstrap CI; benign false-positive "
           "rate at each detector's 99th-percentile benign threshold; overhead = steady-state detector time as a "
           "percentage of generation time, measured in the same run.")
    return md(["detector", "AUROC seen", "AUROC unseen", "benign FPR", "overhead %"], rows), cap


def sri_irr(s: Sources) -> tuple[str, str]:
    """Internal recovery rate per family at the paper's thresholds."""
    out, fams = [], []
    for name, run in _sri_runs(s).items():
        p = (run.get("pooling") or {}).get("generated") or run
        for lam, by_fam in (p.get("irr") or {}).items():
            if not lam.startswith("lambda_r="):
                continue
            fams = list(by_fam)
            out.append([name, lam.replace("lambda_r=", "")] + [f(by_fam[k], "f2") for k in fams])
    if not out:
        return "_sri.json holds no IRR values._", "Internal recovery rate (none found)."
    cap = ("Internal recovery rate (IRR, the seed paper's Definition 1) from the toy SRI signal with generated-token "
           "pooling: among responses whose signal was compliance-aligned (σ > 0.5) at some earlier step, the share "
           "ending refusal-aligned (σ below λ_r). Higher = more internal recovery; – where no response qualifies.")
    return md(["model / sampler", "λ_r"] + [short(k) for k in fams], out), cap


def _flat(x, prefix: str = "", depth: int = 0) -> list[tuple[str, object]]:
    if isinstance(x, dict) and depth < 4:
        return [kv for k, v in x.items() for kv in _flat(v, f"{prefix}.{k}" if prefix else str(k), depth + 1)]
    if isinstance(x, int | float | str) and not isinstance(x, bool):
        return [(prefix, x)]
    return []


def generic(name: str, skip: tuple[str, ...] = ("config", "versions")) -> Callable:
    """A key/value table of the scalar fields of an optional result whose schema is not fixed yet."""

    def table(s: Sources) -> tuple[str, str]:
        d = {k: v for k, v in s.get(name).items() if k not in skip}
        rows = [[f"`{k}`", f(v) if isinstance(v, float) else str(v)] for k, v in _flat(d)][:40]
        return md(["field", "value"], rows), f"Scalar fields of `results/{name}` (first forty, as stored)."

    return table


def _pivot(rows: list[dict], key, xkey: str, xs: list, label) -> list[list[str]]:
    """One table row per line (`key(r)`), one column per x value: ASR ± SE, '–' where not measured."""
    out = []
    for k in dict.fromkeys(key(r) for r in rows):
        cells = {r[xkey]: r for r in rows if key(r) == k}
        out.append([label(k)] + [f"{f(cells[x]['asr'], 'f2')} ± {f(cells[x]['asr_se'], 'f2')}" if x in cells else "–"
                                 for x in xs])
    return out


def sweeps(s: Sources) -> tuple[str, str]:
    """Parameter sweeps: ASR ± SE per swept value, one row per (weights, sampler, attack)."""
    blocks = []
    for param, rows in (s.get("exp4_sweeps.json").get("sweeps") or {}).items():
        xs = sorted({r["value"] for r in rows})
        fam = (lambda r: r["sampler"].rsplit("_T", 1)[0]) if param == "steps" else (
            (lambda r: r["sampler"].rsplit("_B", 1)[0] + "_T16") if param == "block_length" else (
                (lambda r: "remdm_cap_T32") if param == "sigma" else (lambda r: r["sampler"])))
        key = lambda r, fam=fam: (r["grammar"], r["model"], fam(r), short(r["attack"]))  # noqa: E731
        label = lambda k: f"{k[1]} / {k[2]} / {k[3]}" + (" / length-matched" if k[0] != "default" else "")  # noqa: E731
        blocks.append(f"**{param.replace('_', ' ')}**\n\n" + md(["weights / sampler / attack"] + [
            f(x, "f2") if isinstance(x, float) and not float(x).is_integer() else f(x, "int") for x in xs],
            _pivot(rows, key, "value", xs, label)))
    cap = ("Sweeps of steps, block length, ReMDM σ (η) and temperature: ASR ± SE per swept value (all other settings "
           "as in the main run).")
    return "\n\n".join(blocks), cap


def curves(s: Sources) -> tuple[str, str]:
    """Recovery curves: ASR against prefill length and against injection step, pivoted."""
    d = s.get("exp5_recovery_curves.json")
    pre = d.get("prefill", [])
    ks = sorted({r["prefill_len"] for r in pre})
    label = lambda k: f"{k[0]} / {k[1]}"  # noqa: E731
    parts = ["**prefill length k** (0 = none)\n\n" + md(["weights / sampler"] + [str(k) for k in ks], _pivot(
        pre, lambda r: (r["model"], r["sampler"]), "prefill_len", ks, label))]
    for token in ("refusal", "comply"):
        rows = [r for r in d.get("inject", []) if r.get("inject_kind") == token]
        ts = sorted({r["inject_step"] for r in rows})
        body = _pivot(rows, lambda r: (r["model"], r["sampler"]), "inject_step", ts, label)
        head = ["weights / sampler"] + [str(t) for t in ts]
        parts.append(f"**{token} token injected at step t**\n\n" + md(head, body))
    cap = "Recovery curves on plain harmful prompts: ASR ± SE against prefill length and against injection step."
    return "\n\n".join(parts), cap


def _grid_rows(s: Sources, name: str) -> list[dict]:
    d = s.get(name)
    if name == "exp5_recovery_curves.json":
        return list(d.get("prefill", [])) + list(d.get("inject", []))
    return [r for rows in (d.get("sweeps") or {}).values() for r in rows]


def grid_calibration(s: Sources) -> tuple[str, str]:
    """The theory on the cells of experiments 4 and 5, none of which was used for fitting."""
    out = []
    for name, label in (("exp5_recovery_curves.json", "recovery curves"), ("exp4_sweeps.json", "sweeps")):
        if not s.has(name):
            continue
        rows = _grid_rows(s, name)
        for model in ("ar", "mdlm", "oracle"):
            rs = [r for r in rows if r["model"] == model]
            if not rs:
                continue
            ok = [abs(r["pred_asr"] - r["asr"]) <= max(0.02, 2 * r["asr_se"]) for r in rs]
            nt = [o for o, r in zip(ok, rs) if 0.05 <= r["asr"] <= 0.95]
            mae = sum(abs(r["pred_asr"] - r["asr"]) for r in rs) / len(rs)
            out.append([label, model, str(len(rs)), f(mae), f(sum(ok) / len(ok), "pct0"), str(len(nt)),
                        f(sum(nt) / len(nt), "pct0") if nt else "–"])
    cap = ("A second held-out test: the theory's predictions for every cell of the sweeps and recovery curves "
           "(fitted only on the main run's fit cells), by weights. Same rule as the main calibration table; "
           "non-trivial = measured ASR in [0.05, 0.95].")
    return md(["experiment", "weights", "cells", "mean abs error", "within tolerance", "non-trivial cells",
               "non-trivial within"], out), cap


def exp8(s: Sources) -> tuple[str, str]:
    """Experiment 8: SRI Guard on the paper's task (A) and the earliest step each signal separates outcomes (B)."""
    rows = []
    for name, r in (s.get("exp8_sri_guard.json").get("results") or {}).items():
        a, b = r.get("task_a") or {}, r.get("task_b") or {}
        g = a.get("sri_guard") or {}
        gm = ((a.get("baselines") or {}).get("guard_model") or {}).get("unseen") or {}
        first = b.get("first_step_auroc_ge_0.9") or {}
        rows.append([name, f(g.get("auroc_unseen"), "f2"), f(gm.get("auroc"), "f2")]
                    + [f(first.get(k), "int") for k in ("sri_sigma_t", "guard_model_on_partial_text",
                                                        "committed_harm_count", "text_level_no_refusal_yet")])
    cap = ("Experiment 8. Task A (the seed paper's): successful jailbreaks against benign generations, unseen family, "
           "AUROC of SRI Guard and of the guard classifier. Task B (harder): successful against refused attacks, "
           "from what each signal has seen by step t; the columns give the first step at which its AUROC reaches "
           "0.9 (– = never). Earlier = the outcome is visible sooner.")
    head = ["grammar / model / sampler", "A: SRI Guard", "A: guard model", "B: SRI σ_t",
            "B: guard model, partial text", "B: committed harm", "B: text-level refusal"]
    return md(head, rows), cap


from paper.tables_real import TABLES_REAL  # noqa: E402
from paper.tables_sri_real import TABLES_SRI_REAL  # noqa: E402
from paper.tables_twins import TABLES_TWINS  # noqa: E402

TABLES = {"models": models, "controls": controls, "sampler_swap": sampler_swap, "length": length,
          "recovery": recovery, "calibration": calibration, "calibration_worst": calibration_worst,
          "forced": forced, "oracle_vs_learned": oracle_vs_learned, "sri_guard": sri_guard, "sri_irr": sri_irr,
          "sweeps": sweeps, "curves": curves, "grid_calibration": grid_calibration,
          "exp8": exp8,
          "bridge": generic("bridge_gpu.json"), **TABLES_REAL, **TABLES_TWINS, **TABLES_SRI_REAL}


def reproduce(s: Sources) -> str:
    """The commands that regenerate every results file the paper reads, from each file's provenance."""
    run = s.get("exp2_sampler_swap.json")["source_run"]
    summ = s.get("default-s1/summary.json")
    exps = sorted(k[:-5] for k in s.data if k.startswith("exp") and s.data[k] is not None
                  and s.data[k].get("source_run") == run)
    lines = ["python3 -m venv .venv && .venv/bin/pip install -q -e .",
             f".venv/bin/toydlm run --preset {summ['config']['preset']} --seed {summ['seed']} --out {run}"]
    lines += [f".venv/bin/python experiments/{e}.py --run {run}" for e in exps]
    lines += [".venv/bin/python experiments/exp8_sri_guard.py",
              ".venv/bin/python experiments/model_quality.py",
              ".venv/bin/toydlm bench train --json > results/bench_train.json",
              ".venv/bin/toydlm bench bridge --json > results/bench_bridge.json   # needs the [bridge] extra",
              f"cp {run}/summary.json {run}/sri.json {run}/report.md {run}/fig_*.png results/default-s1/"]
    lines += [".venv/bin/python paper/build.py"]
    return "```bash\n" + "\n".join(lines) + "\n```"


BLOCKS = {"reproduce": reproduce}
