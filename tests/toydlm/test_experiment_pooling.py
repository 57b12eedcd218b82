"""Pooling learned-model cells over training seeds: the seed-mean SE and the pooled rows."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from toydlm.experiment.pooling import pool_seeds, pooled_curves, rows_of_seed, seed_mean_se

rates = st.floats(0, 1, allow_nan=False)


@given(st.lists(st.tuples(rates, st.floats(0, 0.1, allow_nan=False)), min_size=1, max_size=6))
def test_seed_mean_se_is_the_larger_of_the_spread_and_the_binomial_se(pairs):
    v, s = [a for a, _ in pairs], [b for _, b in pairs]
    k = len(v)
    se = seed_mean_se(v, s)
    binomial = math.sqrt(sum(x * x for x in s)) / k
    assert se >= binomial - 1e-12
    if k > 1:
        assert se >= np.std(v, ddof=1) / math.sqrt(k) - 1e-12
        assert se == pytest.approx(max(binomial, np.std(v, ddof=1) / math.sqrt(k)))
    else:
        assert se == pytest.approx(s[0])


def test_identical_seeds_fall_back_to_the_binomial_se_of_the_mean():
    assert seed_mean_se([0.3, 0.3, 0.3], [0.03, 0.03, 0.03]) == pytest.approx(0.03 / math.sqrt(3))
    assert seed_mean_se([0.1, 0.5, 0.9], [0.0, 0.0, 0.0]) == pytest.approx(0.4 / math.sqrt(3))


def _row(model, seed, asr, **kw):
    key = f"default__{model}{'' if seed is None else f'-s{seed}'}__ar_order__temp1__none"
    return {"grammar": "default", "model": model, "sampler": "ar_order", "attack": "none", "temperature": 1.0,
            "model_seed": seed, "n": 100, "asr": asr, "asr_se": 0.05, "pred_asr": asr + 0.01, "hrr": kw.get("hrr"),
            "refusal_rate": 1 - asr, "model_offset": 0.0, "heldout": True, "key": key,
            "sampler_config": {"name": "ar_order"}, "state_occupancy": [[1, 2]]}


def test_pool_seeds_merges_seeds_and_keeps_the_oracle_rows():
    rows = [_row("mdlm", 1, 0.4, hrr=0.5), _row("oracle", None, 0.2), _row("mdlm", 0, 0.2, hrr=None),
            _row("mdlm", 2, 0.3, hrr=0.7)]
    pooled = pool_seeds(rows)
    assert [r["model"] for r in pooled] == ["mdlm", "oracle"]
    m, o = pooled
    assert o is rows[1]
    assert m["model_seeds"] == [0, 1, 2] and [e["model_seed"] for e in m["per_seed"]] == [0, 1, 2]
    assert m["asr"] == pytest.approx(0.3) and m["pred_asr"] == pytest.approx(0.31) and m["n"] == 300
    assert m["asr_se"] == pytest.approx(max(0.1 / math.sqrt(3), 0.05 / math.sqrt(3)))
    assert m["asr_seed_sd"] == pytest.approx(0.1)
    assert m["hrr"] == pytest.approx(0.6)  # the seeds where it is defined
    assert m["key"] == "default__mdlm-pooled__ar_order__temp1__none" and m["model_seed"] is None
    assert m["heldout"] is True and m["sampler_config"] == {"name": "ar_order"}
    assert [r["model_seed"] for r in rows_of_seed(rows, 2)] == [None, 2]


def test_pooled_curves_average_the_seeds_point_by_point():
    rows = [_row("mdlm", 0, 0.2), _row("mdlm", 1, 0.4)]
    curves = {rows[0]["key"]: {"c": [0.0, 1.0]}, rows[1]["key"]: {"c": [1.0, 0.0]}}
    [p] = pool_seeds(rows)
    assert pooled_curves([p], curves) == {p["key"]: {"c": [0.5, 0.5]}}
