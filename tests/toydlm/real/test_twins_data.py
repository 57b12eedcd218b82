"""The twins' compact vocabulary and student sequences, on a tiny corpus made here."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from toydlm.errors import UserError
from toydlm.real.twins.dataset import CorpusTask, cell_rows, prompt_row, response_row
from toydlm.real.twins.vocab import EOS_ID, EOT_ID, N_SPECIAL, PAD_ID, SEP_ID, UNK_ID, CompactVocab, build_compact_vocab

END = 900  # the teacher's end-of-turn id in these tests
HEX = {i: f"<{i}>".encode().hex() for i in range(1000)}


def tiny_vocab(seqs=((10, 11, 12, 10), (12, 13, 10), (14,))) -> CompactVocab:
    return build_compact_vocab(seqs, HEX, [END])


def test_frequency_order_threshold_and_cap():
    seqs = [[5, 5, 5, 7, 7, 9, END]]
    assert tiny_vocab(seqs).teacher_ids == (5, 7, 9)
    assert build_compact_vocab(seqs, HEX, [END], min_count=2).teacher_ids == (5, 7)
    assert build_compact_vocab(seqs, HEX, [END], max_size=N_SPECIAL + 1).teacher_ids == (5,)
    with pytest.raises(UserError, match="no room"):
        build_compact_vocab(seqs, HEX, [END], max_size=N_SPECIAL)
    with pytest.raises(UserError, match="no bytes"):
        build_compact_vocab([[1234]], HEX, [END])


@given(st.lists(st.sampled_from([10, 11, 12, 13, 14]), max_size=30))
@settings(max_examples=50, deadline=None)
def test_encode_decode_round_trips_the_bytes(ids):
    v = tiny_vocab()
    enc = v.encode(ids)
    assert enc.min(initial=N_SPECIAL) >= N_SPECIAL
    assert v.decode(enc) == "".join(f"<{i}>" for i in ids)
    assert v.from_dict(v.to_dict()) == v


def test_unseen_ids_are_unknown_and_the_end_of_turn_is_eot():
    v = tiny_vocab()
    assert v.encode([10, 777, END]).tolist() == [v.encode([10])[0], UNK_ID, EOT_ID]
    assert v.decode(v.encode([10, END, 11])) == "<10>"  # decoding stops at the end of the turn
    assert v.decode([*v.encode([10]), EOS_ID, *v.encode([11])]) == "<10>"  # and at the end of text
    assert v.decode(v.encode([777])) == "\ufffd"


def test_response_rows_end_with_eot_then_eos_padding():
    v = tiny_vocab()
    r = response_row([10, 11, END], v, 6)
    assert r.tolist()[2:] == [EOT_ID] + [EOS_ID] * 3 and not np.isin(r[:2], (EOS_ID, EOT_ID)).any()
    full = response_row([10] * 9, v, 6, ended=False)  # truncated by the cap: no end in the canvas
    assert not np.isin(full, (EOS_ID, EOT_ID)).any() and len(full) == 6
    assert response_row([10, 11], v, 6).tolist() == r.tolist()  # an ended row stored without its end id
    assert response_row([10, 11, END, 12], v, 6).tolist() == r.tolist()  # nothing after the end of turn
    assert response_row([10] * 6, v, 6).tolist() == [v.encode([10])[0]] * 6  # ended exactly at the cap: no room


def test_prompt_rows_pad_left_keep_both_ends_and_the_prefill():
    v = tiny_vocab()
    row = prompt_row([10, 11], [12], v, 6)
    assert row.tolist() == [PAD_ID, PAD_ID, *v.encode([10, 11]), SEP_ID, *v.encode([12])]
    long = prompt_row([10, 11, 12, 13, 14, 10, 11], [], v, 5)
    assert long.tolist() == [*v.encode([10, 11]), *v.encode([10, 11]), SEP_ID]  # the middle dropped
    assert prompt_row([10], [12] * 9, v, 4).tolist() == [SEP_ID, *v.encode([12] * 3)]


def test_cell_rows_and_the_corpus_task_draws():
    v = tiny_vocab()
    rec = {"samples": [{"prompt": 0, "ids": [10, 11]}, {"prompt": 1, "ids": [12, 13, 14, 10]}]}
    rows = cell_rows(rec, {"user": [[10], [11, 12]], "prefill": [[], [13]]}, v, 4, 5)
    assert rows.shape == (2, 9) and rows.dtype == np.int32
    assert v.decode(rows[1, 4:]) == "<12><13><14><10>"
    task = CorpusTask("tiny", rows, rows[:1], v, 4)
    assert (task.seq_len, task.prompt_len, task.response_len, task.vocab_size) == (9, 4, 5, v.size)
    a, b = task.sample(16, 3).tokens, task.sample(16, 3).tokens
    assert (a == b).all() and {tuple(r) for r in a} <= {tuple(r) for r in rows}
    assert (task.sample_held_out(4, 0).tokens == rows[0]).all()
    assert CorpusTask("tiny", rows[::-1], rows[:1], v, 4).config.config_hash() != task.config.config_hash()

