"""Shared test setup: hypothesis profiles and a persistent JAX compilation cache.

`CI=true` selects the bounded, derandomised `ci` profile; `HYPOTHESIS_PROFILE=long` runs a
longer search on demand; otherwise `dev` (moderate, random).
"""

import os
from pathlib import Path

import jax
from hypothesis import HealthCheck, settings

_cache = Path(os.environ.get("TOYDLM_JAX_CACHE", Path.home() / ".cache" / "toydlm-jax"))
jax.config.update("jax_compilation_cache_dir", str(_cache))
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)

settings.register_profile(
    "ci", max_examples=40, derandomize=True, deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("long", max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
_default = "ci" if os.environ.get("CI", "").lower() in ("1", "true", "yes") else "dev"
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", _default))
