"""The `toydlm_capability` tasks: fixed generated problems, exact-match scoring on the response's integers, and a
run through the harness with the `toydlm` model on a tiny diffusion checkpoint."""

from __future__ import annotations

import importlib.util

import pytest
from hypothesis import given
from hypothesis import strategies as st

pytest.importorskip("lm_eval")

from toydlm.eval import TASKS_DIR  # noqa: E402


def _utils():
    spec = importlib.util.spec_from_file_location("toydlm_capability_utils",
                                                  TASKS_DIR / "toydlm_capability" / "utils.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_the_problems_are_fixed_and_well_formed():
    u = _utils()
    a, c = u.arithmetic()["test"], u.counting()["test"]
    assert a["question"] == u.arithmetic()["test"]["question"] and len(a) == len(c) == u.N_DOCS
    for q, ans in zip(a["question"], a["answer"]):
        x, y = u.integers(q)
        assert ans == [x + y]
    assert all(len(ans) == u.COUNT and ans == list(range(ans[0], ans[0] + u.COUNT)) for ans in c["answer"])


@given(st.lists(st.integers(0, 200), min_size=1, max_size=12), st.text(alphabet="abc ,.\n", max_size=8))
def test_a_response_matches_when_its_first_integers_are_the_answer(ans, junk):
    u = _utils()
    text = ", ".join(map(str, ans)) + junk
    assert u.process_results({"answer": ans}, [text]) == {"exact_match": 1.0}
    assert u.process_results({"answer": ans}, [text[: len(str(ans[0])) - 1] + junk])["exact_match"] == 0.0
    assert u.process_results({"answer": ans}, ["0, " + text])["exact_match"] == float(ans[: 1] == [0]
                                                                                       and ans == [0] * len(ans))


def test_the_group_runs_with_the_toydlm_model(tmp_path):
    import lm_eval
    from lm_eval.tasks import TaskManager

    import toydlm.real.harness.lm  # noqa: F401 - registers the toydlm model
    from toydlm.bridge.tiny import write_tiny

    dlm = write_tiny("dlm", tmp_path / "dlm")
    res = lm_eval.simple_evaluate(model="toydlm", model_args={"pretrained": str(dlm), "sampler": "random",
                                                              "gen_length": 8},
                                  tasks=["toydlm_capability"], task_manager=TaskManager(include_path=str(TASKS_DIR)),
                                  limit=2, batch_size=4, device="cpu", bootstrap_iters=0, log_samples=True)
    u = _utils()
    for task in ("toydlm_capability_arithmetic", "toydlm_capability_counting"):
        rows = res["samples"][task]
        assert len(rows) == 2 and res["n-samples"][task]["effective"] == 2
        scores = [u.process_results(r["doc"], r["filtered_resps"])["exact_match"] for r in rows]
        assert res["results"][task]["exact_match,none"] == pytest.approx(sum(scores) / 2)
    assert 0.0 <= res["groups"]["toydlm_capability"]["exact_match,none"] <= 1.0
