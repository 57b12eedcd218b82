"""`toydlm bridge run|tiny`: the step-wise analysis on Hugging Face checkpoints (extra [bridge])."""

from __future__ import annotations

import json
import os

from toydlm.bridge.attacks import FORMS
from toydlm.cli.paths import check_output_dir
from toydlm.errors import UserError
from toydlm.io import to_jsonable


def register(sub) -> None:
    b = sub.add_parser("bridge", help="run the lab's samplers and judges on Hugging Face checkpoints")
    bs = b.add_subparsers(dest="bridge_command", metavar="ACTION")
    bs.required = True
    r = bs.add_parser("run", help="sample a checkpoint with a toy-lab sampler and measure refusal dynamics")
    r.add_argument("--model", required=True, help="local model folder (safetensors or GGUF), "
                   "or a `toydlm weights` name")
    r.add_argument("--kind", required=True, choices=("ar", "dlm"))
    r.add_argument("--prompts", required=True, help="harmful prompts: a shipped set (advbench, harmbench, "
                   "jailbreakbench, strongreject) or a .json/.jsonl/.csv file with 'instruction'")
    r.add_argument("--harmless", default=None, help="benign prompts (over-refusal, SRI centres): 'harmless' "
                   "(the shipped Alpaca set) or a file")
    r.add_argument("--sampler", default=None, help="toy-lab sampler name (default: ar / low_confidence)")
    r.add_argument("--steps", type=int, default=None)
    r.add_argument("--gen-length", type=int, default=32)
    r.add_argument("--block-length", type=int, default=None)
    r.add_argument("--temperature", type=float, default=0.0)
    r.add_argument("--eos-inf", action="store_true")
    r.add_argument("--device", default="cpu", help="where the model (without --device-map) and the judge run")
    r.add_argument("--device-map", default=None, metavar="MAP",
                   help="let accelerate place the model over every GPU (and the host): auto, balanced, "
                   "balanced_low_0 or sequential; inputs go to its first parameter's device")
    r.add_argument("--dtype", default="float32", choices=("float32", "bfloat16", "float16"))
    r.add_argument("--n", type=int, default=None, help="first N prompts of each file")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--batch-size", type=int, default=16)
    r.add_argument("--no-chat-template", action="store_true",
                   help="feed the prompt text as it is (a base checkpoint whose tokenizer has no chat template)")
    r.add_argument("--trust-remote-code", action="store_true", help="allow the checkpoint's own modelling code")
    r.add_argument("--logits-shift", action="store_true",
                   help="Dream-style diffusion checkpoint: position i predicts token i + 1 (shift logits by one)")
    r.add_argument("--mask-id", type=int, default=None,
                   help="mask token id, when neither the tokenizer nor the config names one")
    r.add_argument("--attack", action="append", default=None, metavar="NAME",
                   help="jailbreak attack on the harmful prompts, one cell each (repeatable or comma-separated; "
                   f"default raw): {', '.join(FORMS)}")
    r.add_argument("--no-kv-cache", action="store_true",
                   help="run --kind ar through the slow loop driver (whole canvas every step) instead of the KV cache")
    r.add_argument("--judge", default=None, help="local classifier judge folder (e.g. a guard model)")
    r.add_argument("--out", required=True)
    r.set_defaults(func=cmd_run)
    t = bs.add_parser("tiny", help="write a tiny randomly initialised checkpoint with its own tokenizer")
    t.add_argument("--kind", required=True, choices=("ar", "dlm"))
    t.add_argument("--out", required=True)
    t.add_argument("--seed", type=int, default=0)
    t.set_defaults(func=cmd_tiny)


def need_torch() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the bridge never downloads (set before the hub is imported)
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError:
        raise UserError("the bridge needs the [bridge] extra: pip install -e '.[bridge]'") from None


def cmd_run(args) -> int:
    from toydlm.bridge.loading import check_device_map

    need_torch()
    check_device_map(args.device_map)  # before --out is created
    check_output_dir(args.out)
    from toydlm.bridge.run import BridgeRunConfig, bridge_run

    s = bridge_run(BridgeRunConfig(
        args.model, args.kind, args.prompts, args.out, harmless=args.harmless, sampler=args.sampler, steps=args.steps,
        gen_length=args.gen_length, block_length=args.block_length, temperature=args.temperature,
        eos_inf=args.eos_inf, device=args.device, dtype=args.dtype, n=args.n, seed=args.seed,
        batch_size=args.batch_size, trust_remote_code=args.trust_remote_code, judge_path=args.judge,
        logits_shift=args.logits_shift, mask_id=args.mask_id, attacks=args.attack, kv_cache=not args.no_kv_cache,
        device_map=args.device_map, chat=not args.no_chat_template))
    keys = ("attack", "n", "asr", "asr_se", "refusal_rate", "hrr", "frr", "mean_length", "mean_len_refusal",
            "mean_len_compliance", "eos_first_share")
    for c in s["cells"]:
        print(json.dumps(to_jsonable({k: c[k] for k in keys})))
    sri = s["sri"]
    if sri["available"]:
        print(json.dumps(to_jsonable({"sri_irr": sri["irr"]})))
    else:
        print(f"SRI not computed: {sri['reason']}")
    print(f"wrote {args.out}/summary.json")
    return 0


def cmd_tiny(args) -> int:
    need_torch()
    check_output_dir(args.out)
    from toydlm.bridge.tiny import write_tiny

    p = write_tiny(args.kind, args.out, seed=args.seed)
    print(f"wrote a tiny {args.kind} checkpoint to {p}")
    return 0
