"""The harness's requests as audit rows: a request's row is doc_id * K + j, whatever order the harness sends
requests in; a padded copy never takes another doc's row; cells come back in row order; text is cut at the first
stop string."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from toydlm.real.harness.requests import CellKey, cell_attack, chunks, cut_at_stops, group_cells, place_rows


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, 6), min_size=1, max_size=7, unique=True), st.integers(1, 4), st.randoms())
def test_rows_follow_the_audit_layout_in_any_order(doc_ids, k, rnd):
    reqs = [("t", d, k) for d in doc_ids for _ in range(k)]  # K copies back to back, as the harness sends
    rows = place_rows(reqs)
    assert sorted(rows) == sorted(d * k + j for d in doc_ids for j in range(k))
    by_doc = {}
    for (_, d, _), r in zip(reqs, rows):
        by_doc.setdefault(d, []).append(r)
    assert all(r // k == d for d, rs in by_doc.items() for r in rs)  # row r is prompt r // K


def test_a_padded_copy_reuses_its_own_docs_rows():
    rows = place_rows([("t", 3, 2)] * 3)  # a shard padded with one more copy of its last request
    assert rows == [6, 7, 6]


def test_tasks_count_their_own_copies():
    assert place_rows([("a", 0, 2), ("b", 0, 2), ("a", 0, 2)]) == [0, 0, 1]


def test_the_cell_is_the_docs_attack_else_the_task():
    assert cell_attack("toydlm_refusal_raw", {"attack": "prefix_injection"}) == "prefix_injection"
    assert cell_attack("gsm8k", {"question": "2+2"}) == "gsm8k"
    assert cell_attack("gsm8k", "not a dict") == "gsm8k"


def test_cells_come_back_in_row_order_and_keep_each_requests_place():
    k1, k2 = CellKey("t", "raw", 1.0, 8), CellKey("t", "benign", 1.0, 8)
    cells = group_cells([k1, k2, k1], [5, 0, 2], ["a", "b", "c"], [(), ("x",), ()])
    assert [r.row for r in cells[k1]] == [2, 5] and [r.index for r in cells[k1]] == [2, 0]
    assert cells[k2][0].until == ("x",)


def test_text_is_cut_at_the_first_stop_string():
    assert cut_at_stops("one. two\n\nthree", ("\n\n", ".")) == "one"
    assert cut_at_stops("no stop here", ("\n\n", "")) == "no stop here"


def test_chunks_cover_everything_in_order():
    assert chunks(list(range(5)), 2) == [[0, 1], [2, 3], [4]]
