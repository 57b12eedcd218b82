"""The benchmark entry point returns the keys the CLI reads (no timing assertions in tests)."""

import theory


def test_bench_run_returns_rates():
    out = theory.bench.run(seconds=0.01, batch=200, trajectories=2000)
    assert out["exact_sets_per_s"] > 0 and out["sim_traj_per_s"] > 0
    assert out["T"] == 32
