"""The two objectives and the data stream: what is masked, what is scored, unbiasedness."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from toydlm.grammar import Grammar
from toydlm.train.data import batch_at, eval_batch, stream_seed
from toydlm.train.losses import T_EPS, ar_loss, mdlm_corrupt, mdlm_loss, stratified_times, suffix_masks

G = Grammar()
P, V, M = G.prompt_len, G.vocab_size, G.mask_id


@pytest.fixture(scope="module")
def tokens():
    return jnp.asarray(batch_at(G, 0, 0, 256))


def test_stratified_times_cover_the_unit_interval():
    t = np.sort(np.asarray(stratified_times(jax.random.PRNGKey(3), 64)))
    assert t.min() >= T_EPS and t.max() <= 1.0
    np.testing.assert_allclose(np.diff(t), (1 - T_EPS) / 64, rtol=1e-4)  # one t per stratum


def test_mdlm_corrupt_masks_only_the_response_with_rate_t(tokens):
    z, masked, t = mdlm_corrupt(tokens, jax.random.PRNGKey(0), prompt_len=P, mask_id=M)
    z, masked, t = map(np.asarray, (z, masked, t))
    np.testing.assert_array_equal(z[:, :P], np.asarray(tokens[:, :P]))  # prompt never masked
    assert not (z[:, :P] == M).any()
    np.testing.assert_array_equal(z[:, P:] == M, masked)  # masks exactly where reported
    np.testing.assert_array_equal(z[:, P:][~masked], np.asarray(tokens[:, P:])[~masked])
    # the masked fraction follows t (16 positions per row: a strong correlation)
    frac = masked.mean(1)
    assert np.corrcoef(frac, t)[0, 1] > 0.9
    assert abs(frac.mean() - t.mean()) < 0.03


def test_mdlm_loss_is_unbiased_for_a_uniform_model(tokens):
    """A model that predicts uniformly over the V-1 real tokens has NELBO exactly log(V-1)."""
    uniform = lambda x: jnp.zeros(x.shape + (V,))
    keys = jax.random.split(jax.random.PRNGKey(1), 200)
    losses = jax.vmap(lambda k: mdlm_loss(uniform, tokens[:64], k, prompt_len=P, mask_id=M)[0])(keys)
    losses = np.asarray(losses)
    assert (losses > 0).all()
    se = losses.std() / np.sqrt(len(losses))
    assert abs(losses.mean() - np.log(V - 1)) < 4 * se + 1e-3, (losses.mean(), np.log(V - 1), se)


def test_mdlm_loss_matches_a_direct_computation(tokens):
    """sum over masked response tokens of CE/t, over B * L_resp; unmasked and prompt positions free."""
    x = tokens[:32]
    w = jax.random.normal(jax.random.PRNGKey(5), (V, V))
    logits_fn = lambda z: w[z]  # a toy "model": logits depend on the input token only
    key = jax.random.PRNGKey(9)
    loss, aux = mdlm_loss(logits_fn, x, key, prompt_len=P, mask_id=M)
    z, masked, t = map(np.asarray, mdlm_corrupt(x, key, prompt_len=P, mask_id=M))
    lg = np.asarray(w)[z].astype(np.float64)
    lg[..., M] = -np.inf
    lp = (
        lg - np.log(np.exp(lg - lg.max(-1, keepdims=True)).sum(-1, keepdims=True)) - lg.max(-1, keepdims=True)
    )
    xr = np.asarray(x)[:, P:]
    ce = -np.take_along_axis(lp[:, P:], xr[..., None], -1)[..., 0]
    want = (np.where(masked, ce, 0) / t[:, None]).sum() / masked.size
    np.testing.assert_allclose(float(loss), want, rtol=1e-5)
    np.testing.assert_allclose(float(aux["masked_ce"]), ce[masked].mean(), rtol=1e-5)


def test_ar_loss_scores_next_tokens_of_the_response_only(tokens):
    x = tokens[:16]
    w = jax.random.normal(jax.random.PRNGKey(2), (V, V))
    loss, _ = ar_loss(lambda z: w[z], x, None, prompt_len=P, mask_id=M)
    lg = np.asarray(w)[np.asarray(x)].astype(np.float64)
    lg[..., M] = -np.inf
    lp = lg - np.log(np.exp(lg).sum(-1, keepdims=True))
    xn = np.asarray(x)
    want = -np.mean([lp[b, i - 1, xn[b, i]] for b in range(16) for i in range(P, G.seq_len)])
    np.testing.assert_allclose(float(loss), want, rtol=1e-5)
    # logits at prompt-predicting positions (0..P-2) and the last position do not matter
    noisy = lambda z: w[z].at[:, : P - 1].add(7.0).at[:, -1].add(7.0)
    np.testing.assert_allclose(
        float(ar_loss(noisy, x, None, prompt_len=P, mask_id=M)[0]), float(loss), rtol=1e-6
    )


def test_mask_id_is_never_a_target_probability(tokens):
    """Boosting the mask logit changes neither loss (the mask id is excluded from the softmax)."""
    x = tokens[:8]
    base = lambda z: jnp.zeros(z.shape + (V,))
    boost = lambda z: jnp.zeros(z.shape + (V,)).at[..., M].set(50.0)
    k = jax.random.PRNGKey(4)
    for fn in (ar_loss, mdlm_loss):
        a = fn(base, x, k, prompt_len=P, mask_id=M)[0]
        b = fn(boost, x, k, prompt_len=P, mask_id=M)[0]
        np.testing.assert_allclose(float(a), float(b), rtol=1e-6)


def test_data_stream_is_a_function_of_seed_and_step():
    a, b = batch_at(G, 3, 10, 32), batch_at(G, 3, 10, 32)
    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.int32 and a.shape == (32, G.seq_len)
    assert not np.array_equal(a, batch_at(G, 3, 11, 32))
    assert not np.array_equal(a, batch_at(G, 4, 10, 32))
    assert not np.array_equal(eval_batch(G, 3, 32), batch_at(G, 3, 0, 32))
    assert len({stream_seed(s, k) for s in range(20) for k in range(50)}) == 1000


@given(st.floats(T_EPS, 1.0), st.integers(1, 40))
def test_suffix_masks_mask_a_suffix_at_the_masked_fraction_t(t, r):
    """Each row masks its last positions, round(t * R) of them up to rounding at the boundary."""
    m = np.asarray(suffix_masks(jnp.asarray([t], jnp.float32), r))[0]
    assert (np.diff(m.astype(int)) >= 0).all()  # once masked, masked to the end
    assert abs(m.sum() - t * r) <= 0.5 + 1e-4 * r


def test_suffix_rows_replace_independent_masks_row_by_row(tokens):
    """suffix_frac 1: every row a suffix at the plain run's own t; 0.5: each row is either the plain mask or
    the suffix mask, both kinds occur, and the prompt is never masked."""
    key = jax.random.PRNGKey(4)
    z0, m0, t0 = map(np.asarray, mdlm_corrupt(tokens, key, prompt_len=P, mask_id=M))
    z1, m1, t1 = map(np.asarray, mdlm_corrupt(tokens, key, prompt_len=P, mask_id=M, suffix_frac=1.0))
    np.testing.assert_array_equal(t1, t0)
    suffix = np.asarray(suffix_masks(jnp.asarray(t0), m0.shape[1]))
    np.testing.assert_array_equal(m1, suffix)
    np.testing.assert_array_equal(z1[:, P:] == M, m1)
    _, mh, _ = map(np.asarray, mdlm_corrupt(tokens, key, prompt_len=P, mask_id=M, suffix_frac=0.5))
    as_plain = (mh == m0).all(1)
    as_suffix = (mh == suffix).all(1)
    assert (as_plain | as_suffix).all()
    differ = ~(m0 == suffix).all(1)  # rows where the two kinds are distinguishable
    assert as_plain[differ].any() and as_suffix[differ].any()
    assert 0.3 < as_suffix[differ].mean() < 0.7  # 256 rows at one half
    # the choice of suffix rows has a stream of its own, not the uniforms of the independent masks
    _, km = jax.random.split(key)
    u_mask = np.asarray(jax.random.uniform(km, m0.shape))
    reused = u_mask.ravel()[: len(as_suffix)] < 0.5  # what a choice reusing the mask stream would be
    assert not (reused == as_suffix)[differ].all()


def test_suffix_masking_is_an_mdlm_option_only():
    from flax import nnx

    from toydlm.model import init_model, model_config
    from toydlm.train.step import make_loss

    graphdef, _ = nnx.split(init_model(model_config("tiny", G, "ar"), 0))
    with pytest.raises(ValueError, match="applies to an mdlm run"):
        make_loss(graphdef, "ar", P, M, suffix_frac=0.5)


def test_the_held_out_step_scores_its_own_objective():
    """`step_fns` trains on one loss and evaluates another when given one: the held-out loss of a run that
    trains on suffix masks stays the plain NELBO."""
    import optax

    from toydlm.train.step import step_fns

    def trained(p, x, k):
        return (p["w"] * 2.0).sum(), {}

    def scored(p, x, k):
        return (p["w"] * 3.0).sum(), {}

    params = {"w": jnp.ones(2)}
    train_step, eval_step = step_fns(trained, optax.sgd(1.0), scored)
    assert float(eval_step(params, None, None)["loss"]) == 6.0
    _, _, m = train_step(params, optax.sgd(1.0).init(params), None, None, 0.0)
    assert float(m["loss"]) == 4.0
    assert float(step_fns(trained, optax.sgd(1.0))[1](params, None, None)["loss"]) == 4.0


def test_train_configs_name_suffix_masking_only_when_used():
    """Configs without suffix masks serialise as before it existed (so old run names and checkpoints hold);
    with them the share is recorded and read back."""
    from toydlm.train.config import TRAIN_PRESETS, TrainConfig

    cfg = TRAIN_PRESETS["tiny"]
    assert "suffix_mask_frac" not in cfg.to_dict()
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    with_suffix = cfg.replace(suffix_mask_frac=0.5)
    assert with_suffix.to_dict()["suffix_mask_frac"] == 0.5
    assert TrainConfig.from_dict(with_suffix.to_dict()) == with_suffix
