"""The transformer backbone and its denoiser wrapper: shapes, causality, logit alignment."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from toydlm.denoiser import DenoiserOutput, JaxDenoiser
from toydlm.grammar import Grammar
from toydlm.model import (
    MODEL_PRESETS,
    ModelConfig,
    count_params,
    init_model,
    make_denoiser,
    model_config,
)

G = Grammar()


@pytest.fixture(scope="module")
def tokens():
    return jnp.asarray(G.sample(3, 7).tokens)


@pytest.mark.parametrize("arch", ["ar", "mdlm"])
@pytest.mark.parametrize("pos", ["learned", "rope"])
def test_shapes_and_dtypes(arch, pos, tokens):
    cfg = model_config("tiny", G, arch, pos=pos)
    logits, hidden = init_model(cfg)(tokens)
    assert logits.shape == (3, G.seq_len, G.vocab_size) and logits.dtype == jnp.float32
    assert hidden.shape == (3, G.seq_len, MODEL_PRESETS["tiny"]["d_model"])
    assert bool(jnp.all(jnp.isfinite(logits)))


def test_model_config_from_grammar_and_arch():
    c = model_config("default", G, "ar")
    assert (c.vocab_size, c.seq_len, c.causal) == (G.vocab_size, G.seq_len, True)
    assert model_config("default", G, "mdlm").causal is False
    assert set(MODEL_PRESETS) == {"tiny", "default", "small"}
    with pytest.raises(ValueError, match="preset"):
        model_config("huge", G, "ar")
    with pytest.raises(ValueError, match="arch"):
        model_config("tiny", G, "gpt")
    with pytest.raises(ValueError, match="divisible"):
        ModelConfig(10, 8, d_model=30, n_layers=1, n_heads=4, d_ff=8, causal=True)


def test_hidden_is_after_final_norm(tokens):
    _, hidden = init_model(model_config("tiny", G, "mdlm"))(tokens)
    # LayerNorm with its initial scale 1 / bias 0: zero mean and unit variance per position
    np.testing.assert_allclose(np.asarray(hidden.mean(-1)), 0.0, atol=1e-5)
    np.testing.assert_allclose(np.asarray(hidden.var(-1)), 1.0, atol=1e-3)


@pytest.mark.parametrize("pos", ["learned", "rope"])
def test_ar_is_causal_and_mdlm_is_bidirectional(pos, tokens):
    j = 12
    changed = tokens.at[:, j].set((tokens[:, j] + 5) % G.vocab_size)
    ar = init_model(model_config("tiny", G, "ar", pos=pos), seed=1)
    a, b = ar(tokens)[0], ar(changed)[0]
    np.testing.assert_array_equal(np.asarray(a[:, :j]), np.asarray(b[:, :j]))
    assert float(jnp.abs(a[:, j:] - b[:, j:]).max()) > 1e-4
    md = init_model(model_config("tiny", G, "mdlm", pos=pos), seed=1)
    a, b = md(tokens)[0], md(changed)[0]
    assert float(jnp.abs(a[:, :j] - b[:, :j]).max()) > 1e-4  # earlier positions see the change


def test_rope_positions_matter():
    """Without learned positions, rotary embeddings still make the model order-aware."""
    md = init_model(model_config("tiny", G, "mdlm", pos="rope"), seed=2)
    x = jnp.asarray(G.sample(2, 3).tokens)
    y = x.at[:, [6, 7]].set(x[:, [7, 6]])  # swap two different tokens
    assert not np.array_equal(np.asarray(x), np.asarray(y))
    lx, ly = md(x)[0], md(y)[0]
    assert float(jnp.abs(lx[:, 10] - ly[:, 10]).max()) > 1e-4


def test_ar_denoiser_logits_are_aligned_to_positions(tokens):
    m = init_model(model_config("tiny", G, "ar"), seed=3)
    den = make_denoiser(m, "ar", G)
    assert isinstance(den, JaxDenoiser) and den.causal
    out = den(tokens)
    assert isinstance(out, DenoiserOutput)
    raw, hidden = m(tokens)
    # position i is predicted from the causal output at i - 1
    np.testing.assert_allclose(
        np.asarray(out.logits[:, 7:, 5]), np.asarray(raw[:, 6:-1, 5]), rtol=1e-5, atol=1e-5
    )
    np.testing.assert_allclose(np.asarray(out.hidden), np.asarray(hidden), rtol=1e-5, atol=1e-5)
    assert float(out.logits[:, :, G.mask_id].max()) <= -1e8
    # the logits at position i do not depend on the token at i (nor later ones)
    i = 10
    changed = tokens.at[:, i:].set(G.mask_id)
    np.testing.assert_allclose(
        np.asarray(den(changed).logits[:, : i + 1]), np.asarray(out.logits[:, : i + 1]), rtol=1e-5, atol=1e-5
    )


def test_mdlm_denoiser_masks_the_mask_id_and_is_pure(tokens):
    m = init_model(model_config("tiny", G, "mdlm"), seed=4)
    den = make_denoiser(m, "mdlm", G)
    assert not den.causal and den.prompt_len == G.prompt_len and den.response_len == G.response_len
    out = jax.jit(den.fn)(den.params, tokens)
    raw, _ = m(tokens)
    assert float(out.logits[..., G.mask_id].max()) <= -1e8
    keep = np.arange(G.vocab_size) != G.mask_id
    np.testing.assert_allclose(
        np.asarray(out.logits[..., keep]), np.asarray(raw[..., keep]), rtol=1e-5, atol=1e-5
    )
    # a pure function of params: zeroed params give a different answer, same shape
    zero = jax.tree.map(jnp.zeros_like, den.params)
    z = den.fn(zero, tokens).logits
    assert z.shape == out.logits.shape and float(jnp.abs(z[..., keep]).max()) == 0.0


def test_denoiser_rejects_wrong_arch_or_grammar():
    m = init_model(model_config("tiny", G, "mdlm"))
    with pytest.raises(ValueError, match="arch"):
        make_denoiser(m, "ar", G)
    other = Grammar(G.config.replace(n_benign_topics=9, name="other"))
    with pytest.raises(ValueError, match="vocab"):
        make_denoiser(m, "mdlm", other)


def test_param_count_matches_presets():
    n = {p: count_params(init_model(model_config(p, G, "ar"))) for p in ("tiny", "default")}
    assert n["tiny"] < n["default"]
    assert 150_000 < n["default"] < 170_000  # d=64, 3 layers, d_ff=256 (docs/prior-evidence.md)


def test_models_of_one_architecture_share_one_denoiser_function():
    """Seeds of one config share `fn` (so samplers compile once for all of them); their outputs stay their own."""
    from toydlm.model import init_model, model_config

    cfg = model_config("tiny", G, "mdlm")
    a, b = (make_denoiser(init_model(cfg, s), "mdlm", G) for s in (0, 1))
    assert a.fn is b.fn
    assert make_denoiser(init_model(model_config("tiny", G, "ar"), 0), "ar", G).fn is not a.fn
    canvas = jnp.full((2, G.seq_len), G.mask_id, jnp.int32)
    la, lb = a(canvas).logits, b(canvas).logits
    m = init_model(cfg, 1)
    assert not np.allclose(la, lb)
    np.testing.assert_allclose(lb, a.fn(b.params, canvas).logits)
    np.testing.assert_allclose(np.asarray(lb)[..., : G.mask_id], np.asarray(m(canvas)[0])[..., : G.mask_id],
                               rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("arch, shift", [("ar", False), ("mdlm", False), ("mdlm", True)])
def test_response_only_logits_match_the_full_ones_on_the_response(arch, shift, tokens):
    """The head run on the response only gives the same aligned logits there (shifted or not) and the same
    hidden states; the prompt positions, which no sampler reads, are zeros (the mask id still excluded)."""
    m = init_model(model_config("tiny", G, arch, shift=shift), seed=5)
    full, fast = make_denoiser(m, arch, G)(tokens), make_denoiser(m, arch, G, response_logits_only=True)(tokens)
    P = G.prompt_len
    assert fast.logits.shape == full.logits.shape
    np.testing.assert_allclose(np.asarray(fast.logits[:, P:]), np.asarray(full.logits[:, P:]), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(fast.hidden), np.asarray(full.hidden), rtol=1e-6, atol=1e-6)
    prompt = np.asarray(fast.logits[:, :P]).copy()
    assert (prompt[..., G.mask_id] <= -1e8).all()
    prompt[..., G.mask_id] = 0.0
    assert not prompt.any()
