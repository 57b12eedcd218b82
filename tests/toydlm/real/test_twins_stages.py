"""How the MDLM seeds split the holdout prompts in the swap (`seed_prompt_shares`), and which cells the judge scores."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from toydlm.real.twins.stages import seed_prompt_shares


@given(st.integers(1, 5), st.integers(0, 60), st.integers(1, 5))
def test_every_prompt_gets_the_same_number_of_seeds_and_seeds_balance(n_seeds, n_prompts, per_prompt):
    names = tuple(f"mdlm_s{j}" for j in range(n_seeds))
    shares = seed_prompt_shares(names, n_prompts, per_prompt)
    assert list(shares) == list(names)
    if per_prompt >= n_seeds:
        assert all(v is None for v in shares.values())  # every seed samples every prompt
        return
    counts = np.zeros(n_prompts, int)
    for v in shares.values():
        assert (np.diff(v) > 0).all() and (v >= 0).all() and (v < n_prompts).all()  # sorted, distinct, in range
        counts[v] += 1
    assert (counts == per_prompt).all()
    sizes = [len(v) for v in shares.values()]
    assert max(sizes) - min(sizes) <= per_prompt


def test_shares_depend_on_the_seed_order_not_on_which_seeds_finished():
    """A seed's share is fixed by its place in the plan, so sampling seeds as they finish gives the same split."""
    full = seed_prompt_shares(("mdlm_s0", "mdlm_s1", "mdlm_s2"), 9, 2)
    np.testing.assert_array_equal(full["mdlm_s1"], [1, 2, 4, 5, 7, 8])
    assert seed_prompt_shares((), 9, 2) == {}


def test_no_seed_per_prompt_is_refused():
    with pytest.raises(ValueError, match="at least 1"):
        seed_prompt_shares(("a", "b"), 4, 0)


def test_a_config_with_no_seed_per_prompt_is_refused(tmp_path):
    from toydlm.real.twins.pipeline import TwinsConfig

    with pytest.raises(ValueError, match="seeds per prompt"):
        TwinsConfig(work=tmp_path, real_ar_work=tmp_path, runs=tmp_path, out=tmp_path, seeds_per_prompt=0)
    assert TwinsConfig(work=tmp_path, real_ar_work=tmp_path, runs=tmp_path, out=tmp_path,
                       seeds_per_prompt=None).seeds_per_prompt is None


class _FakeJudge:
    """Scores each pair by its instruction's length; records what it saw."""

    meta = {"model": "fake", "threshold": 0.5, "path": "/nowhere"}

    def __init__(self):
        self.seen: list[list[str]] = []

    def scores(self, instructions, texts, progress=False):
        self.seen.append(list(instructions))
        return np.asarray([len(i) / 1000 for i in instructions])


def _cell_file(root, name: str, weights: str, harmful: bool, prompts: list[int]) -> None:
    rows = [{"prompt": p, "text": "t"} for p in prompts]
    rec = {"spec": {"weights": weights}, "cell": {"gen_length": 96, "harmful": harmful, "sampler": {}, "rows": rows}}
    (root / f"{name}.json").write_text(json.dumps(rec))


def test_the_judge_sees_each_rows_own_prompt_and_skips_superseded_students_and_harmless_cells(tmp_path, monkeypatch):
    from toydlm.real.kit import judged
    from toydlm.real.twins.corpus import holdout_prompts
    from toydlm.real.twins.stages import judge_swap

    fake = _FakeJudge()
    monkeypatch.setattr(judged, "harm_judge", lambda model, dtype: fake)
    _cell_file(tmp_path, "current", "w1", True, [7, 3])
    _cell_file(tmp_path, "superseded", "w0", True, [1])
    _cell_file(tmp_path, "harmless", "w1", False, [2])
    judge_swap(tmp_path, "fake", 96, weights={"w1"})
    harmful = holdout_prompts()["harmful"]
    assert fake.seen == [[harmful[7], harmful[3]]]
    stored = json.loads((tmp_path / "judged" / "current.json").read_text())
    assert stored["p_yes"] == [len(harmful[7]) / 1000, len(harmful[3]) / 1000] and "path" not in stored["judge"]
    assert not (tmp_path / "judged" / "superseded.json").exists()
    judge_swap(tmp_path, "fake", 96)  # resumable: the judged cell is not judged again; without a filter, all are
    assert fake.seen[1:] == [[harmful[1]]]
