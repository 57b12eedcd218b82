"""SRI Guard's intervals per family, the share flagged, and the two checks (answered rows, literal padding)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from toydlm.real.sri.guard_checks import answered_only, literal_padding
from toydlm.real.sri.guard_eval import family_intervals
from toydlm.real.sri.refresh import differences
from toydlm.sri.metrics import auroc


def _held_means(states: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Running means of per-step states, held once a row's end-producing state (index n) is in."""
    out = np.cumsum(states, 1) / np.arange(1, states.shape[1] + 1)[None, :, None]
    for r, k in enumerate(n):
        out[r, k + 1:] = out[r, k]
    return out


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 12), st.integers(0, 2**31 - 1))
def test_literal_padding_equals_the_running_mean_of_the_padded_list(T, seed):
    rng = np.random.default_rng(seed)
    N, D = 5, 3
    s = rng.normal(size=(N, T, D))
    n = rng.integers(0, T + 1, size=N)  # tokens before the end token; >= T - 1 means it never ended early
    want = np.empty_like(s)
    for r in range(N):
        k = min(int(n[r]), T - 1)
        padded = np.concatenate([s[r, :k + 1], np.repeat(s[r, k:k + 1], T - k - 1, 0)])
        want[r] = np.cumsum(padded, 0) / np.arange(1, T + 1)[:, None]
    got = literal_padding(_held_means(s, np.minimum(n, T - 1)), n)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)


def test_literal_padding_leaves_rows_that_never_ended():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 6, 2))
    np.testing.assert_array_equal(literal_padding(x, np.array([5, 6, 40])), x)


def test_family_intervals_agree_with_the_per_family_numbers():
    rng = np.random.default_rng(1)
    neg = rng.normal(size=80)
    scores = {"a": rng.normal(0.5, 1, 40), "b": rng.normal(2.0, 1, 25)}
    out = family_intervals(neg, scores, threshold=1.5)
    pos = np.concatenate(list(scores.values()))
    assert out["auroc_all"] == auroc(neg, pos)
    assert out["flagged_share"] == (pos > 1.5).mean()
    for fam, p in scores.items():
        v = out["by_family"][fam]
        assert v["n_pos"] == len(p) and v["auroc"] == auroc(neg, p)
        lo, hi = v["auroc_ci95"]
        assert lo <= v["auroc"] <= hi and hi - lo > 0
    assert out["by_family"]["b"]["auroc"] > out["by_family"]["a"]["auroc"]


def test_answered_only_drops_the_refused_harmless_rows():
    rng = np.random.default_rng(2)
    T = 8
    sig = {k: rng.uniform(0.7, 1.0, size=(n, T)) for k, n in
           (("guard_train", 60), ("guard_threshold", 20), ("benign_eval", 30), ("raw", 25))}
    refused = {k: np.arange(len(sig[k])) % 5 == 0 for k in ("guard_train", "guard_threshold", "benign_eval")}
    out = answered_only(sig, refused, {"raw": np.ones(25, bool)}, ["raw"])
    assert out["n_train"] == 48 and out["n_threshold"] == 16 and out["n_neg"] == 24
    assert out["n_refused_dropped"] == {"guard_train": 12, "guard_threshold": 4, "benign_eval": 6}


def test_refresh_names_every_number_it_does_not_reproduce():
    old = {"threshold": 0.2, "auroc": 0.69, "auroc_unseen_ci95": [0.45, 0.56], "per_family": {"raw": {"auroc": 0.8}}}
    same = {**old, "per_family": {"raw": {"auroc": 0.8}}}
    assert differences(old, same) == []
    moved = {**old, "auroc": 0.7, "per_family": {"raw": {"auroc": 0.81}}}
    diff = differences(old, moved)
    assert any(d.startswith("auroc:") for d in diff) and any(d.startswith("per_family.raw.auroc") for d in diff)
