"""The harness's generation requests as audit cells and rows: pure bookkeeping, no model and no lm-eval.

A request belongs to the cell fixed by what its doc is (the doc's `attack` field, as the `toydlm_refusal`
docs carry it, else the task's name), its temperature and its length; its row is `doc_id * K + j` for the
j-th of its K repeats. That is the audit's layout (row r is prompt r // K, sample r % K) and its seed rule
(`cell_seed`), so a request draws exactly the keys its row draws in `toydlm audit`, however the harness
orders, batches or shards the requests.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass


@dataclass(frozen=True)
class CellKey:
    """What fixes a cell's seed and sampler config: the task, the attack (or task name), T and length."""

    task: str
    attack: str
    temperature: float
    gen_length: int


@dataclass(frozen=True)
class RowRequest:
    """One generation request placed in its cell: where its answer goes, its row, its context and stops."""

    index: int
    row: int
    context: str
    until: tuple[str, ...]


def cell_attack(task: str, doc) -> str:
    """The name the cell's seed is drawn from: the doc's attack (toydlm_refusal docs), else the task."""
    attack = doc.get("attack") if isinstance(doc, dict) else None
    return attack if isinstance(attack, str) and attack else task


def doc_index(doc, doc_id: int) -> int:
    """The doc's prompt index: its `prompt_id` (toydlm_refusal docs: the index in the prompt file, which the
    audit's rows use, even when `--samples` picks docs out of order), else the harness's doc_id."""
    pid = doc.get("prompt_id") if isinstance(doc, dict) else None
    return int(pid) if isinstance(pid, int) else int(doc_id)


def place_rows(requests: list[tuple[str, int, int]]) -> list[int]:
    """Each request's row from its (task, doc_id, repeats): `doc_id * K + j` for its j-th copy.

    A copy past the K-th (the harness pads a short shard with copies of its last request, and drops
    their answers) reuses row `j % K`, so it never takes another doc's keys."""
    seen: dict[tuple[str, int], int] = defaultdict(int)
    rows = []
    for task, doc_id, repeats in requests:
        k = max(int(repeats or 1), 1)
        j = seen[(task, int(doc_id))]
        seen[(task, int(doc_id))] += 1
        rows.append(int(doc_id) * k + j % k)
    return rows


def group_cells(keys: list[CellKey], rows: list[int], contexts: list[str],
                stops: list[tuple[str, ...]]) -> dict[CellKey, list[RowRequest]]:
    """Requests grouped by cell, each cell's requests in row order (the audit's batch order)."""
    cells: dict[CellKey, list[RowRequest]] = defaultdict(list)
    for i, (key, row, ctx, until) in enumerate(zip(keys, rows, contexts, stops, strict=True)):
        cells[key].append(RowRequest(i, row, ctx, tuple(until)))
    return {k: sorted(v, key=lambda r: (r.row, r.index)) for k, v in cells.items()}


def cut_at_stops(text: str, until: tuple[str, ...]) -> str:
    """The text up to the first stop string, as the harness's own models return it."""
    cut = len(text)
    for s in until:
        if s:
            i = text.find(s)
            if i != -1:
                cut = min(cut, i)
    return text[:cut]


def chunks(items: list, size: int) -> list[list]:
    """Consecutive batches of at most `size` items."""
    size = max(int(size), 1)
    return [items[a:a + size] for a in range(0, len(items), size)]
