"""`toydlm grammar sample|stats`: draw pairs from the grammar and print its exact rates."""

from __future__ import annotations

import json

import numpy as np

from toydlm.cli.paths import check_output_file
from toydlm.errors import UserError
from toydlm.grammar import is_harmful, is_refusal, load_grammar
from toydlm.io import atomic_write_text


def register(sub) -> None:
    g = sub.add_parser("grammar", help="sample the toy grammar or print its exact rates")
    gs = g.add_subparsers(dest="grammar_command", metavar="ACTION")
    gs.required = True
    s = gs.add_parser("sample", help="write N prompt-response pairs as JSONL")
    s.add_argument("--n", type=int, required=True, help="number of pairs")
    s.add_argument("--seed", type=int, required=True)
    s.add_argument("--config", default=None, help="preset name or grammar TOML file (default: default)")
    s.add_argument("--out", required=True, help="output .jsonl path")
    s.set_defaults(func=cmd_sample)
    t = gs.add_parser("stats", help="exact refusal/harm rates next to empirical ones")
    t.add_argument("--config", default=None, help="preset name or grammar TOML file (default: default)")
    t.add_argument("--n", type=int, default=20000, help="pairs for the empirical rates")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--json", action="store_true", help="print one JSON object")
    t.set_defaults(func=cmd_stats)


def cmd_sample(args) -> int:
    if args.n < 1:
        raise UserError(f"--n must be >= 1, got {args.n}")
    g = load_grammar(args.config)
    check_output_file(args.out)
    s = g.sample(args.n, args.seed)
    harm, ref = is_harmful(g, s.response_ids), is_refusal(g, s.response_ids)
    lines = []
    for i in range(len(s)):
        lines.append(json.dumps({
            "prompt": g.decode(s.prompt_ids[i]), "response": g.decode(s.response_ids[i]),
            "prompt_ids": s.prompt_ids[i].tolist(), "response_ids": s.response_ids[i].tolist(),
            "topic_kind": "harmful" if s.topic_kind[i] else "benign",
            "attack": g.wrapper_name(int(s.wrapper[i])),
            "harmful": bool(harm[i]), "refusal": bool(ref[i]),
        }))
    atomic_write_text(args.out, "\n".join(lines) + "\n")
    print(f"wrote {len(lines)} pairs to {args.out} (grammar {g.config.name}, hash {g.config.config_hash()})")
    return 0


def _se(p: float, n: int) -> float:
    return float(np.sqrt(max(p * (1 - p), 1e-12) / max(n, 1)))


def grammar_stats(g, n: int, seed: int) -> dict:
    """Exact rates overall, per topic kind and per attack family, with empirical ones beside."""
    s = g.sample(n, seed)
    harm, ref = is_harmful(g, s.response_ids), is_refusal(g, s.response_ids)

    def row(exact: dict, sel: np.ndarray) -> dict:
        m = int(sel.sum())
        er, eh = (float(ref[sel].mean()), float(harm[sel].mean())) if m else (float("nan"),) * 2
        return {**exact, "n_empirical": m, "empirical_refusal_rate": er, "empirical_harmful_rate": eh,
                "empirical_refusal_se": _se(er, m) if m else None, "empirical_harmful_se": _se(eh, m) if m else None}

    out = {"grammar": g.config.name, "config_hash": g.config.config_hash(), "seed": seed,
           **row(g.exact_rates(), np.ones(len(s), bool))}
    out["per_topic_kind"] = {k: row(g.exact_rates(topic_kind=i), s.topic_kind == i)
                             for i, k in enumerate(("benign", "harmful"))}
    fams = {}
    for w in range(g.n_wrappers):
        name = g.wrapper_name(w) or "none"
        fams[name] = {"all": row(g.exact_rates(wrapper=w), s.wrapper == w),
                      "harmful_prompts": row(g.exact_rates(topic_kind=1, wrapper=w),
                                             (s.wrapper == w) & (s.topic_kind == 1)),
                      "unseen": name in g.config.unseen_families}
    out["per_family"] = fams
    return out


def cmd_stats(args) -> int:
    if args.n < 1:
        raise UserError(f"--n must be >= 1, got {args.n}")
    g = load_grammar(args.config)
    st = grammar_stats(g, args.n, args.seed)
    if args.json:
        print(json.dumps(st))
        return 0
    print(f"grammar {st['grammar']} (hash {st['config_hash']}), empirical over {args.n} pairs, seed {args.seed}")
    hdr = f"{'slice':<28}{'refusal exact':>14}{'empirical':>18}{'harmful exact':>15}{'empirical':>18}"
    print(hdr)
    print("-" * len(hdr))

    def line(name: str, r: dict) -> None:
        er = f"{r['empirical_refusal_rate']:.3f}±{r['empirical_refusal_se']:.3f}" if r["n_empirical"] else "-"
        eh = f"{r['empirical_harmful_rate']:.3f}±{r['empirical_harmful_se']:.3f}" if r["n_empirical"] else "-"
        print(f"{name:<28}{r['refusal_rate']:>14.3f}{er:>18}{r['harmful_rate']:>15.3f}{eh:>18}")

    line("all prompts", st)
    for k, r in st["per_topic_kind"].items():
        line(f"{k} prompts", r)
    for f, r in st["per_family"].items():
        line(f"harmful, wrapper {f}" + (" (unseen)" if r["unseen"] else ""), r["harmful_prompts"])
    return 0
