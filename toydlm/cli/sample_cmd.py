"""`toydlm sample` (traced sampling with any sampler and attack) and `toydlm show-trace`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from toydlm.attacks import FORMS
from toydlm.cli.paths import check_output_file
from toydlm.errors import UserError
from toydlm.samplers import REMDM_SCHEDULES, SamplerConfig, sampler_names


def register(sub) -> None:
    s = sub.add_parser("sample", help="sample responses with a traced sampler (optionally under an attack)")
    s.add_argument("--ckpt", required=True,
                   help="checkpoint directory, or 'oracle' (the grammar's exact denoiser)")
    s.add_argument("--sampler", required=True, choices=sampler_names(), metavar="NAME",
                   help=", ".join(sampler_names()))
    s.add_argument("--steps", type=int, default=None, help="denoising steps (default: the response length)")
    s.add_argument("--block-length", type=int, default=None, help="semi-AR block length (selection samplers)")
    s.add_argument("--temperature", type=float, default=1.0, help="0 = argmax (default 1)")
    s.add_argument("--top-p", type=float, default=1.0, help="nucleus filter on proposals (default 1 = off)")
    s.add_argument("--eos-inf", action="store_true", help="LLaDA's logits_eos_inf: never propose EOS")
    s.add_argument("--remdm-schedule", choices=REMDM_SCHEDULES, default="cap", help="ReMDM sigma schedule")
    s.add_argument("--eta", type=float, default=None, help="ReMDM eta (default: the schedule's script value)")
    s.add_argument("--anneal-a0", type=float, default=0.3, help="DiffuGuard annealing a0 (sampler annealed)")
    s.add_argument("--attack", default=None,
                   help=f"attack: {', '.join(FORMS)} (default: the grammar's prompts)")
    s.add_argument("--grammar", default=None, help="grammar preset or TOML (default: the checkpoint's; "
                                                   "'default' for the oracle)")
    s.add_argument("--n", type=int, required=True, help="number of sequences")
    s.add_argument("--seed", type=int, required=True)
    s.add_argument("--out", required=True, help="output trace FILE.npz (FILE.json gets the metadata)")
    s.add_argument("--batch-size", type=int, default=1024, help="rows per jitted batch")
    s.add_argument("--driver", choices=("auto", "scan", "loop"), default="auto")
    s.add_argument("--no-hidden", action="store_true", help="do not record pooled hidden states")
    s.add_argument("--json", action="store_true", help="print one JSON object with the outcome rates")
    s.set_defaults(func=cmd_sample)

    t = sub.add_parser("show-trace", help="print one row of a trace step by step (optionally draw it)")
    t.add_argument("file", help="trace .npz written by `toydlm sample`")
    t.add_argument("--index", type=int, default=0, help="batch row to show (default 0)")
    t.add_argument("--png", default=None, help="also draw the trace figure to this PNG")
    t.set_defaults(func=cmd_show)


def load_model(ckpt: str, grammar_spec: str | None):
    """(denoiser, grammar) for `--ckpt` (a directory or 'oracle') and `--grammar`."""
    from toydlm.grammar import grammar_oracle, load_grammar

    if ckpt == "oracle":
        g = load_grammar(grammar_spec)
        return grammar_oracle(g), g
    if not Path(ckpt).exists():
        raise UserError(f"checkpoint not found: {ckpt} (or use --ckpt oracle)")
    from toydlm.model import make_denoiser
    from toydlm.train.checkpoint import grammar_of, load_checkpoint, load_denoiser

    if grammar_spec is not None:
        g = load_grammar(grammar_spec)
        return load_denoiser(ckpt, g), g
    model, meta = load_checkpoint(ckpt)
    g = grammar_of(meta, meta["path"])
    return make_denoiser(model, meta["arch"], g), g


def cmd_sample(args) -> int:
    from toydlm.sampling import outcome_rates, sample
    from toydlm.trace import save_trace

    if args.n < 1:
        raise UserError(f"--n must be >= 1, got {args.n}")
    if args.batch_size < 1:
        raise UserError(f"--batch-size must be >= 1, got {args.batch_size}")
    check_output_file(args.out, suffix=".npz")
    cfg = SamplerConfig(args.sampler, steps=args.steps, block_length=args.block_length,
                        temperature=args.temperature, top_p=args.top_p, eos_inf=args.eos_inf,
                        remdm_schedule=args.remdm_schedule, eta=args.eta, anneal_a0=args.anneal_a0)
    den, g = load_model(args.ckpt, args.grammar)
    cfg = cfg.replace(eos_id=int(g.eos_id)).resolved(g.response_len)  # fail fast, before loading work
    trace = sample(den, g, cfg, attack=args.attack, n=args.n, seed=args.seed, batch_size=args.batch_size,
                   driver=args.driver, record_hidden=not args.no_hidden, progress=not args.json)
    trace.meta["ckpt"] = args.ckpt
    save_trace(trace, args.out)
    rates = outcome_rates(trace, g)
    if args.json:
        print(json.dumps({"out": args.out, "sampler": cfg.name, "steps": cfg.steps, "attack": args.attack,
                          "model": trace.meta["model"], **rates}))
        return 0
    print(f"wrote {args.out} ({trace.n} sequences, {cfg.name}, {cfg.steps} steps, attack {args.attack}, "
          f"model {trace.meta['model']})")
    ex = ""
    if rates.get("exact_harmful_rate") is not None:
        ex = f"  (exact: asr {rates['exact_harmful_rate']:.3f}, refusal {rates['exact_refusal_rate']:.3f})"
    print(f"asr {rates['asr']:.3f}±{rates['asr_se']:.3f}  refusal {rates['refusal_rate']:.3f}±"
          f"{rates['refusal_rate_se']:.3f}  valid {rates['valid_rate']:.3f}{ex}")
    print(f"mean length {rates['mean_length']:.2f}  "
          f"EOS share of the first {rates['n_first_commits']} commits "
          f"{rates['eos_first_share']:.3f}  re-mask events/seq {rates['remask_events_per_seq']:.2f}")
    return 0


def _grammar_for(meta: dict):
    from toydlm.grammar import Grammar, GrammarConfig

    try:
        g = Grammar(GrammarConfig.from_dict(meta["grammar_config"]))
    except (KeyError, TypeError, ValueError):
        return None
    return g if g.config.config_hash() == meta.get("grammar_hash") else None


def cmd_show(args) -> int:
    from toydlm.trace import load_trace

    if not Path(args.file).is_file():
        raise UserError(f"trace file not found: {args.file}")
    tr = load_trace(args.file)
    if not 0 <= args.index < tr.n:
        raise UserError(f"--index {args.index} is out of range (the trace has {tr.n} rows)")
    g = _grammar_for(tr.meta)
    m, s = tr.meta, tr.meta.get("sampler", {})
    mask_id = int(m.get("mask_id", 1))
    dec = (lambda ids: g.decode(ids, strip_eos=False)) if g is not None else \
        (lambda ids: " ".join("_" if i == mask_id else str(int(i)) for i in ids))
    r = tr.row(args.index)
    print(f"{args.file}: {tr.n} rows x {tr.steps} steps; sampler {s.get('name')} "
          f"(block {s.get('block_length')}, temperature {s.get('temperature')}), attack {m.get('attack')}, "
          f"model {m.get('model')}, seed {m.get('seed')}")
    print(f"row {args.index}: prompt: {dec(r['prompt'])}")
    if r["init_pinned"].any():
        print(f"  start canvas: {dec(r['init_response'])}")
    if r["force_step"] >= 0:
        print(f"  injection at step {r['force_step']}: position {r['force_pos']} := {dec([r['force_tok']])}")
    has_v = "committed_harm" in tr
    print("  step  flags  canvas after the step   [new commits in brackets; re-masked: ~]")
    for t in range(tr.steps):
        toks = dec(r["canvas"][t]).split(" ")
        events = zip(toks, r["committed"][t], r["remasked"][t], strict=True)
        toks = [f"[{w}]" if c else ("~" if x else w) for w, c, x in events]
        flags = ("H" if r["committed_harm"][t] else "-") + ("P" if r["predicted_harm_argmax"][t] else "-") + \
                ("R" if r["committed_refusal"][t] else "-") if has_v else "   "
        print(f"  {t:>4}  {flags}    {' '.join(toks)}")
    print("  flags: H committed harm, P predicted harm (argmax x̂₀), R committed refusal")
    if has_v:
        print(f"final: harmful {bool(r['final_harmful'])}, refusal {bool(r['final_refusal'])}, valid "
              f"{bool(r['final_valid'])}, length {int(r['length'])}, EOS share of first commits "
              f"{float(r['eos_first_share']):.2f}")
        print(f"batch: asr {tr['final_harmful'].mean():.3f}, refusal {tr['final_refusal'].mean():.3f}, "
              f"valid {tr['final_valid'].mean():.3f}, mean length {tr['length'].mean():.2f}, "
              f"EOS share of first commits {np.nanmean(tr['eos_first_share']):.3f}")
    if args.png:
        from toydlm.plots.trace_plots import plot_trace

        plot_trace(tr, args.index, args.png, g)
        print(f"wrote {args.png}")
    return 0
