"""The paper is generated from results: fresh render == committed paper.md, every number round-trips to its
source, the template holds no hand-typed numbers, and seed-paper quotes are verbatim in the repository's
copy of the seed-study notes (docs/seed-study-excerpts.md)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from paper.build import build, build_markdown, main, to_html
from paper.lint import config_identifiers, hand_typed_numbers
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


def test_every_placeholder_round_trips_to_its_source(paper):
    assert len(paper.log) > 100
    checked = 0
    for r in paper.log:
        if r.source != "calc":
            rel = (REQUIRED.get(r.source) or OPTIONAL[r.source])[0]
            raw = _independent_lookup(json.loads((ROOT / rel).read_text()), r.path)
            assert raw == r.value, r.spec
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


def test_the_digit_lint_catches_a_planted_number():
    assert hand_typed_numbers("ASR fell to 0.42 {{ x : y | f2 }}") == ["0.42"]
    assert hand_typed_numbers("arXiv 2602.02600, Model v2, {{ a : b.c[3] | pct1 }}") == []


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
