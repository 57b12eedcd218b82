"""The `ar` sampler on a causal Hugging Face model with its KV cache: one forward over the prompts,
then one token per step, batched, left padding and attention mask handled as `generate` does.

Only the next position's logits row `[B, V + 1]` crosses into JAX (the `+ 1` column is the mask
placeholder, `toydlm.bridge.ends`), and the JAX step is the `ar` policy restricted to that row: the
same proposal, the same noise (the row of `step_noise`'s draw the slow path would use, computed
alone from threefry's counter form), hence the same tokens as `loop_sample` over `HFDenoiser` at
any temperature, for the same keys (tested). What differs from the slow path's trace, by design:
- `confidence` is recorded at the committed position only (NaN at later positions, whose slow-path
  "predictions" come from padding inputs a causal model never trained on);
- `hidden_committed` at step t is the mean final-layer state of the t committed response tokens,
  as in the slow path; `hidden_mean` is the same, and at step 0 (nothing committed yet) the state of
  the last prompt token, which predicts the first response token (the slow path averages states of
  padding inputs there).
"""

from __future__ import annotations

import inspect
from functools import lru_cache

import jax
import jax.numpy as jnp
import numpy as np

from toydlm.bridge.adapters import find_final_norm, position_ids, widen
from toydlm.bridge.sampling import canonical_ends, prompt_batch, row_index
from toydlm.errors import UserError
from toydlm.samplers import SamplerConfig, init_state, row_keys, run_key
from toydlm.samplers.drivers import all_step_keys
from toydlm.samplers.proposals import N_UNIFORMS, draw, process_logits, step_noise, uniform_from_bits
from toydlm.samplers.state import SamplerState
from toydlm.trace import Trace, build_trace, concat_traces

KV_DRAW = ("the KV-cache AR path takes its inverse-CDF draw as kv_ar_sample(draw='icdf'); the sampler config's "
           "draw must stay 'race', not {!r}")


def _race_row(key: jax.Array, pos, L: int, W: int) -> jax.Array:
    """Row `pos` of the Exp(1) race noise `step_noise(key, L, W, True)` draws `[1, W]`, computed alone."""
    if not jax.config.jax_threefry_partitionable:  # the counter form below is the partitionable one
        race, _ = step_noise(key, L, W, True)
        return jax.lax.dynamic_slice_in_dim(race, pos, 1)
    from jax.extend.random import threefry2x32_p

    idx = (pos * (W + N_UNIFORMS) + jnp.arange(W)).astype(jnp.uint32)
    b1, b2 = threefry2x32_p.bind(key[0], key[1], jnp.zeros_like(idx), idx)
    return -jnp.log(uniform_from_bits(b1 ^ b2))[None]


def icdf_tokens(lg_BW, temperature: float, u_B: np.ndarray):
    """(token `[B]`, its probability at temperature 1 `[B]`) drawn from softmax(logits / T) by inverse CDF,
    in torch: one uniform per row instead of the exponential race's one per vocabulary entry (whose
    threefry over a 150k vocabulary costs as much as a 0.5B model's forward on a CPU). Exact in law;
    not the loop driver's token for the same key."""
    import torch

    cdf = torch.cumsum(torch.softmax(lg_BW / temperature, -1), -1)
    u = torch.as_tensor(u_B, dtype=cdf.dtype)[:, None] * cdf[:, -1:]
    tok = torch.searchsorted(cdf, u, right=True).clamp_(max=lg_BW.shape[-1] - 1)[:, 0]
    p_tok = torch.softmax(lg_BW, -1).gather(1, tok[:, None])[:, 0]
    return tok, p_tok


def ar_row_step(cfg: SamplerConfig, mask_id: int, state: SamplerState, lg_W: jax.Array, key) -> SamplerState:
    """The `ar` policy's step for one row, from the next position's logits only."""
    if cfg.draw != "race":
        raise UserError(KV_DRAW.format(cfg.draw))
    L = state.pinned.shape[0]
    masked = state.canvas[state.canvas.shape[0] - L:] == mask_id
    pos = jnp.argmax(masked & (jnp.cumsum(masked) == 1))
    lg = process_logits(lg_W[None], cfg, mask_id)
    race = _race_row(key, pos, L, lg.shape[-1]) if cfg.temperature > 0 else None
    tok = draw(lg, cfg, race)[0]
    return commit_row(state, mask_id, tok, jax.nn.softmax(lg[0])[tok])


def commit_row(state: SamplerState, mask_id: int, tok, p_tok) -> SamplerState:
    """Commit `tok` (probability `p_tok`) at the row's first masked response position."""
    L = state.pinned.shape[0]
    P = state.canvas.shape[0] - L
    resp, i = state.canvas[P:], state.step
    masked = resp == mask_id
    commit = masked & (jnp.cumsum(masked) == 1)
    new = jnp.where(commit, tok, resp)
    return SamplerState(
        canvas=jnp.concatenate([state.canvas[:P], new]), step=i + 1, pinned=state.pinned,
        commit_conf=jnp.where(commit, p_tok, state.commit_conf), commit_step=jnp.where(commit, i, state.commit_step),
        block_n=state.block_n, xhat_argmax=new, xhat_sample=new, conf=jnp.where(commit, p_tok, jnp.nan),
        committed=commit, remasked=jnp.zeros(L, bool))


