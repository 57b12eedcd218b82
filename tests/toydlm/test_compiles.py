"""The compile counter sees each program JAX builds inside its block, and nothing outside it."""

import jax
import jax.numpy as jnp

from toydlm.compiles import count_compiles


def test_each_new_static_argument_is_one_compile_and_a_repeat_is_none():
    def scale(x, n):
        return x * n

    f = jax.jit(scale, static_argnums=1)
    x = jnp.ones(3)
    with count_compiles() as c:
        for n in (11, 12, 13, 11):
            f(x, n).block_until_ready()
    assert c.by_function["jit(scale)"] == 3 and c.n >= 3 and c.seconds > 0
    f(x, 14).block_until_ready()  # after the block: not counted
    assert c.by_function["jit(scale)"] == 3
    assert c.to_dict()["n_compiles"] == c.n
