"""`toydlm bench twin_sampling` runs end to end on a tiny model and reports both samplers every way."""

import math

from toydlm.bench.twin_sampling import WAYS, describe, run


def test_the_twin_sampling_benchmark_reports_both_samplers_every_way():
    r = run(seconds=0, batch=2, preset="tiny")
    assert set(r["samplers"]) == {"ar_order", "low_confidence"}
    for v in r["samplers"].values():
        assert set(v["seqs_per_s"]) == set(WAYS) and all(x > 0 for x in v["seqs_per_s"].values())
        for w, x in v["speedup_vs_full"].items():
            assert math.isclose(x, v["seqs_per_s"][w] / v["seqs_per_s"]["full"])
    assert "ar_order" in describe(r)
