"""The paper is generated from results: fresh render == committed paper.md, every number round-trips to its
source, the template holds no hand-typed numbers, and seed-paper quotes are verbatim in the repository's
copy of the seed-study notes (docs/seed-study-excerpts.md).

String calcs (`{{ calc: X | str }}`) that print numbers are checked by STRING_CALC_CHECKS below: one entry per calc,
`"calc_name": lambda: [numbers the text must print, in order]`, recomputed from the JSON files (`_j(source)` loads
a source by its name in paper/sources.py) without calling paper/derived*.py; a checker may return [] for a branch
that prints no number. A number is a digit group or a
number word the word lint flags (`two` and up; `one`/`zero` are not counted), after code spans, allowlisted
identifiers (model names, sampler and attack labels) and allowlisted definition phrases are removed."""

from __future__ import annotations

import json
import math
import re
import shutil
from collections.abc import Callable
from functools import cache
from pathlib import Path

import pytest

from paper import lint
from paper.build import build, build_markdown, main, to_html
from paper.derived import DERIVED
from paper.lint import ALLOWED, ALLOWED_RE, TOKEN, config_identifiers, hand_typed_numbers, hand_typed_words
from paper.render import MINUS, fmt_value, parse_path, resolve
from paper.sources import OPTIONAL, REQUIRED, MissingSourceError, PlaceholderError

ROOT = Path(__file__).resolve().parents[2]
SEED_EXCERPTS = ROOT / "docs" / "seed-study-excerpts.md"


@pytest.fixture(scope="module")
def paper():
    return build_markdown(ROOT)


def _copy_repo(tmp: Path, drop: tuple[str, ...] = ()) -> Path:
    """A minimal copy of what the build reads, optionally without some files."""
    for rel in ("paper/paper.template.md", "paper/seed_reference.json", "paper/goals.json"):
        (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / rel, tmp / rel)
    shutil.copytree(ROOT / "results", tmp / "results")
    for rel in drop:
        (tmp / rel).unlink()
    return tmp


def test_committed_paper_equals_a_fresh_render(paper):
    committed = (ROOT / "paper" / "paper.md").read_text()
    assert committed == paper.markdown, "paper/paper.md is stale: run `.venv/bin/python paper/build.py`"


def test_check_mode_detects_a_stale_paper(tmp_path, monkeypatch):
    root = _copy_repo(tmp_path)
    monkeypatch.setattr("paper.build.ROOT", root)
    build(root, html=False)
    assert main(["--check"]) == 0
    (root / "paper" / "paper.md").write_text("stale\n")
    assert main(["--check"]) == 1


def _independent_lookup(data, path: str):
    """Walk the path without the renderer's resolver (selectors compared as strings or floats)."""
    cur = data
    for step in parse_path(path):
        if isinstance(step, dict):
            hits = [r for r in cur if all(str(r.get(k)) == v or (isinstance(r.get(k), float) and float(v) == r[k])
                                          for k, v in step.items())]
            assert len(hits) == 1, (path, step)
            cur = hits[0]
        else:
            cur = cur[step]
    return cur


def _numbers(text: str) -> list[float]:
    return [float(x) for x in re.findall(r"[+\-]?\d+(?:\.\d+)?", text.replace(MINUS, "-"))]


_UNITS = {w: i for i, w in enumerate("zero one two three four five six seven eight nine ten eleven twelve thirteen "
                                     "fourteen fifteen sixteen seventeen eighteen nineteen".split())}
