"""`toydlm bench <part> [--json]`: rerunnable benchmarks; `--json` prints one JSON object."""

from __future__ import annotations

import importlib
import json

from toydlm.errors import UserError

# part -> module with `run(seconds: float) -> dict` and `describe(result) -> str`
PARTS = {
    "grammar": "toydlm.bench.grammar",
    "train": "toydlm.bench.train",
    "sample": "toydlm.bench.sample",
    "twin_sampling": "toydlm.bench.twin_sampling",
    "theory": "toydlm.bench.theory",
    "bridge": "toydlm.bench.bridge",  # needs the [bridge] extra (torch, transformers)
}


def register(sub) -> None:
    b = sub.add_parser("bench", help="benchmarks (throughput, MFU, speedups)")
    bs = b.add_subparsers(dest="bench_part", metavar="PART")
    bs.required = True
    for part, mod in PARTS.items():
        p = bs.add_parser(part, help=f"benchmark the {part} part")
        p.add_argument("--json", action="store_true", help="print one JSON object")
        p.add_argument("--seconds", type=float, default=3.0, help="rough time budget per measurement")
        p.set_defaults(func=cmd_bench, bench_module=mod)


def cmd_bench(args) -> int:
    try:
        mod = importlib.import_module(args.bench_module)
    except ModuleNotFoundError as e:
        if e.name not in ("torch", "transformers", "safetensors", "gguf", "accelerate"):
            raise
        raise UserError(f"bench {args.bench_part} needs the [bridge] extra ({e.name} is missing): "
                        "pip install -e '.[bridge]'") from None
    res = mod.run(seconds=args.seconds)
    if args.json:
        print(json.dumps(res))
    else:
        print(mod.describe(res))
    return 0
