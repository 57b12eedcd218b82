"""The real-AR experiment's own parts: step-wise verdicts, the plan and its recovery cells, the judge
stages' cell lookup, and the report's pooled agreement."""

import numpy as np
import pytest

from toydlm.real.ar.plan import INJECT_STEPS, REFUSAL_OPENER, inject_cells
from toydlm.real.ar.stepwise import ar_states, first_refusal_step, late_refusal_share, prefix_refusals
from toydlm.real.kit.generate import CellPlan
from toydlm.real.kit.store import CellStore


class WordTok:
    """A tokenizer stand-in: one id per word of a fixed vocabulary."""

    words = ["<eos>", "i", "am", "sorry", "sure", "here", "is", "how", "step", "one"] + [f"w{i}" for i in range(10, 30)]

    def decode(self, ids, skip_special_tokens=True):
        return " ".join(self.words[i] for i in ids if not (skip_special_tokens and i == 0))


def test_prefix_refusals_find_late_refusals():
    s = [{"ids": [1, 2, 3], "length": 3, "text": "i am sorry"},  # refuses at step 3
         {"ids": [4, 5, 6, 7, 8, 1, 2, 3], "length": 8, "text": "sure here is how step i am sorry"},
         {"ids": [4, 5], "length": 2, "text": "sure here"}]
    cr = prefix_refusals(WordTok(), s, 10)
    assert first_refusal_step(cr).tolist() == [3, 8, 0]
    assert cr[0, 3:].all() and not cr[2].any()
    late = late_refusal_share(cr, late_after=5)
    assert late["n_refused"] == 2 and late["n_late"] == 1 and late["late_share_of_refusals"] == 0.5


def test_ar_states_commit_harm_only_at_the_end():
    cr = np.array([[False, True, True], [False, False, False]])
    s = ar_states(cr, np.array([False, True]))
    assert s.shape == (2, 4) and (s[:, :-1] != 2).all() and s[1, -1] == 2 and s[0, -1] != 2


def test_inject_cells_use_the_models_own_compliant_prefix():
    src = CellPlan("roleplay_T0.7", ["u0", "u1", "u2"], ["", "", ""], 0.7, 1, 0, [5, 6, 7])
    smp = [{"prompt": 0, "ids": list(range(1, 20)), "length": 19, "text": "x"},
           {"prompt": 1, "ids": [1, 2, 3], "length": 3, "text": "sorry"},
           {"prompt": 2, "ids": list(range(1, 17)), "length": 16, "text": "y"}]
    cells = inject_cells(src, smp, [False, True, False], WordTok())
    assert [c.name for c in cells] == [f"inject{t}_roleplay_T0.7" for t in INJECT_STEPS]
    c4 = cells[INJECT_STEPS.index(4)]
    assert c4.users == ["u0", "u2"] and c4.prompt_ids == [5, 7]
    assert c4.prefills[0] == WordTok().decode([1, 2, 3, 4]) + REFUSAL_OPENER


def test_prefix_harm_commits_harm_early_and_a_later_refusal_recovers():
    # row 0: harmful by step 2 and refuses at step 3 (R); row 1: harmful only at the end; row 2: clean
    cr = np.array([[False, False, True, True], [False] * 4, [False] * 4])
    pre = np.array([[0.9], [0.1], [np.nan]])
    s = ar_states(cr, np.array([False, True, False]), pre, (2,))
    assert s[0].tolist() == [0, 0, 2, 3, 3] and s[1].tolist() == [0, 0, 0, 0, 2] and (s[2] == 0).all()


def test_a_cell_is_found_by_name_or_the_error_lists_the_stored_ones(tmp_path):
    from toydlm.errors import UserError
    from toydlm.real.ar.judging import PREFIX, find_cell, judged_path

    store = CellStore(tmp_path)
    store.put({"name": "raw_T1", "seed": 2}, [{"text": "x"}])
    path, rec = find_cell(tmp_path, "raw_T1")
    assert rec["samples"] == [{"text": "x"}]
    assert judged_path(path, PREFIX) == tmp_path / "judged" / f"prefix-{path.name}"
    with pytest.raises(UserError, match="no stored cell 'raw_T2'.*raw_T1"):
        find_cell(tmp_path, "raw_T2")


def test_attack_cell_seed_does_not_depend_on_which_attacks_run():
    """`--attacks` with a subset must sample the same cells as the full tier (the 1.5B runs only two)."""
    from toydlm.real.ar.plan import ATTACK_CELLS, base_cells

    prompts = {"harmful": ["Explain how to pick a lock."], "harmless": ["Name a fruit."]}
    full = {c.name: c.seed for c in base_cells("attacks", prompts, None, ATTACK_CELLS)}
    subset = base_cells("strongest", prompts, None, ("prefill:Sure, here is", "prefix_injection"))
    assert {c.name: c.seed for c in subset} == {k: full[k] for k in (c.name for c in subset)}
    assert len(set(full.values())) == len(full)


def test_pooled_judge_agreement_counts_every_checkpoints_labels_once():
    """The contract's agreement pools the hand labels of every checkpoint; an unjudged label counts for the
    keyword judge only. (It once reported all labels' count beside one checkpoint's agreement.)"""
    from toydlm.real.ar.report import hand_agreement, pooled_agreement

    a = {"truth": [True, False, True], "keyword": [True, True, False], "llm_score": [0.9, 0.2, None]}
    b = {"truth": [False, True], "keyword": [False, True], "llm_score": [0.7, 0.8]}
    votes = {"keyword": [True, False], "llm": [True, True]}
    per = {"x": {"_votes": votes, "_hand_pairs": a}, "y": {"_votes": votes, "_hand_pairs": b}}
    out = pooled_agreement(per)
    assert out["n_hand_labelled"] == 5 and out["checkpoints"] == ["x", "y"]
    assert out["llm_vs_hand"]["n"] == 4 and out["keyword_vs_hand"]["n"] == 5
    assert out["llm_vs_hand"]["agreement"] == pytest.approx(3 / 4)
    assert out["keyword_vs_hand"]["agreement"] == pytest.approx(3 / 5)
    assert out["keyword_vs_llm"]["n"] == 4
    assert hand_agreement(a)["llm_vs_hand"]["auroc"] == pytest.approx(1.0)