_TENS = {w: 10 * i for i, w in enumerate("_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()) if i > 1}
_BIG = {"hundred": 100, "hundreds": 100, "thousand": 1000, "thousands": 1000, "million": 10 ** 6, "dozen": 12}
_MULTIPLE = re.compile(r"^(?:twice|thrice|doubled?|tripled?|halve[sd]?|half|quarters?|\w*fold)$")


def _word_value(word: str) -> int | None:
    """The integer a number word spells (`thirty-two`, `Eight-token` -> 8), or None; a trailing non-number part
    (`-token`) is allowed, a multiple (`twice`, `few-fold`) is an error: write it as a number."""
    parts = word.lower().split("-")
    assert not any(_MULTIPLE.match(p) for p in parts), f"multiple {word!r} in generated text: print a number"
    total, used = 0, 0
    for p in parts:
        if p in _UNITS and (used == 0 or (used == 1 and total % 10 == 0 and total >= 20 and 0 < _UNITS[p] < 10)):
            total += _UNITS[p]
        elif p in _TENS and used == 0:
            total += _TENS[p]
        elif p in _BIG and used <= 1:
            total = max(total, 1) * _BIG[p]
        else:
            break
        used += 1
    return total if used else None


def test_every_placeholder_round_trips_to_its_source(paper):
    assert len(paper.log) > 100
    checked = 0
    for r in paper.log:
        if r.source != "calc":
            rel = (REQUIRED.get(r.source) or OPTIONAL[r.source])[0]
            raw = _independent_lookup(json.loads((ROOT / rel).read_text()), r.path)
            assert raw == r.value, r.spec
        if r.fmt.lower() in ("word", "nword"):
            want = len(r.value) if r.fmt.lower() == "nword" else r.value
            assert re.fullmatch(r"[A-Za-z]+(?:-[a-z]+)?", r.text) and _word_value(r.text) == want, (r.spec, r.text)
            checked += 1
            continue
        if r.fmt == "str" or r.value is None:
            continue
        nd = int(r.fmt[-1]) if r.fmt[-1].isdigit() else 0
        scale = 100 if r.fmt.startswith("pct") else 1
        got = _numbers(r.text)
        want = list(r.value) if r.fmt.startswith("ci") else [r.value] + ([r.se] if r.fmt.startswith("pm") else [])
        assert len(got) == len(want), r.spec
        for g, w in zip(got, want):
            assert abs(g - scale * w) <= 0.5 * 10 ** -nd + 1e-9, (r.spec, r.text, w)
        checked += 1
    assert checked > 100


def test_rendered_values_appear_in_the_paper(paper):
    missing = [r.text for r in paper.log if r.text not in paper.markdown]
    assert not missing


def test_no_placeholder_survives_rendering(paper):
    assert "{{" not in paper.markdown and "}}" not in paper.markdown


def test_template_has_no_hand_typed_numbers():
    summary = json.loads((ROOT / "results/default-s1/summary.json").read_text())
    bad = hand_typed_numbers((ROOT / "paper/paper.template.md").read_text(), config_identifiers(summary))
    assert not bad, f"hand-typed numbers in the template (use placeholders): {bad}"


def test_template_has_no_hand_typed_number_words():
    bad = hand_typed_words((ROOT / "paper/paper.template.md").read_text())
    assert not bad, (f"number words in the template (use `| word` placeholders or calcs, or allowlist a definition in "
                     f"paper/lint.py ALLOWED_PHRASES): {bad}")


def test_the_digit_lint_catches_a_planted_number():
    assert hand_typed_numbers("ASR fell to 0.42 {{ x : y | f2 }}") == ["0.42"]
    assert hand_typed_numbers("arXiv 2602.02600, Model v2, {{ a : b.c[3] | pct1 }}") == []


def test_the_word_lint_catches_planted_number_words():
    planted = "the guard is a few-fold cheaper and twice as fast on three wrapper families"
    assert hand_typed_words(planted) == ["few-fold", "twice", "three"]
    assert hand_typed_words("Three seeds; ninety-five percent; thirty-two-token steps; a hundredfold gain; "
                            "half the runs; the model three times the size; an n-fold ratio") == [
        "Three", "ninety-five", "thirty-two-token", "hundredfold", "half", "three times", "n-fold"]
    # definitions on the allowlist, placeholders, and `one`/`zero` pass
    assert hand_typed_words("Model v1: a four-state chain; a prompt has two fillers; two exact results. "
                            "{{ seed : numbers.x.value | word }} seeds; one seed at temperature one; near zero") == []
    assert hand_typed_words("{{ goals : sri_guard_cost_ratio.value | int }}-fold, {{ a : b | f0 }} times") == []
    assert all(why for _, why in lint.ALLOWED_PHRASES)


def test_every_allowlisted_phrase_is_used():
    """A phrase the template no longer says is dropped from the allowlist, so the list stays short."""
    template = (ROOT / "paper/paper.template.md").read_text()
    unused = [p for p, _ in lint.ALLOWED_PHRASES if not re.search(p, template, re.I)]
    assert not unused, f"ALLOWED_PHRASES entries no longer in the template: {unused}"


def test_missing_required_source_is_one_clear_error(tmp_path, monkeypatch, capsys):
    root = _copy_repo(tmp_path, drop=("results/exp2_sampler_swap.json",))
    with pytest.raises(MissingSourceError, match=r"results/exp2_sampler_swap\.json.*experiments/exp2"):
        build_markdown(root)
    monkeypatch.setattr("paper.build.ROOT", root)
    assert main(["--no-html"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "exp2_sampler_swap.json" in err


def test_absent_optional_sources_render_a_marked_note(paper):
    for name, (rel, _) in OPTIONAL.items():
        if not (ROOT / rel).is_file():
            assert f"**Not yet run.** `{rel}` is absent" in paper.markdown, name


def test_present_optional_source_replaces_its_note(tmp_path):
    absent = build_markdown(_copy_repo(tmp_path / "a", drop=("results/exp4_sweeps.json",))).markdown
    assert "`results/exp4_sweeps.json` is absent" in absent
    root = _copy_repo(tmp_path / "b")
    present = build_markdown(root).markdown
    assert "`results/exp4_sweeps.json` is absent" not in present
    row = json.loads((root / "results/exp4_sweeps.json").read_text())["sweeps"]["sigma"][0]
    assert f"{row['asr']:.2f} ± {row['asr_se']:.2f}" in present and "exp4_sweeps.png" in present


def test_html_is_self_contained(paper):
    html = to_html(paper.markdown, ROOT / "paper")
    assert "<table>" in html and "data:image/png;base64," in html
    assert not re.search(r'src="(?!data:)', html)


def test_resolver_selects_one_row_and_rejects_ambiguity():
    data = {"rows": [{"a": "x", "v": 1.0}, {"a": "y", "v": 2.0}, {"a": "y", "v": 3.0}], "k.e": {"z": 5}}
    assert resolve(data, "rows[a=x].v") == 1.0
    assert resolve(data, "rows[a=y,v=3].v") == 3.0
    assert resolve(data, '"k.e".z') == 5
    with pytest.raises(PlaceholderError, match="matches 2 rows"):
        resolve(data, "rows[a=y].v")
    with pytest.raises(PlaceholderError, match="no key"):
        resolve(data, "rows[0].w")


def test_formats():
    assert fmt_value(0.7755, "pct0") == "78%"
    assert fmt_value(-0.6, "+f3") == f"{MINUS}0.600"
    assert fmt_value(0.0, "+f2") == "+0.00"
    assert fmt_value([-0.1, 0.2], "ci2") == f"[{MINUS}0.10, +0.20]"
    assert fmt_value(0.5, "pm2", 0.03) == "0.50 ± 0.03"
    assert fmt_value(None, "f3") == "–"
    assert [fmt_value(3, "word"), fmt_value(32, "word"), fmt_value(20.0, "Word"), fmt_value([0, 1, 2], "Nword")] == [
        "three", "thirty-two", "Twenty", "Three"]
    with pytest.raises(PlaceholderError):
        fmt_value(100, "word")
    with pytest.raises(PlaceholderError):
        fmt_value(2.5, "int")


def _seed() -> dict:
    return json.loads((ROOT / "paper/seed_reference.json").read_text())["numbers"]


def test_seed_values_are_written_in_their_quotes():
    for key, e in _seed().items():
        v = e["value"]
        forms = {f"{v:g}", f"{v:,g}", f"{v:.2f}", f"{v:.3f}", f"{v:.1f}"}
        assert any(f in e["quote"] for f in forms), (key, e["quote"])
        assert e["section"] and e["tag"] in ("P", "S", "D")


def test_seed_quotes_are_verbatim_in_the_seed_study_excerpts():
    lines = [ln.removeprefix("> ") for ln in SEED_EXCERPTS.read_text().splitlines() if ln.startswith("> ")]
    missing = [k for k, e in _seed().items() if not any(e["quote"] in ln for ln in lines)]
    assert not missing, f"quotes not found in {SEED_EXCERPTS.name}: {missing}"


def test_sri_section_survives_a_new_sri_schema(tmp_path):
    root = _copy_repo(tmp_path)
    (root / "results/default-s1/sri.json").write_text(json.dumps({"sri_guard": {"auroc": 0.5}}))
    md = build_markdown(root).markdown
    assert "in a format this build does not read" in md and "not read by this build" in md


# --- string calcs: every number they print is recomputed here from the JSON files ---------------------------

@cache
def _j(name: str):
    """A source by its name in paper/sources.py (`real_sri.json`, `goals`, `seed`, ...), parsed."""
    return json.loads((ROOT / (REQUIRED.get(name) or OPTIONAL[name])[0]).read_text())


def _cnt(k: int, n: int) -> list[int]:
    """The numbers a `k of n` count prints (`all n`, `none of n`, `k of n`): `one` is not counted as a number."""
    return [x for x in ([n] if k in (0, n) else [k, n]) if x >= 2]


def _twins_agreement(preregistered: bool) -> list[int]:
    rows = [p for p in _j("twins.json")["prediction"]
            if p["preregistered"] == preregistered and p["agrees_within_2se"] is not None]
    return _cnt(sum(bool(p["agrees_within_2se"]) for p in rows), len(rows))


def _twins_coherent() -> list[int]:
    rep = _j("twins.json")
    margin = json.loads((ROOT / "paper/goals.json").read_text())["twins_coherence_margin"]["value"]
    scored = [c for c in rep["cells"] if c["coherence_nll"] is not None and rep["teacher_nll"].get(c["attack"])]
    if not scored:
        return []
    judged = [c for c in scored if c["harm_reading"] is not None]
    within = sum(c["coherence_nll"] <= rep["teacher_nll"][c["attack"]] + margin for c in scored)
    return [*_cnt(within, len(scored)),
            *(_cnt(sum(c["harm_reading"] == "compliant framing" for c in judged), len(judged)) if judged else [])]


def _twins_eos_last_seeds() -> list[int]:
    def cell(sampler):
        return next(c for c in _j("twins.json")["cells"] if (c["student"], c["sampler"], c["attack"], c["gen_length"])
                    == ("mdlm", sampler, "raw", 96))
    ao = {p["student"]: p for p in cell("ar_order")["per_seed"]}
    el = [(ao[p["student"]], p) for p in cell("low_confidence+eos_last")["per_seed"]]
    return _cnt(sum(b["refusal_rate"] - a["refusal_rate"] > 2 * math.hypot(a["refusal_rate_se"], b["refusal_rate_se"])
                    for a, b in el), len(el))


def _mdlm_order_controls() -> list[float]:
    rows = [r for r in _j("default-s1/summary.json")["controls"]["rows"]
            if r["model"] == "mdlm" and r["grammar"] == "default" and r["attack"].startswith("wrapper:")]
    out: list[float] = []
    for sampler in ("ar_order", "random_T16"):
        rs = [r for r in rows if r["sampler"] == sampler]
        zs = [r["z"] for r in rs]
        bad = [r for r in rs if not r["within_3se"]]
        out += [*_cnt(sum(z > 0 for z in zs), len(rs)), min(zs), max(zs)]
        out += [*_cnt(len(bad), len(rs)), *(x for r in bad for x in (r["asr"], r["exact"]))] if bad else []
    return out


def _seed_runs() -> list[int]:
    goal = _j("goals")["calibration_nontrivial_within"]["value"]
    per = _j("exp3_theory_calibration.json")["calibration"]["per_seed"]
    got = [v["nontrivial_frac_within_2se"] for v in per.values()]
    k, m = sum(g >= goal for g in got), len(got)
    return [m] if k in (0, m) else [k, m]


def _sri_irr() -> list[float]:
    return [x for x in _j("real_sri.json")["irr"].values() if x is not None]


def _sri_irr_verdict() -> list[float]:
    bound = _j("seed")["numbers"]["irr_swap_ar_max"]["value"]
    above = sum(x > bound for x in _sri_irr())
    return [bound, above, len(_sri_irr())] if above else [bound]


def _study_removed() -> list[float]:
    n = _j("seed")["numbers"]
    return [1 - n[f"guard_ar_sri_guard_asr_{m}"]["value"] / n[f"guard_ar_undefended_asr_{m}"]["value"]
            for m in ("qwen", "llama", "gemma")]


def _sri_detects() -> list[float]:
    g, goals = _j("real_sri.json")["sri_guard"], _j("goals")
    lo = g["auroc_unseen_ci95"][0]
    ok = lo >= goals["sri_guard_auroc_unseen"]["value"] and g["fpr_benign"] <= goals["sri_guard_fpr_benign"]["value"]
    head = [] if ok else [95, goals["sri_guard_auroc_unseen"]["value"]]  # 95: the interval's level (`_ci95`)
    if g.get("flagged_share") is None:
        return head
    r = _study_removed()
    return head + [100 * g["flagged_share"], round(100 * min(r)), round(100 * max(r))]


def _sri_checks() -> list[float]:
    rep, goal = _j("real_sri.json"), _j("goals")["sri_guard_auroc_unseen"]["value"]
    return [x for k in ("answered_harmless_only", "literal_end_padding")
            for x in (rep["sri_guard_checks"][k]["auroc_unseen"], goal)]


def _sri_cheap() -> list[float]:
    g, ratio = _j("real_sri.json")["sri_guard"], _j("goals")["sri_guard_cost_ratio"]["value"]
    met = [x is not None and x >= ratio for x in (g["overhead_ratio_vs_guard_model"], g["flops_ratio_vs_guard_model"])]
    return [ratio] if all(met) else []


def _sri_abstract() -> list[float]:
    g = _j("real_sri.json")["sri_guard"]
    every = [] if g.get("auroc_all_ci95") is None else [g["auroc_all"], *g["auroc_all_ci95"], 100 * g["flagged_share"]]
    return [g["auroc_unseen"], *g["auroc_unseen_ci95"], *every, g["overhead_pct"], g["overhead_ratio_vs_guard_model"]]


def _sri_others() -> list[float]:
    out: list[float] = []
    for o in _j("real_sri.json").get("other_checkpoints", {}).values():
        cells = json.loads((ROOT / "results" / o["details"]).read_text())["cells"]
        n = {c["n"] for a, c in cells.items() if a in _j("real_sri.json")["irr"]}
        out += [o["anchors"]["n_benign_answered"], o["anchors"]["n_harmful_refused"], *n]
        out += [v for v in o["irr"].values() if v is not None]
    return out


def _sri_step_goal() -> list[float]:
    per = _j("real_sri_signal.json")["detection_by_step_detail"]["per_detector"]
    keys = {k for d in per.values() for k in d if k.startswith("first_step_auroc_")}
    assert len(keys) == 1, keys
    return [float(keys.pop().removeprefix("first_step_auroc_").replace("_", "."))]


def _sri_first(detector: str) -> list[int]:
    step = _j("real_sri.json")["detection_by_step"].get(detector)
    return [] if step is None else [step]


def _sri_min_successes() -> list[int]:
    cells = _j("real_sri_signal.json")["cells"]
    return [min(c["n_successful"] for a, c in cells.items() if a in _j("real_sri.json")["irr"])]


# calc name -> the numbers its text must print, in order. Adding a string calc that prints numbers: one line here.
STRING_CALC_CHECKS: dict[str, Callable[[], list[float]]] = {
    "control_outliers": lambda: [x for r in _j("default-s1/summary.json")["controls"]["rows"]
                                 if not r["within_3se"] for x in (r["asr"], r["exact"])],
    "mdlm_order_controls": _mdlm_order_controls,
    "seed_runs_verdict": _seed_runs,
    "twins_agreement_preregistered": lambda: _twins_agreement(True),
    "twins_agreement_mean_rule": lambda: _twins_agreement(False),
    "twins_coherent": _twins_coherent,
    "twins_eos_last_seeds": _twins_eos_last_seeds,
    "sri_abstract": _sri_abstract,
    "sri_other_checkpoints": _sri_others,
    "sri_irr_range": lambda: [min(_sri_irr()), max(_sri_irr())],
    "sri_irr_verdict": _sri_irr_verdict,
    "sri_min_successes": _sri_min_successes,
    "sri_step_goal": _sri_step_goal,
    "sri_detects_verdict": _sri_detects,
    "sri_checks_verdict": _sri_checks,
    "sri_cheap_verdict": _sri_cheap,
    "sri_first_sigma": lambda: _sri_first("sri_sigma_t"),
    "sri_first_guard": lambda: _sri_first("sri_guard"),
    "sri_first_text": lambda: _sri_first("text_level_refusal"),
    "sri_first_guard_model": lambda: _sri_first("guard_model"),
    "sri_first_self_examine": lambda: _sri_first("self_examine"),
}

_NUMBER_OR_WORD = re.compile(r"(?P<num>(?:(?<![^\s(\[])[+\-−])?(?<![\w.])\d+(?:\.\d+)?)"
                             r"|(?P<word>[A-Za-z]+(?:-[A-Za-z]+)*)")


def _printed_numbers(text: str) -> list[tuple[float, int]]:
    """(value, decimals printed) of each number in generated text, in order: digits and number words from `two` up,
    after code spans, allowlisted identifiers and allowlisted definition phrases are removed."""
    summary = json.loads((ROOT / "results/default-s1/summary.json").read_text())
    names = {x.lower() for x in ALLOWED | config_identifiers(summary)}
    text = ALLOWED_RE.sub(" ", re.sub(r"`[^`]*`", " ", text))
    text = TOKEN.sub(lambda m: " " if m.group(0).strip(".:-–,;").lower() in names else m.group(0), text)
    out = []
    for m in _NUMBER_OR_WORD.finditer(text):
        if m.group("num"):
            s = m.group("num").replace("−", "-")
            out.append((float(s), len(s.partition(".")[2])))
        elif (v := _word_value(m.group("word"))) is not None and v >= 2:
            out.append((float(v), 0))
    return out


def test_string_calcs_print_numbers_recomputed_from_the_results(paper):
    rendered = {r.path: r.text for r in paper.log if r.source == "calc" and r.fmt == "str"}
    unchecked = sorted(k for k, t in rendered.items() if _printed_numbers(t) and k not in STRING_CALC_CHECKS)
    assert not unchecked, f"string calcs that print numbers need an entry in STRING_CALC_CHECKS: {unchecked}"
    assert not set(STRING_CALC_CHECKS) - set(DERIVED), "STRING_CALC_CHECKS names a calc paper/derived*.py lacks"
    for name, text in rendered.items():
        got, want = _printed_numbers(text), STRING_CALC_CHECKS.get(name, list)()
        assert len(got) == len(want), (name, text, want)
        for (g, nd), w in zip(got, want):
            assert abs(g - w) <= 0.5 * 10 ** -nd + 1e-9, (name, text, want)
    assert len(rendered.keys() & STRING_CALC_CHECKS.keys()) >= 10


def test_number_words_parse():
    assert [_word_value(w) for w in ("three", "Thirty-two", "eight-token", "ninety-nine", "token")] == [3, 32, 8, 99,
                                                                                                      None]
    assert _printed_numbers("all three; 5 of 16 at step 2 (z from −3.2 to +2.8), `random_T16` on "
                            "Qwen2.5-Coder-1.5B-Instruct, within two standard errors") == [
        (3.0, 0), (5.0, 0), (16.0, 0), (2.0, 0), (-3.2, 1), (2.8, 1)]
