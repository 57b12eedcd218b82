"""`toydlm audit`: the step-wise refusal analysis of any checkpoint, AR or diffusion (extra [bridge])."""

from __future__ import annotations

import json

from toydlm.cli.bridge_cmd import need_torch
from toydlm.cli.paths import check_output_dir
from toydlm.io import to_jsonable

SUMMARY_KEYS = ("sampler", "attack", "temperature", "gen_length", "n", "refusal_rate", "refusal_rate_ci95", "asr",
                "mean_length", "eos_first_excess", "hrr", "frr")


def register(sub) -> None:
    a = sub.add_parser("audit", help="step-wise refusal analysis of any checkpoint (AR or diffusion), in one command")
    a.add_argument("--model", required=True, help="a local model folder (safetensors or GGUF) or a `toydlm weights` "
                   "name")
    a.add_argument("--kind", required=True, choices=("ar", "dlm"))
    a.add_argument("--out", required=True, help="folder for audit.json, report.md, report.html and the cell store")
    a.add_argument("--prompts", default="harmbench", help="harmful prompts: a shipped set (advbench, harmbench, "
                   "jailbreakbench, strongreject) or a .json/.jsonl/.csv file with 'instruction' (default harmbench)")
    a.add_argument("--harmless", default=None, help="benign prompts for over-refusal: 'harmless' or a file")
    a.add_argument("--n", type=int, default=None, help="first N prompts of each set")
    a.add_argument("--attacks", default="raw", help="comma-separated: raw, refusal_suppression, prefix_injection, "
                   "roleplay, hypothetical, flip, flip_words, prefill:<text>, and the recovery curves prefill "
                   "(AR and diffusion) and injection (AR)")
    a.add_argument("--samplers", default=None, help="comma-separated sampler specs: a lab sampler name, NAME@B for "
                   "semi-AR blocks of B, NAME+eos_last or NAME+eos_forbidden for the end-token controls "
                   "(default: ar for AR; ar_order, random, low_confidence, low_confidence@32, entropy and both "
                   "controls for diffusion)")
    a.add_argument("--samples", type=int, default=1, help="samples per prompt")
    a.add_argument("--temperature", default="0.7", help="one or more temperatures, comma-separated")
    a.add_argument("--gen-length", default="96", help="one or more maximum response lengths, comma-separated "
                   "(every cell runs at each)")
    a.add_argument("--steps", type=int, default=None, help="diffusion steps (default: one per position)")
    a.add_argument("--judge", default="keyword", help="harm judge: keyword (no download), llm:NAME|PATH or "
                   "classifier:PATH")
    a.add_argument("--device", default="cpu")
    a.add_argument("--dtype", default="float32", choices=("float32", "bfloat16", "float16"))
    a.add_argument("--device-map", default=None, help="accelerate placement over every GPU and the host (auto, ...)")
    a.add_argument("--batch-size", type=int, default=16)
    a.add_argument("--seed", type=int, default=0)
    a.add_argument("--max-minutes", type=float, default=None, help="stop cleanly between batches after this long; "
                   "rerun the same command to resume")
    a.add_argument("--trust-remote-code", action="store_true", help="allow the checkpoint's own modelling code "
                   "(LLaDA, Dream)")
    a.add_argument("--mask-id", type=int, default=None, help="mask token id, when neither tokenizer nor config "
                   "names one")
    shift = a.add_mutually_exclusive_group()
    shift.add_argument("--logits-shift", dest="logits_shift", action="store_const", const=True, default=None,
                       help="position i predicts token i + 1 (Dream; read from the config by default)")
    shift.add_argument("--no-logits-shift", dest="logits_shift", action="store_const", const=False)
    a.add_argument("--no-chat-template", action="store_true", help="feed the prompt text as it is (a base model)")
    a.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples over prompts for every interval")
    a.add_argument("--no-progress", action="store_true")
    a.set_defaults(func=cmd_audit)


def config_from_args(args):
    """The frozen AuditConfig of the command line (lists parsed, nothing loaded)."""
    from toydlm.real.audit.spec import AuditConfig, split_attacks, split_numbers

    samplers = tuple(s.strip() for s in args.samplers.split(",") if s.strip()) if args.samplers else None
    return AuditConfig(
        model=args.model, kind=args.kind, out=args.out, prompts=args.prompts, harmless=args.harmless, n=args.n,
        attacks=split_attacks(args.attacks), samplers=samplers, samples=args.samples,
        temperatures=split_numbers(args.temperature, "--temperature", float),
        gen_lengths=split_numbers(args.gen_length, "--gen-length", int), steps=args.steps, judge=args.judge,
        device=args.device, dtype=args.dtype, device_map=args.device_map, batch_size=args.batch_size,
        seed=args.seed, max_minutes=args.max_minutes, trust_remote_code=args.trust_remote_code,
        mask_id=args.mask_id, logits_shift=args.logits_shift, chat=not args.no_chat_template, n_boot=args.n_boot,
        progress=not args.no_progress)


def cmd_audit(args) -> int:
    from toydlm.real.audit.spec import check_config

    cfg = config_from_args(args)
    check_config(cfg)
    need_torch()
    from toydlm.bridge.loading import require_local
    from toydlm.real.twins.student_setup import student_root

    if student_root(cfg.model) is None:  # a twins student is checked when the audit inspects it
        require_local(cfg.model)  # an unknown model fails before --out is created
    check_output_dir(cfg.out)
    from toydlm.real.audit.runner import run_audit

    result = run_audit(cfg)
    if result is None:  # a helper process of a multi-process launch: process 0 reports
        return 0
    for c in result["cells"]:
        print(json.dumps(to_jsonable({k: c[k] for k in SUMMARY_KEYS})))
    state = "complete" if result["complete"] else "INCOMPLETE (stopped at --max-minutes; rerun to resume)"
    print(f"audit {state}: wrote {cfg.out}/audit.json, report.md and report.html")
    return 0
