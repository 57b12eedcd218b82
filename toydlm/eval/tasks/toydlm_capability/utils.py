"""Docs and scoring of the `toydlm_capability` tasks: two generated, offline checks of what a sampler costs.

`arithmetic` needs a short answer (the sum of two two-digit numbers); `counting` needs a long one (ten numbers
in a row). A sampler that ends early can keep the first and lose the second, which is the cost the refusal
tasks cannot show. The problems come from a fixed seed, so every run and every sampler sees the same ones."""

from __future__ import annotations

import random
import re

N_DOCS = 50
SEED = 0
COUNT = 10
_INT = re.compile(r"\d+")  # every answer is a positive integer; "5-6" reads as 5, 6


def _dataset(rows: list[dict]) -> dict:
    import datasets

    return {"test": datasets.Dataset.from_list(rows)}


def arithmetic(**kwargs) -> dict:
    rnd = random.Random(SEED)
    rows = []
    for i in range(N_DOCS):
        a, b = rnd.randint(10, 99), rnd.randint(10, 99)
        rows.append({"doc_id": i, "question": f"What is {a} plus {b}? Answer with the number only.",
                     "answer": [a + b]})
    return _dataset(rows)


def counting(**kwargs) -> dict:
    rnd = random.Random(SEED + 1)
    rows = []
    for i in range(N_DOCS):
        a = rnd.randint(1, 80)
        rows.append({"doc_id": i, "question": f"Count from {a} to {a + COUNT - 1}, separated by commas.",
                     "answer": list(range(a, a + COUNT))})
    return _dataset(rows)


def doc_to_text(doc: dict) -> str:
    return doc["question"]


def integers(text: str) -> list[int]:
    return [int(x) for x in _INT.findall(text)]


def process_results(doc: dict, results: list[str]) -> dict:
    """Exact match: the response's first integers are the answer (one for a sum, ten for a count)."""
    want = list(doc["answer"])
    return {"exact_match": float(integers(results[0])[:len(want)] == want)}
