"""Data parallelism over every device JAX sees: a 1-D `data` mesh, batch split, params replicated."""

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
    return NamedSharding(mesh, PartitionSpec())


def batch_sharded(mesh: Mesh) -> NamedSharding:
    """Leading (batch) axis split over the `data` axis; the rest replicated."""
    return NamedSharding(mesh, PartitionSpec(DATA_AXIS))


def replicate(tree: Any, mesh: Mesh) -> Any:
    return jax.device_put(tree, replicated(mesh))


def shard_batch(x: np.ndarray, mesh: Mesh) -> jax.Array:
    n = mesh.devices.size
    if x.shape[0] % n:
        raise ValueError(f"batch of {x.shape[0]} is not divisible by the {n} devices of the mesh")
    return jax.device_put(x, batch_sharded(mesh))