def _record(new: SamplerState):
    resp = new.canvas[:, new.canvas.shape[1] - new.pinned.shape[1]:]
    rec = {"canvas": resp, "xhat_argmax": new.xhat_argmax, "xhat_sample": new.xhat_sample,
           "confidence": new.conf, "committed": new.committed, "remasked": new.remasked}
    return new, rec, jnp.where(new.committed, resp, 0).sum(1)


@lru_cache(maxsize=16)
def _step_jit(cfg: SamplerConfig, mask_id: int):
    """One jitted call per step: (new state, the step's trace record, the committed token `[B]`)."""
    step = jax.vmap(lambda st, lg, k: ar_row_step(cfg, mask_id, st, lg, k))
    return jax.jit(lambda st, lg_BW, keys_B: _record(step(st, lg_BW, keys_B)))


@lru_cache(maxsize=16)
def _commit_jit(mask_id: int):
    """As `_step_jit`, for tokens drawn outside JAX (`icdf_tokens`): (state, tokens `[B]`, probabilities `[B]`)."""
    step = jax.vmap(lambda st, t, p: commit_row(st, mask_id, t, p))
    return jax.jit(lambda st, tok_B, p_B: _record(step(st, tok_B, p_B)))


_uniforms = jax.jit(jax.vmap(lambda k: jax.random.uniform(k, dtype=jnp.float32)))


class CachedAR:
    """A causal LM decoded with its KV cache; `forward` returns (next logits `[B, V]`, final states `[B, D]`)."""

    def __init__(self, model, vocab_size: int, mask_id: int, forbid: tuple[int, ...] = ()):
        self.model, self.vocab_size, self.mask_id, self.forbid = model, vocab_size, mask_id, forbid
        self._captured: list = []
        norm = find_final_norm(model)
        self._hook = norm.register_forward_hook(lambda m, i, o: self._captured.append(o)) if norm else None
        params = inspect.signature(model.forward).parameters
        self._keep = {"logits_to_keep": 1} if "logits_to_keep" in params else {}

    def forward(self, ids, am, pos, past):
        import torch

        self._captured.clear()
        with torch.no_grad():
            out = self.model(input_ids=ids, attention_mask=am, position_ids=pos, past_key_values=past, use_cache=True,
                             output_hidden_states=self._hook is None, **self._keep)
        h = self._captured[-1] if self._captured else out.hidden_states[-1]
        h = h[0] if isinstance(h, tuple) else h
        lg = widen(out.logits[:, -1].float()[:, : self.vocab_size], self.mask_id, self.forbid)
        return lg, h[:, -1].float(), out.past_key_values

    def close(self) -> None:
        if self._hook is not None:
            self._hook.remove()
            self._hook = None


def _decode_chunk(cm: CachedAR, batch, att: np.ndarray, cfg: SamplerConfig, keys_B, record_hidden: bool,
                  on_step=None, stop_ids=None, end_fill: int = 0, icdf: bool = False) -> tuple[SamplerState, dict]:
    """Decode one chunk of left-padded prompts (`prompt_batch`) for every step: (final state, records `[T, B, ...]`).
    With `stop_ids`, a row leaves the torch batch once it commits one of them (its KV cache rows are
    dropped) and gets a forced-end logits row from then on; the forward stops when every row has ended."""
    import torch

    dev = next(cm.model.parameters()).device
    st = init_state(batch.prompt_ids, batch.response, batch.pinned, cm.mask_id)
    step, keys_TB = _step_jit(cfg, cm.mask_id), all_step_keys(keys_B, cfg.steps)
    icdf = icdf and cfg.temperature > 0 and cfg.top_p >= 1
    am = torch.as_tensor(att, dtype=torch.long, device=dev)
    pos = position_ids(am)
    lg, h_last, past = cm.forward(torch.as_tensor(batch.prompt_ids, dtype=torch.long, device=dev), am, pos, None)
    B = len(batch.prompt_ids)
    live = np.arange(B)  # rows still in the torch batch
    full, forced = torch.empty(B, lg.shape[1]), _forced_end_rows(B, lg.shape[1], end_fill)
    h_sum, n_h, recs = torch.zeros_like(h_last), torch.zeros_like(h_last[:, :1]), []
    for i in range(cfg.steps):
        full[live] = lg.cpu()
        if stop_ids is not None and not len(live):  # every row has ended: what either draw gives a forced row
            st, rec, tok = _commit_jit(cm.mask_id)(st, jnp.full(B, end_fill, jnp.int32), jnp.ones(B, jnp.float32))
        elif icdf:
            t_B, p_B = icdf_tokens(full, cfg.temperature, np.array(_uniforms(keys_TB[i])))
            st, rec, tok = _commit_jit(cm.mask_id)(st, jnp.asarray(t_B.numpy(), jnp.int32), jnp.asarray(p_B.numpy()))
        else:
            st, rec, tok = step(st, jnp.asarray(full.numpy()), keys_TB[i])
        if record_hidden:
            done = h_sum / n_h if i else torch.full_like(h_last, float("nan"))
            rec["hidden_mean"], rec["hidden_committed"] = (h_last if i == 0 else done), done
        recs.append(rec)
        if on_step is not None:
            on_step(i)
        if i + 1 == cfg.steps:
            break
        tok = np.array(tok)
        if stop_ids is not None:
            keep = ~np.isin(tok[live], stop_ids)
            full[live[~keep]] = forced[: (~keep).sum()]
            if not keep.any():
                live = live[:0]
            elif not keep.all():
                sel = torch.as_tensor(np.flatnonzero(keep), device=dev)
                past.batch_select_indices(sel)
                am, pos, live = am[sel], pos[sel], live[keep]
        if len(live):
            am = torch.cat([am, torch.ones_like(am[:, :1])], 1)
            pos = pos[:, -1:] + 1
            lg, h, past = cm.forward(torch.as_tensor(tok[live], dtype=torch.long, device=dev)[:, None], am, pos, past)
            rows = torch.as_tensor(live, device=dev)
            h_sum[rows] += h
            n_h[rows] += 1
        else:
            lg = lg[:0]
    return st, {k: np.stack([_host(r[k]) for r in recs]) for k in recs[0]}


