"""Theory throughput: exact predictions of T = 32 parameter sets, and simulated trajectories."""

from __future__ import annotations

from theory import bench


def run(seconds: float = 3.0) -> dict:
    res = bench.run(seconds=seconds)
    return {"part": "theory", **res}


def describe(r: dict) -> str:
    return (f"theory: {r['exact_sets_per_s']:,.0f} exact parameter sets/s (T=32), "
            f"{r['sim_traj_per_s']:,.0f} simulated trajectories/s")
