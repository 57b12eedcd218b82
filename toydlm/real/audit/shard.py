"""Several processes on one audit (`accelerate launch --num_processes N -m toydlm audit ...`): each decodes
every N-th cell into the shared store, they meet at a barrier, and process 0 assembles the report.

Rows draw their keys by index and batches are cut the same way in every process, so the samples, and
so `audit.json`, are those of a single process.
"""

from __future__ import annotations

import os


def rank_and_world() -> tuple[int, int]:
    """This process's rank and the number of processes (1 process unless a launcher set WORLD_SIZE)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", os.environ.get("LOCAL_RANK", "0")))
    return (rank, world) if world > 1 else (0, 1)


def mine(items: list, rank: int, world: int) -> list:
    """The items this process decodes (round robin, so long and short cells spread evenly)."""
    return [x for i, x in enumerate(items) if i % world == rank]


def barrier(world: int) -> None:
    """Wait until every process got here (torch.distributed over gloo, set up on first use)."""
    if world == 1:
        return
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("gloo")
    dist.barrier()


def finish(world: int) -> None:
    if world > 1:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()
