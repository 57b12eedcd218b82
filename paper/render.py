"""The template language: value placeholders, formats, conditional blocks and generated directives.

Syntax (everything between `{{` and `}}`, on one line):

- `{{ SOURCE : PATH | FORMAT }}` a value. SOURCE is a result file relative to `results/`
  (`exp2_sampler_swap.json`, `default-s1/summary.json`) or `seed` / `goals` (files in `paper/`).
  PATH is dotted keys; a key with dots or other punctuation is double-quoted (`"lambda_r=0.5"`);
  `[3]` indexes a list; `[k=v,k2=v2]` picks the one list element whose fields equal those values.
  FORMAT: `fN` (N decimals), `+fN` (signed), `pctN` (percent, N decimals), `pmN` (value ± the
  sibling `<key>_se`), `ciN` (a [low, high] pair), `int`, `str`, `word` (an integer 0–99 as an English
  word: `three`, `thirty-two`), `nword` (the length of a list or object as a word: `three` for a
  three-element list); `Word` / `Nword` capitalise the first letter for the start of a sentence.
  Default: `f3` for numbers.
- `{{ calc: NAME | FORMAT }}` a quantity derived in code from the results (paper/derived.py).
- `{{ table: NAME }}`, `{{ figure: NAME }}` generated tables and figures (numbered in order);
  `{{ ref: NAME }}` the number of that table or figure.
- `{{ if: SOURCE }} ... {{ else }} ... {{ endif }}` keeps the first part when an optional SOURCE
  exists; `{{ if: SOURCE : PATH }}` (any source) when PATH resolves in it. Blocks do not nest.
- `{{ missing: SOURCE }}` a marked "not yet run" note with the command that produces SOURCE.
- `{{ block: NAME }}` a generated Markdown block without a number (e.g. the reproduction commands).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from paper.sources import OPTIONAL, MissingSourceError, PlaceholderError, Sources, command_for, path_for

PLACEHOLDER = re.compile(r"\{\{\s*(.*?)\s*\}\}")
IF_BLOCK = re.compile(r"\{\{\s*if:\s*([^}]*?)\s*\}\}(.*?)(?:\{\{\s*else\s*\}\}(.*?))?\{\{\s*endif\s*\}\}", re.S)
FORMAT = re.compile(r"^(?:(\+?f|pct|pm|ci)(\d)|int|str|[wW]ord|[nN]word)$")
MINUS = "\u2212"


@dataclass
class Rendered:
    """One resolved value placeholder: what was asked, the source value and the text put in the paper."""

    spec: str
    source: str
    path: str
    fmt: str
    value: object
    text: str
    se: float | None = None


@dataclass
class Context:
    """Everything a render needs: sources, generators, numbering, and a log of resolved values."""

    sources: Sources
    tables: dict[str, Callable]
    figures: dict[str, Callable]
    derived: dict[str, Callable]
    blocks: dict[str, Callable] = field(default_factory=dict)
    numbers: dict[str, int] = field(default_factory=dict)
    log: list[Rendered] = field(default_factory=list)


def parse_path(path: str) -> list:
    """Split a PATH into steps: str keys, int indexes and dict selectors."""
    steps: list = []
    i, n = 0, len(path)
    while i < n:
        c = path[i]
        if c == ".":
            i += 1
        elif c == '"':
            j = path.index('"', i + 1)
            steps.append(path[i + 1:j])
            i = j + 1
        elif c == "[":
            j = path.index("]", i)
            body = path[i + 1:j].strip()
            if re.fullmatch(r"-?\d+", body):
                steps.append(int(body))
            else:
                sel = {}
                for part in body.split(","):
                    k, _, v = part.partition("=")
                    if not _:
                        raise PlaceholderError(f"bad selector [{body}] in {path!r}")
                    sel[k.strip()] = v.strip()
                steps.append(sel)
            i = j + 1
        else:
            m = re.match(r'[^.\["]+', path[i:])
            steps.append(m.group(0).strip())
            i += m.end()
    return steps


def _matches(row: dict, sel: dict[str, str]) -> bool:
    for k, v in sel.items():
        x = row.get(k)
        if isinstance(x, bool) or not isinstance(x, int | float):
            if str(x) != v:
                return False
        else:
            try:
                if float(v) != float(x):
                    return False
            except ValueError:
                return False
    return True


def resolve(data, path: str | list):
    """Follow PATH (text or parsed steps) into parsed JSON; raise PlaceholderError naming the failing step."""
    cur = data
    for step in parse_path(path) if isinstance(path, str) else path:
        if isinstance(step, dict):
            if not isinstance(cur, list):
                raise PlaceholderError(f"{path!r}: selector {step} applied to a non-list")
            hits = [r for r in cur if isinstance(r, dict) and _matches(r, step)]
            if len(hits) != 1:
                raise PlaceholderError(f"{path!r}: selector {step} matches {len(hits)} rows, not one")
            cur = hits[0]
        elif isinstance(step, int):
            if not isinstance(cur, list) or not -len(cur) <= step < len(cur):
                raise PlaceholderError(f"{path!r}: index [{step}] out of range")
            cur = cur[step]
        else:
            if not isinstance(cur, dict) or step not in cur:
                raise PlaceholderError(f"{path!r}: no key {step!r}")
            cur = cur[step]
    return cur


def _num(x: float, nd: int, signed: bool = False) -> str:
    s = f"{x:+.{nd}f}" if signed else f"{x:.{nd}f}"
    if float(s) == 0:  # never print "-0.000"
        s = s.replace("-", "+") if signed else s.lstrip("-")
    return s.replace("-", MINUS)


_UNITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
          "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen")
_TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")


def number_word(n: int) -> str:
    """An integer 0–99 as an English word: `three`, `twenty`, `thirty-two`."""
    if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= 99:
        raise PlaceholderError(f"format 'word' needs an integer 0–99, got {n!r}")
    if n < 20:
        return _UNITS[n]
    tens, unit = divmod(n, 10)
    return _TENS[tens] + (f"-{_UNITS[unit]}" if unit else "")


def _as_word(value, fmt: str) -> str:
    if fmt.lower() == "nword":
        if not isinstance(value, list | tuple | dict):
            raise PlaceholderError(f"format {fmt!r} needs a list or object, got {value!r}")
        value = len(value)
    elif isinstance(value, float) and not isinstance(value, bool) and value.is_integer():
        value = int(value)
    w = number_word(value)
    return w[0].upper() + w[1:] if fmt[0].isupper() else w


def fmt_value(value, fmt: str, se: float | None = None) -> str:
    """Format one value; None / NaN print as an en dash."""
    m = FORMAT.match(fmt)
    if not m:
        raise PlaceholderError(f"unknown format {fmt!r}")
    if fmt == "str":
        return str(value)
    if fmt.lower() in ("word", "nword"):
        return _as_word(value, fmt)
    if fmt.startswith("ci"):
        lo, hi = value
        return f"[{_num(lo, int(m.group(2)), True)}, {_num(hi, int(m.group(2)), True)}]"
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise PlaceholderError(f"format {fmt!r} needs a number, got {value!r}")
    if fmt == "int":
        if abs(value - round(value)) > 1e-9:
            raise PlaceholderError(f"format 'int' on a non-integer {value!r}")
        return str(int(round(value)))
    style, nd = m.group(1), int(m.group(2))
    if style == "pct":
        return _num(100 * value, nd) + "%"
    if style == "pm":
        if se is None:
            raise PlaceholderError("format 'pm' needs a sibling '<key>_se'")
        return f"{_num(value, nd)} ± {_num(se, nd)}"
    return _num(value, nd, signed=style == "+f")


def _value(spec: str, ctx: Context) -> str:
    body, _, fmt = spec.partition("|")
    fmt = fmt.strip()
    src, sep, path = body.partition(":")
    src, path = src.strip(), path.strip()
    if not sep or not path:
        raise PlaceholderError(f"placeholder {{{{ {spec} }}}} needs SOURCE : PATH")
    if src == "calc":
        fn = ctx.derived.get(path)
        if fn is None:
            raise PlaceholderError(f"unknown calc {path!r}")
        value, se = fn(ctx.sources), None
    else:
        data = ctx.sources.get(src)
        value = resolve(data, path)
        se = None
        if fmt.startswith("pm"):
            steps = parse_path(path)
            parent = resolve(data, steps[:-1])
            se = parent.get(f"{steps[-1]}_se") if isinstance(parent, dict) else None
    fmt = fmt or ("str" if isinstance(value, str) else "f3")
    text = fmt_value(value, fmt, se)
    ctx.log.append(Rendered(spec, src, path, fmt, value, text, se))
    return text


def not_yet_run(name: str) -> str:
    """The marked note that stands in for an optional result that does not exist yet."""
    extra = " on a GPU machine, summarised into that file," if name == "bridge_gpu.json" else ""
    return (f"> **Not yet run.** `{path_for(name)}` is absent at build time; produce it with "
            f"`{command_for(name)}`{extra} and rebuild the paper.")


def _condition(cond: str, sources: Sources) -> bool:
    src, _, path = cond.partition(":")
    src, path = src.strip(), path.strip()
    if src not in OPTIONAL and not path:
        raise PlaceholderError(f"`if:` without a PATH may only test optional sources, not {src!r}")
    if not sources.has(src):
        return False
    if not path:
        return True
    try:
        resolve(sources.get(src), path)
    except PlaceholderError:
        return False
    return True


def expand_conditionals(text: str, sources: Sources) -> str:
    """Replace each if/else/endif block by the branch its condition selects."""
    return IF_BLOCK.sub(lambda m: m.group(2) if _condition(m.group(1), sources) else (m.group(3) or ""), text)


def number_items(text: str) -> dict[str, int]:
    """Number tables and figures separately, in order of appearance."""
    out: dict[str, int] = {}
    counts = {"table": 0, "figure": 0}
    for m in PLACEHOLDER.finditer(text):
        directive, sep, name = (part.strip() for part in m.group(1).partition(":"))
        if directive in counts and sep:
            if name in out:
                raise PlaceholderError(f"{directive} {name!r} placed twice (names are shared by tables and figures)")
            counts[directive] += 1
            out[name] = counts[directive]
    return out


def _directive(directive: str, name: str, ctx: Context) -> str:
    """The text of a `table:`, `figure:`, `ref:`, `missing:` or `block:` directive."""
    if directive == "ref":
        if name not in ctx.numbers:
            raise PlaceholderError(f"ref to unknown table/figure {name!r}")
        return str(ctx.numbers[name])
    if directive == "missing":
        return not_yet_run(name)
    if directive == "block":
        if name not in ctx.blocks:
            raise PlaceholderError(f"unknown block {name!r}")
        return ctx.blocks[name](ctx.sources)
    gen = (ctx.tables if directive == "table" else ctx.figures).get(name)
    if gen is None:
        raise PlaceholderError(f"unknown {directive} {name!r}")
    body, caption = gen(ctx.sources)
    label = f"{'Table' if directive == 'table' else 'Figure'} {ctx.numbers[name]}."
    if directive == "table":
        return f"*{label} {caption}*\n\n{body}"
    return f"![{label}]({body})\n\n*{label} {caption}*"


def render(template: str, ctx: Context) -> str:
    """Render the template: conditionals first, then numbering, then every placeholder."""
    text = expand_conditionals(template, ctx.sources)
    ctx.numbers = number_items(text)

    def one(m: re.Match) -> str:
        spec = m.group(1)
        directive, sep, rest = spec.partition(":")
        if sep and directive.strip() in ("table", "figure", "ref", "missing", "block"):
            return _directive(directive.strip(), rest.strip(), ctx)
        try:
            return _value(spec, ctx)
        except MissingSourceError:
            raise
        except (PlaceholderError, KeyError, TypeError, ValueError) as e:
            raise PlaceholderError(f"{{{{ {spec} }}}}: {e}") from e

    return PLACEHOLDER.sub(one, text)
