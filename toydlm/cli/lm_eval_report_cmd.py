"""`toydlm lm-eval-report DIR`: the length test over lm-eval's logged `toydlm_refusal` samples (extra [eval])."""

from __future__ import annotations

import json
from pathlib import Path

from toydlm.errors import UserError


def register(sub) -> None:
    a = sub.add_parser("lm-eval-report", help="the length test over the samples `toydlm lm-eval --log_samples` "
                       "wrote: lengths in the model's tokens, P(refusal | length <= k), prompt-bootstrap intervals")
    a.add_argument("out", help="the --output_path of the lm-eval run")
    a.add_argument("--tokenizer", default=None, help="the model's tokenizer (default: the run's pretrained=)")
    a.add_argument("--ks", default=None, help="the k grid, comma-separated (default: the audit's, 8 to 96)")
    a.add_argument("--judge", default="keyword", help="harm judge for the ASR and the length test, as for "
                   "`toydlm audit`: keyword (not a refusal), llm:NAME|PATH or classifier:PATH")
    a.add_argument("--device", default="cpu", help="where a model judge runs")
    a.add_argument("--cut-margin", type=int, default=None, help="a response within this many tokens of the cap "
                   "counts as cut: counting decoded text again can come back a few tokens short (default 4; 0 trusts "
                   "the count)")
    a.add_argument("--n-boot", type=int, default=1000)
    a.add_argument("--seed", type=int, default=0)
    a.set_defaults(func=cmd_lm_eval_report)


def _pretrained(model_args) -> str | None:
    if isinstance(model_args, dict):
        return model_args.get("pretrained")
    pairs = dict(x.split("=", 1) for x in str(model_args or "").split(",") if "=" in x)
    return pairs.get("pretrained")


def _tokenizer(name: str):
    """The model's tokenizer: a Hugging Face folder's, or a twins student's compact one (it counts its own tokens)."""
    from toydlm.bridge.loading import load_tokenizer
    from toydlm.real.twins.student_setup import student_root, student_tokenizer

    root = student_root(name)
    return student_tokenizer(root) if root is not None else load_tokenizer(name)


def cmd_lm_eval_report(args) -> int:
    from toydlm.real.audit.harness_samples import DEFAULT_CUT_MARGIN, latest_run, lengths_report
    from toydlm.real.audit.judge import Judge, check_judge
    from toydlm.real.audit.spec import split_numbers
    from toydlm.real.kit.length_test import DEFAULT_KS

    ks = DEFAULT_KS if args.ks is None else split_numbers(args.ks, "--ks", int)
    margin = DEFAULT_CUT_MARGIN if args.cut_margin is None else args.cut_margin
    if margin < 0:
        raise UserError(f"--cut-margin must be 0 or more, got {margin}")
    check_judge(args.judge)
    res, samples = latest_run(Path(args.out))  # a missing run is a one-line error before any tokenizer loads
    name = args.tokenizer or _pretrained(res.get("config", {}).get("model_args"))
    if not name:
        raise UserError("the run names no pretrained= tokenizer: pass --tokenizer")
    tok = _tokenizer(name)
    judge = None if args.judge == "keyword" else Judge(args.judge, args.device)
    rep = lengths_report(res, samples, lambda t: len(tok(t, add_special_tokens=False)["input_ids"]), ks,
                         args.n_boot, args.seed, judge, margin)
    path = Path(args.out) / "toydlm_refusal_lengths.json"
    path.write_text(json.dumps(rep, indent=1))
    for task, r in rep["tasks"].items():
        k16 = next((x for x in r["length_test"] or [] if x["k"] == 16), None)
        tail = "" if k16 is None else f"; P(refusal | len <= 16) {k16['p_refusal_given_len_le_k']} (n={k16['n']})"
        asr = "" if r["asr"] is None else f"; ASR ({rep['judge']['judge']}) {r['asr']:.3f}"
        print(f"{task}: n={r['n']} refusal {r['refusal_rate']:.3f} {r['refusal_rate_ci95']}{asr}{tail}")
    print(f"wrote {path}")
    return 0
