"""Data parallelism over the devices JAX sees: a 1-D `data` mesh, batch split, params replicated.

Training and sampling share it. Rows are independent in both (each row's randomness comes from
its own key), so splitting the batch over devices changes where a row is computed, not its value.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

DATA_AXIS = "data"


def data_mesh(devices: list | None = None) -> Mesh:
    """A mesh with one `data` axis over all (or the given) devices."""
    devs = np.asarray(devices if devices is not None else jax.devices())
    return Mesh(devs, (DATA_AXIS,))


def replicated(mesh: Mesh) -> NamedSharding:
    """Every device holds the whole array (params, optimiser state, scalars)."""
    return NamedSharding(mesh, PartitionSpec())


def batch_sharded(mesh: Mesh) -> NamedSharding:
    """Leading (batch) axis split over the `data` axis; the rest replicated."""
    return NamedSharding(mesh, PartitionSpec(DATA_AXIS))


def replicate(tree: Any, mesh: Mesh) -> Any:
    """Put every leaf of a pytree on every device of the mesh."""
    return jax.device_put(tree, replicated(mesh))


def shard_batch(tree: Any, mesh: Mesh) -> Any:
    """Split every leaf of a pytree along its leading (batch) axis over the mesh's devices."""
    n = mesh.devices.size
    for x in jax.tree.leaves(tree):
        if x.shape[0] % n:
            raise ValueError(f"batch of {x.shape[0]} is not divisible by the {n} devices of the mesh")
    return jax.device_put(tree, batch_sharded(mesh))


def devices_for(*batch_sizes: int) -> list:
    """Every device when each batch size splits evenly over them, else the first one alone.

    (The `toydlm` command splits the host CPU into two devices; an odd batch then simply runs
    on one.)
    """
    devs = jax.devices()
    if len(devs) > 1 and any(b % len(devs) for b in batch_sizes):
        return devs[:1]
    return devs


def split_rows(params: Any, rows: Any) -> tuple[Any, Any]:
    """Replicate `params` and split the batch-leading pytree `rows` over every device.

    Unchanged (nothing is moved) on one device or when the batch does not divide evenly.
    """
    devices = devices_for(jax.tree.leaves(rows)[0].shape[0])
    if len(devices) == 1:
        return params, rows
    mesh = data_mesh(devices)
    return replicate(params, mesh), shard_batch(rows, mesh)