def _forced_end_rows(B: int, W: int, eos_id: int):
    """`[B, W]` logits that give all mass to `eos_id`: what an ended row proposes after leaving the batch."""
    import torch

    rows = torch.full((B, W), -1e9)
    rows[:, eos_id] = 0.0
    return rows


def _host(x) -> np.ndarray:
    """A record entry (JAX array or torch tensor) as a host numpy array."""
    return x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)


def kv_ar_sample(model, prompt_ids: np.ndarray, attention: np.ndarray, response_len: int, cfg: SamplerConfig,
                 seed: int, mask_id: int, eos_id: int, vocab_size: int, batch_size: int = 16, end_ids=(),
                 forbid: tuple[int, ...] = (), record_hidden: bool = True, before_batch=None,
                 on_step=None, stop_at_end: bool = False, draw: str = "race",
                 rows: np.ndarray | None = None) -> Trace:
    """The `ar` sampler with the KV cache over every prompt (left-padded `[N, P]`, `attention` False at
    padding); the same keys, tokens and trace schema as `loop_sample` over `HFDenoiser`.
    `stop_at_end`: a row stops being decoded once it commits an end id, so a batch costs its rows'
    lengths, not its longest row times its size; the text up to each row's end is unchanged (up to
    float rounding of a smaller batch), everything after it is `eos_id` with confidence 1, and
    `hidden_committed` averages the states up to the end only. `draw="icdf"` samples by inverse CDF
    (`icdf_draw`): the same distribution, far cheaper on a large vocabulary, other tokens than the loop
    driver's for the same keys. `rows`: row i draws the keys of row `rows[i]` of a larger set (contiguous or
    not, as a harness shard's are), so a set sampled in pieces equals one sampled at once."""
    if draw not in ("race", "icdf"):
        raise ValueError(f"draw must be 'race' or 'icdf', not {draw!r}")
    if cfg.draw != "race":
        raise UserError(KV_DRAW.format(cfg.draw))
    cfg = cfg.resolved(response_len)
    if cfg.name != "ar":
        raise ValueError(f"the KV-cached path runs the 'ar' sampler only, not {cfg.name!r}")
    key = run_key(seed)
    cm = CachedAR(model, vocab_size, mask_id, forbid)
    stop = np.asarray(sorted({int(eos_id), *map(int, end_ids)})) if stop_at_end else None
    parts = []
    try:
        for a in range(0, len(prompt_ids), batch_size):
            b = min(a + batch_size, len(prompt_ids))
            if before_batch is not None:
                before_batch(a, b)
            batch = prompt_batch(prompt_ids[a:b], response_len, mask_id)
            keys = row_keys(key, row_index(rows, a, b))
            final, rec = _decode_chunk(cm, batch, attention[a:b], cfg, keys,
                                       record_hidden, on_step, stop, eos_id, draw == "icdf")
            parts.append(build_trace(canonical_ends(rec, eos_id, end_ids), final, batch, {}, None, eos_id=eos_id))
    finally:
        cm.close()
    trace = concat_traces(parts)
    trace.meta.update({"sampler": cfg.to_dict(), "seed": seed, "mask_id": mask_id, "eos_id": eos_id,
                       "end_ids": [int(i) for i in end_ids] or [int(eos_id)], "driver": "kv-cache",
                       "stop_at_end": stop_at_end, "draw": draw})
    return trace
