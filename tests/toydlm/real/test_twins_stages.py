"""How the MDLM seeds split the holdout prompts in the swap (`seed_prompt_shares`)."""

from __future__ import annotations

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
