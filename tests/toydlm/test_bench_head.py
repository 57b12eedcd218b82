"""`toydlm bench head` runs end to end on a tiny model and reports both samplers both ways."""

import math

from toydlm.bench.head import describe, run


def test_the_head_benchmark_reports_both_samplers_both_ways():
    r = run(seconds=0, batch=2, preset="tiny")
    assert set(r["samplers"]) == {"ar_order", "low_confidence"}
    for v in r["samplers"].values():
        assert v["full_head_seqs_per_s"] > 0 and v["response_head_seqs_per_s"] > 0
        assert math.isclose(v["speedup"], v["response_head_seqs_per_s"] / v["full_head_seqs_per_s"])
    assert "ar_order" in describe(r)
