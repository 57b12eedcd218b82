"""A seed ensemble as one denoiser: each member's rows (every third) are that member's own output."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from toydlm.attacks import build_prompts
from toydlm.errors import UserError
from toydlm.grammar import Grammar
from toydlm.model import init_model, make_denoiser, model_config
from toydlm.samplers import SamplerConfig, init_state, no_force, row_keys, scan_run
from toydlm.samplers.ensemble import stack_denoisers

G = Grammar()


def _dens(arch="mdlm", seeds=(0, 1, 2)):
    cfg = model_config("tiny", G, arch)
    return [make_denoiser(init_model(cfg, s), arch, G) for s in seeds]


def test_each_block_of_rows_goes_through_its_own_member():
    dens = _dens()
    b = build_prompts(None, G, 4, seed=0)
    canvas = jnp.asarray(np.concatenate([b.prompt_ids, b.response], 1), jnp.int32)
    out = stack_denoisers(dens)(jnp.repeat(canvas, 3, axis=0))
    assert out.logits.shape == (12, G.seq_len, G.vocab_size) and out.hidden.shape[0] == 12
    for k, d in enumerate(dens):
        np.testing.assert_allclose(out.logits[k::3], d(canvas).logits, rtol=1e-5, atol=1e-5)
    assert not np.allclose(out.logits[0::3], out.logits[1::3])


def test_a_sampler_over_the_stack_matches_each_member_alone():
    dens = _dens()
    cfg = SamplerConfig("low_confidence", steps=4, temperature=1.0).resolved(G.response_len)
    b = build_prompts(None, G, 8, seed=1)
    state = init_state(b.prompt_ids, b.response, b.pinned, G.mask_id)
    keys = row_keys(jax.random.PRNGKey(0), np.arange(8))
    alone = [np.asarray(scan_run(d, cfg, state, keys, no_force(8), with_hidden=False)[0].canvas) for d in dens]
    big = jax.tree.map(lambda x: np.repeat(x, 3, axis=0), (state, keys))
    final, rec = scan_run(stack_denoisers(dens), cfg, big[0], big[1], no_force(24), with_hidden=False)
    together = np.asarray(final.canvas)
    for k in range(3):
        np.testing.assert_array_equal(together[k::3], alone[k])


def test_models_of_different_architectures_cannot_be_stacked():
    with pytest.raises(UserError, match="one architecture"):
        stack_denoisers(_dens("mdlm", (0,)) + _dens("ar", (0,)))
