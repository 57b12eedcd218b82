"""`toydlm train`: train a toy AR or masked-diffusion model and checkpoint it."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("train", help="train a toy AR or masked-diffusion (MDLM) transformer")
    p.add_argument(
        "--arch", required=True, help="ar (causal, next-token NLL) or mdlm (bidirectional, MDLM NELBO)"
    )
    p.add_argument("--preset", default="default", help="model/training size: tiny, default or small")
    p.add_argument("--out", required=True, help="run directory (checkpoints, log.jsonl, summary.json)")
    p.add_argument("--steps", type=int, default=None, help="schedule length in steps (default: the preset's)")
    p.add_argument("--seed", type=int, default=0, help="seed of the init, the data stream and the masks")
    p.add_argument(
        "--seeds", default=None,
        help="comma-separated seeds (e.g. 0,1,2): train one model per seed in one program (a seed ensemble), "
             "member s in --out/seed-<s>; replaces --seed",
    )
    p.add_argument(
        "--resume", action="store_true", help="continue the run in --out from its latest checkpoint"
    )
    p.add_argument(
        "--grammar", default=None, help="grammar preset name or TOML file (default: the default grammar)"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train)


def cmd_train(args) -> int:
    from toydlm.cli.paths import check_output_dir
    from toydlm.train import train

    check_output_dir(args.out)
    if args.seeds is not None:
        return _train_ensemble(args)
    r = train(
        args.arch,
        args.preset,
        args.out,
        steps=args.steps,
        seed=args.seed,
        resume=args.resume,
        grammar=args.grammar,
        progress=not args.no_progress,
    )
    print(_describe(r))
    return 0


def _describe(r: dict) -> str:
    sps = f", {r['steps_per_s']:.1f} steps/s" if r.get("steps_per_s") else ""
    floor = f" (entropy floor {r['entropy_floor']:.4f})" if r.get("entropy_floor") is not None else ""
    return (f"trained {r['arch']}/{r['preset']} seed {r['seed']} to step {r['final_step']}/{r['steps']} "
            f"in {r['seconds']:.0f} s{sps}: held-out loss {r['eval_loss']:.4f} nats/token{floor}; "
            f"checkpoint {r['checkpoint']}")


def _train_ensemble(args) -> int:
    from pathlib import Path

    from toydlm.train.ensemble import parse_seeds, train_ensemble

    seeds = parse_seeds(args.seeds)
    out = Path(args.out)
    rs = train_ensemble(args.arch, args.preset, [out / f"seed-{s}" for s in seeds], seeds, steps=args.steps,
                        resume=args.resume, grammar=args.grammar, progress=not args.no_progress)
    for r in rs:
        print(_describe(r))
    return 0
