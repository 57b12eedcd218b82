"""Tiny students trained on a corpus made here, and the sampler swap run on them."""

from __future__ import annotations

import numpy as np
import pytest

from toydlm.bridge.judges import keyword_refusal
from toydlm.errors import UserError
from toydlm.real.twins.dataset import CorpusTask, prompt_row, response_row
from toydlm.real.twins.stages import NATURAL
from toydlm.real.twins.swap import sample_cell, swap_samplers
from toydlm.real.twins.vocab import build_compact_vocab

END, L, P = 900, 24, 3
WORDS = {10: "I'm sorry, ", 11: "I can't help with that.", 12: "Sure! ", 13: "Step one, ", 14: "mix it."}


def corpus_task(n_rows: int = 24, name: str = "tiny") -> CorpusTask:
    """Prompt token 10 -> a refusal (10 11), prompt 12 -> a longer compliance (12 13 14 13 14)."""
    v = build_compact_vocab([list(WORDS)], {i: w.encode().hex() for i, w in WORDS.items()}, [END])
    rows = []
    for i in range(n_rows):
        ask, resp = ([10], [10, 11, END]) if i % 2 else ([12], [12, 13, 14, 13, 14, END])
        rows.append(np.concatenate([prompt_row(ask, [], v, P), response_row(resp, v, L)]))
    rows = np.stack(rows)
    return CorpusTask(name, rows[:20], rows[20:], v, P)


@pytest.fixture(scope="module")
def students(tmp_path_factory):
    from toydlm.train import train

    task, root = corpus_task(), tmp_path_factory.mktemp("students")
    out = {arch: train(arch, "tiny", root / arch, steps=40, seed=0, grammar=task, progress=False)
           for arch in ("ar", "mdlm")}
    return task, root, out


def test_students_train_on_a_corpus_task_with_its_held_out_rows(students):
    task, root, out = students
    for s in out.values():
        assert s["final_step"] == 40 and np.isfinite(s["eval_loss"]) and s["entropy_floor"] is None
    from toydlm.train import train

    with pytest.raises(UserError, match="trained on grammar"):
        train("ar", "tiny", root / "ar", steps=50, resume=True, grammar=corpus_task(22), progress=False)


@pytest.mark.parametrize("label", ["ar", "ar_order", "low_confidence_B2_T12", "low_confidence_eosinf_T12",
                                   "remdm_cap_T24"])
def test_a_sampler_cell_on_a_tiny_student_judges_what_it_decodes(students, label):
    from toydlm.train.checkpoint import load_denoiser

    task, root, _ = students
    arch = "ar" if label == "ar" else "mdlm"
    den = load_denoiser(root / arch, grammar=task)
    v = {s.label: s for s in (*swap_samplers(L), NATURAL["ar"])}[label]
    prompts = task.held_out_rows[:, :P].repeat(4, axis=0)
    cell = sample_cell(den, task, v, prompts, "raw", True, seed=0)
    rows = cell["rows"]
    assert cell["n"] == len(rows["text"]) == 16
    assert rows["refusal"] == [keyword_refusal(t) for t in rows["text"]]
    assert cell["refusal_rate"] == pytest.approx(np.mean(rows["refusal"]))
    assert 0 <= cell["mean_length"] <= L
    assert cell["n_first_commits"] == L // 2  # the exact EOS-first excess, from the trace's commits
    assert cell["eos_first_excess"] is None or np.isfinite(cell["eos_first_excess"])
    if v.eos_inf:  # EOS is never proposed: every response fills the canvas
        assert rows["length"] == [L] * 16 and cell["eos_first_share"] == 0
        assert cell["eos_first_excess"] is None  # no end token: no room for a preference


def test_the_swap_samplers_are_valid_for_the_response_length():
    from toydlm.samplers import SamplerConfig

    for n in (24, 96):
        labels = [v.label for v in swap_samplers(n)]
        assert len(set(labels)) == len(labels)
        for v in swap_samplers(n):
            SamplerConfig(**v.config_dict(1.0)).resolved(n)
