"""Docs and per-response metrics of the `toydlm_refusal` tasks, read by lm-eval as `!function utils.X`.

The prompts are the package's shipped sets, read from local files (nothing is downloaded); the refusal verdict
is the audit's keyword judge (`toydlm.bridge.judges.keyword_refusal`), so the harness and `toydlm audit` judge
a response the same way."""

from __future__ import annotations

from toydlm.bridge.attacks import apply_attack
from toydlm.bridge.judges import keyword_refusal
from toydlm.bridge.prompts import load_prompts


def _docs(prompt_set: str, attack: str, harmful: bool) -> dict:
    import datasets

    rows = []
    for i, ins in enumerate(load_prompts(prompt_set)):
        p = apply_attack(attack, ins)
        rows.append({"prompt_id": i, "instruction": ins, "user": p.user, "prefill": p.prefill, "attack": attack,
                     "harmful": harmful})
    return {"test": datasets.Dataset.from_list(rows)}


def harmbench_raw(**kwargs) -> dict:
    return _docs("harmbench", "raw", True)


def harmbench_prefix_injection(**kwargs) -> dict:
    return _docs("harmbench", "prefix_injection", True)


def harmless(**kwargs) -> dict:
    return _docs("harmless", "raw", False)


def doc_to_text(doc: dict) -> str:
    return doc["user"]


def process_results(doc: dict, results: list[str]) -> dict:
    """Per response: refusal by the keyword judge, and for a harmful prompt the keyword ASR (not a refusal)."""
    refused = float(keyword_refusal(results[0]))
    return {"refusal_rate": refused, "asr_keyword": 1.0 - refused} if doc["harmful"] else {"over_refusal_rate": refused}
