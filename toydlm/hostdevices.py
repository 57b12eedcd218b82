"""Split the host CPU into several JAX devices before JAX starts (the `toydlm` command does this).

The toy models are small: one XLA CPU device runs their matmuls on a shared thread pool and
leaves most of it idle between tiny kernels. Two host devices, with the batch split over them by
the data-parallel code already used for multi-GPU work, keep both cores of a laptop busy. Measured
on the 2-core development machine: an MDLM training step of the default preset 274 -> 212 ms, a
learned-model sampler cell 2.0 -> 0.8-1.5 s; sampled rows are bit-identical (each row's random
draws depend only on its own key). Compare on your machine with `toydlm bench train` under
`TOYDLM_HOST_DEVICES=1` and unset.
"""

from __future__ import annotations

import os
import sys

from toydlm.errors import UserError

FLAG = "--xla_force_host_platform_device_count"
ENV = "TOYDLM_HOST_DEVICES"
DEFAULT = 2


def requested_host_devices() -> int:
    """`$TOYDLM_HOST_DEVICES` (a positive integer), else 2 where the machine has two or more cores."""
    env = os.environ.get(ENV)
    if env is not None:
        if not env.isdigit() or int(env) < 1:
            raise UserError(f"{ENV}={env!r}: must be a positive integer")
        return int(env)
    return DEFAULT if (os.cpu_count() or 1) >= 2 else 1


def split_host_cpu() -> int | None:
    """Add the host-device flag to `XLA_FLAGS` unless one is set already; returns the count set.

    Acts only while JAX is not yet imported: after that the process's devices are someone else's
    choice (a test or a library caller), and changing the environment would only leak the flag into
    its child processes (on accelerators it changes only the host platform, which holds no model).
    """
    flags = os.environ.get("XLA_FLAGS", "")
    if FLAG in flags or "jax" in sys.modules:
        return None
    n = requested_host_devices()
    if n > 1:
        os.environ["XLA_FLAGS"] = f"{flags} {FLAG}={n}".strip()
    return n
