"""The twins' teacher corpus plan: holdout disjointness, chunk coverage and seeds, byte-level decoding."""

from __future__ import annotations

import pytest

from toydlm.errors import UserError
from toydlm.real.twins.corpus import (
    CorpusMix,
    _norm,
    chunk_plans,
    corpus_prompts,
    holdout_plans,
    holdout_prompts,
    mix_summary,
    training_pools,
)
from toydlm.real.twins.teacher import byte_decoder


@pytest.fixture(scope="module")
def pools():
    hold = holdout_prompts()
    return hold, training_pools(hold)


def test_training_pools_are_distinct_and_disjoint_from_the_holdout(pools):
    hold, pool = pools
    held = {_norm(x) for x in hold["harmful"] + hold["harmless"]}
    for kind in ("harmful", "harmless"):
        normed = [_norm(x) for x in pool[kind]]
        assert len(normed) == len(set(normed))
        assert not held & set(normed)


def test_chunks_cover_every_prompt_with_its_samples_and_distinct_seeds(pools):
    _, pool = pools
    mix = CorpusMix(n_raw=50, raw_samples=3, n_attacked=40, n_harmless=30, chunk_rows=32)
    prompts = corpus_prompts(mix, pool)
    plans = chunk_plans(mix, prompts)
    rows = {k: sum(len(p.users) * p.samples for p in plans if p.name.startswith(f"corpus_{k}_")) for k in prompts}
    assert rows == mix_summary(mix, prompts)["rows_per_kind"] == {"raw": 150, "attacked": 40, "harmless": 30}
    assert all(len(p.users) * p.samples <= 32 for p in plans)
    assert len({p.seed for p in plans}) == len(plans)
    assert len({p.name for p in plans + holdout_plans(holdout_prompts())}) == len(plans) + 2
    # attacked prompts carry their attack: a prefill, or a user turn that is not the bare instruction
    for p in plans:
        if p.name.startswith("corpus_attacked_"):
            for u, f, i in zip(p.users, p.prefills, p.prompt_ids):
                assert f or u != prompts["attacked"][i][1]
    assert len(mix_summary(mix, prompts)["attacks"]) > 1

def test_the_corpus_plan_is_a_function_of_the_mix(pools):
    _, pool = pools
    mix = CorpusMix(n_raw=20, n_attacked=10, n_harmless=10)
    a, b = corpus_prompts(mix, pool), corpus_prompts(mix, pool)
    assert a == b
    assert corpus_prompts(CorpusMix(n_raw=20, n_attacked=10, n_harmless=10, seed=1), pool) != a


def test_bad_mixes_are_one_line_errors(pools):
    _, pool = pools
    with pytest.raises(UserError, match="n_raw"):
        CorpusMix(n_raw=-1)
    with pytest.raises(UserError, match="raw_samples"):
        CorpusMix(raw_samples=0)
    with pytest.raises(UserError, match="only"):
        corpus_prompts(CorpusMix(n_raw=len(pool["harmful"]) + 1), pool)


def test_byte_decoder_is_a_bijection_onto_the_256_bytes():
    dec = byte_decoder()
    assert sorted(dec.values()) == list(range(256))
    assert dec["!"] == ord("!") and dec["Ġ"] == ord(" ")
