"""report.md and a self-contained report.html (images inlined) from an audit.json record."""

from __future__ import annotations

import base64
import html
from pathlib import Path

from toydlm.io import atomic_write_text
from toydlm.real.audit import figures

CELL_COLUMNS = ("sampler", "attack", "temperature", "gen_length", "n", "refusal_rate", "asr", "mean_length",
                "mean_len_refusal", "mean_len_compliance", "truncated_share", "eos_first_excess", "hrr", "frr")


def _fmt(v) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:.3f}" if abs(v) < 10 else f"{v:.1f}"
    if isinstance(v, list) and len(v) == 2 and all(isinstance(x, float) for x in v):
        return f"[{v[0]:.2f}, {v[1]:.2f}]"
    return str(v)


def _rate_ci(c: dict, key: str) -> str:
    return "—" if c[key] is None else f"{c[key]:.3f} {_fmt(c[f'{key}_ci95'])}"


def cell_table(cells: list[dict]) -> list[list[str]]:
    head = [k for k in CELL_COLUMNS]
    rows = [[_rate_ci(c, k) if k in ("refusal_rate", "asr") else _fmt(c.get(k)) for k in head] for c in cells]
    return [head, *rows]


def length_table(rows: list[dict]) -> list[list[str]]:
    head = ["sampler", "attack", "T", "L", "k", "n ≤ k", "P(refusal | len ≤ k)", "P(refusal)", "ASR(len ≤ k)", "ASR"]
    out = [head]
    for r in rows:
        ci = r["p_refusal_given_len_le_k_ci95"]
        p = "—" if r["p_refusal_given_len_le_k"] is None else f"{r['p_refusal_given_len_le_k']:.3f} {_fmt(ci)}"
        out.append([r["sampler"], r["attack"], _fmt(r["temperature"]), str(r["gen_length"]), str(r["k"]), str(r["n"]),
                    p, _fmt(r["p_refusal"]), _fmt(r["asr_given_len_le_k"]), _fmt(r["asr"])])
    return out


def recovery_table(recovery: dict) -> list[list[str]]:
    out = [["curve", "x", "sampler", "T", "L", "n", "refusal rate", "ASR"]]
    for kind, pts in recovery.items():
        for p in sorted(pts, key=lambda p: (p["temperature"], p["gen_length"], p["x"])):
            out.append([kind, str(p["x"]), p["sampler"], _fmt(p["temperature"]), str(p["gen_length"]), str(p["n"]),
                        _rate_ci(p, "refusal_rate"), _rate_ci(p, "asr")])
    return out


def _md_row(cells: list[str]) -> str:
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


def _md_table(t: list[list[str]]) -> str:
    """A markdown table; a `|` inside a cell (as in P(refusal | len ≤ k)) is escaped."""
    return "\n".join([_md_row(t[0]), "|" + "---|" * len(t[0]), *(_md_row(r) for r in t[1:])])


def _html_table(t: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(x)}</th>" for x in t[0])
    body = "".join("<tr>" + "".join(f"<td>{html.escape(x)}</td>" for x in r) + "</tr>" for r in t[1:])
    return f"<table><tr>{head}</tr>{body}</table>"


def sections(a: dict, out: Path) -> list[tuple[str, str, object]]:
    """(title, text, table or figure path) in report order; figures are written here."""
    m, hist = a["model"], a.get("timing_history") or [a["timing"]]
    state = "Complete." if a["complete"] else "INCOMPLETE: stopped at --max-minutes; rerun the same command to resume."
    rows, toks, secs = (sum(h[k] for h in hist) for k in ("rows", "tokens", "seconds"))
    est = next((h["estimated_seconds"] for h in hist if h.get("estimated_seconds")), None)
    timing = (f"Sampling over {len(hist)} invocation(s): {rows} rows, {toks} tokens in {secs:.0f} s" +
              (f"; the estimate printed after the first batch was {est:.0f} s." if est else "."))
    intro = (f"Model `{m['name']}` ({m['kind']}), weights sha256 `{m['sha256'][:16]}…`; judge: {a['judge']['judge']} "
             f"(refusal: keyword). {state} {timing}")
    out_secs = [("Audit", intro, None), ("Cells", "Refusal rate and ASR with 95% bootstrap intervals over prompts. "
                "eos_first_excess: 0 for a value-blind order, +1 when every end token is committed first, "
                "-1 when every content token is (null for AR).", cell_table(a["cells"]))]
    out_secs.append(("Rates", "", figures.fig_rates(a["cells"], out / "fig_rates.png")))
    out_secs.append(("Length test", "P(refusal | the response ended within k tokens) against P(refusal): a sampler "
                     "that ends answers early draws from the short-answer distribution. Truncated answers never "
                     "count as ending early.", length_table(a["length_test"])))
    out_secs.append(("Length test figure", "", figures.fig_length_test(a["length_test"], out / "fig_length_test.png")))
    out_secs.append(("Lengths by verdict", "", figures.fig_lengths(a["length_distributions"], out / "fig_lengths.png")))
    sweep = figures.fig_sweep(a["cells"], out / "fig_gen_length_sweep.png")
    if sweep is not None:
        out_secs.append(("Gen-length sweep", "Mean answer length and refusal rate as the canvas grows.", sweep))
    if a["recovery"]:
        out_secs.append(("Recovery curves", "Prefill: the reply forced to open with the first k tokens of a "
                         "compliance opener. Injection: a refusal opener forced after the first t tokens of the "
                         "model's own compliant answer.", recovery_table(a["recovery"])))
        out_secs.append(("Recovery figure", "", figures.fig_recovery(a["recovery"], out / "fig_recovery.png")))
    return out_secs


def write_reports(a: dict, out: Path) -> tuple[Path, Path]:
    """report.md (figures linked) and report.html (figures inlined as base64)."""
    md, body = ["# Step-wise refusal audit"], []
    for title, text, obj in sections(a, out):
        md.append(f"\n## {title}\n")
        body.append(f"<h2>{html.escape(title)}</h2>")
        if text:
            md.append(text + "\n")
            body.append(f"<p>{html.escape(text)}</p>")
        if isinstance(obj, list):
            md.append(_md_table(obj))
            body.append(_html_table(obj))
        elif isinstance(obj, Path):
            md.append(f"![{title}]({obj.name})")
            data = base64.b64encode(obj.read_bytes()).decode()
            body.append(f'<img alt="{html.escape(title)}" src="data:image/png;base64,{data}">')
    style = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto}table{border-collapse:collapse;"
             "font-size:12px}td,th{border:1px solid #ccc;padding:2px 6px}img{max-width:100%}")
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>toydlm audit</title><style>{style}</style>"
            f"</head><body><h1>Step-wise refusal audit</h1>{''.join(body)}</body></html>")
    atomic_write_text(out / "report.md", "\n".join(md) + "\n")
    atomic_write_text(out / "report.html", page)
    return out / "report.md", out / "report.html"
