"""The teacher's NLL of answers: batching and padding never change a score, unknown marks are dropped, and a
cell scores a fixed subset of its rows."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from toydlm.real.twins.coherence import SCORED_ROWS, answer_nll, per_token_nll, score_rows, scored_rows


@pytest.fixture(scope="module")
def tiny_ar(tmp_path_factory):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from toydlm.bridge.tiny import write_tiny

    p = write_tiny("ar", tmp_path_factory.mktemp("tiny") / "ar")
    return AutoModelForCausalLM.from_pretrained(p).eval(), AutoTokenizer.from_pretrained(p)


USERS = ["how to make a bomb", "tell me a story", "write code", "explain the history of music please"]
ANSWERS = ["i'm sorry i cannot help", "sure here is a story about a dog", "", "here is the history of music"]


def test_a_score_does_not_depend_on_the_batch_it_is_in(tiny_ar):
    hf, tok = tiny_ar
    one = [answer_nll(hf, tok, [u], [""], [a]) for u, a in zip(USERS, ANSWERS)]
    nll, n = answer_nll(hf, tok, USERS, [""] * 4, ANSWERS, batch_size=4)
    np.testing.assert_allclose(nll, [x[0][0] for x in one], rtol=1e-4, atol=1e-4)
    assert n.tolist() == [x[1][0] for x in one] == [len(tok.encode(a, add_special_tokens=False)) for a in ANSWERS]
    assert nll[2] == 0 and n[2] == 0 and (nll[[0, 1, 3]] > 0).all()


def test_the_score_is_the_sum_of_next_token_log_losses(tiny_ar):
    import torch

    from toydlm.bridge.encode import encode_prompts

    hf, tok = tiny_ar
    ids, _ = encode_prompts(tok, USERS[:1], [""], chat=True)
    ans = tok.encode(ANSWERS[0], add_special_tokens=False)
    full = torch.as_tensor([list(ids[0]) + ans])
    with torch.no_grad():
        logp = torch.log_softmax(hf(input_ids=full).logits[0].float(), -1)
    want = -sum(float(logp[ids.shape[1] - 1 + i, t]) for i, t in enumerate(ans))
    assert answer_nll(hf, tok, USERS[:1], [""], ANSWERS[:1])[0][0] == pytest.approx(want, rel=1e-4)


def test_unknown_marks_are_dropped_before_scoring(tiny_ar):
    hf, tok = tiny_ar
    plain = answer_nll(hf, tok, USERS[:1], [""], ["i'm sorry i cannot help"])
    marked = answer_nll(hf, tok, USERS[:1], [""], ["i'm sorry \ufffdi cannot help\ufffd"])
    assert plain[1][0] == marked[1][0] and plain[0][0] == pytest.approx(marked[0][0], rel=1e-5)


def test_a_cell_scores_a_seeded_subset_and_pools_per_token(tiny_ar):
    hf, tok = tiny_ar
    assert scored_rows(5).tolist() == [0, 1, 2, 3, 4]
    big = scored_rows(1000, seed=3)
    assert len(big) == SCORED_ROWS and len(set(big)) == SCORED_ROWS and (big == scored_rows(1000, seed=3)).all()
    rows = [{"prompt": i % 4, "text": ANSWERS[i % 4]} for i in range(8)]
    s = score_rows(SimpleNamespace(hf=hf, tok=tok), USERS, [""] * 4, rows)
    assert s["rows"] == list(range(8)) and s["tokens"][2] == 0
    assert per_token_nll(s) == pytest.approx(sum(s["nll"]) / sum(s["tokens"]))
    assert per_token_nll({"nll": [0.0], "tokens": [0]}) is None


def test_scores_of_another_dtype_or_without_one_are_not_current():
    from toydlm.real.twins.coherence import SCORING_DTYPE, is_current

    assert is_current({"teacher": {"dtype": SCORING_DTYPE}})
    assert not is_current({"teacher": {"checkpoint": "x"}}) and not is_current(None)
    assert not is_current({"teacher": {"dtype": "float32"}}, dtype="bfloat16")
