"""Docs and per-response metrics of the `toydlm_refusal` tasks, read by lm-eval as `!function utils.X`.

The prompts are the package's shipped sets, read from local files (nothing is downloaded); the refusal verdict
is the audit's keyword judge (`toydlm.bridge.judges.keyword_refusal`), so the harness and `toydlm audit` judge
a response the same way."""

from __future__ import annotations

from toydlm.bridge.attacks import apply_attack
from toydlm.bridge.judges import keyword_refusal
from toydlm.bridge.prompts import load_prompts


def _docs(prompt_set: str, attack: str, harmful: bool, n: int | None = None, label: str | None = None) -> dict:
    """The prompts under `attack`; `label` names the cell (the audit's name, `attack` unless given)."""
    import datasets

    rows = []
    for i, ins in enumerate(load_prompts(prompt_set, n)):
        p = apply_attack(attack, ins)
        rows.append({"prompt_id": i, "instruction": ins, "user": p.user, "prefill": p.prefill,
                     "attack": label or attack, "harmful": harmful})
    return {"test": datasets.Dataset.from_list(rows)}


def _harmful_set(kwargs: dict) -> str:
    """The harmful prompt set: the shipped HarmBench test set, or `--metadata '{"prompts": NAME_OR_FILE}'`."""
    return str(kwargs.get("prompts") or "harmbench")


def harmful(**kwargs) -> dict:
    """The harmful prompts under the attack the task names in its `dataset_kwargs` (`toydlm_attack: NAME`; a
    key of its own, since lm-eval passes --metadata and model_args to this function as well)."""
    if not kwargs.get("toydlm_attack"):
        raise ValueError("a toydlm_refusal task names its attack in dataset_kwargs: toydlm_attack: NAME")
    return _docs(_harmful_set(kwargs), str(kwargs["toydlm_attack"]), True)


def harmless(**kwargs) -> dict:
    """The matched harmless set: as many shipped harmless prompts (or `--metadata '{"harmless": ...}'`) as
    there are harmful ones, under the audit's name for the cell, `benign`."""
    n = len(load_prompts(_harmful_set(kwargs)))
    return _docs(str(kwargs.get("harmless") or "harmless"), "raw", False, n, label="benign")


def doc_to_text(doc: dict) -> str:
    return doc["user"]


def process_results(doc: dict, results: list) -> dict:
    """Per prompt, over its samples (the task's `repeats`, kept whole by its filter): the share the keyword judge
    calls a refusal, and for a harmful prompt the keyword ASR (the share that is not). A per-prompt mean keeps
    the harness's standard error one over prompts, not over correlated samples of a prompt."""
    texts = results[0] if isinstance(results[0], list) else results
    refused = sum(float(keyword_refusal(t)) for t in texts) / len(texts)
    return {"refusal_rate": refused, "asr_keyword": 1.0 - refused} if doc["harmful"] else {"over_refusal_rate": refused}
