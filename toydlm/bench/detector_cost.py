"""What each jailbreak detector costs beside generation: steady-state wall time and XLA FLOPs per sequence.

Everything runs on one fixed batch of n benign prompts: generation is the jitted sampler (a scan over
all steps), and each detector scores what that batch's generation produced and recorded. Every
function is warmed up (JIT compiled) first, then timed best of k in interleaved rounds, so drift in
machine load hits all alike. FLOPs come from XLA's cost analysis of the lowered program: they do not
depend on the machine, unlike wall time, and need no compilation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from toydlm.attacks import build_prompts
from toydlm.bench.timing import best_of_each
from toydlm.denoiser import JaxDenoiser
from toydlm.grammar import Grammar
from toydlm.grammar.judges import refusal_found
from toydlm.samplers import Force, SamplerConfig, SamplerState, init_state, row_keys, scan_run
from toydlm.sri import SRIGuard, pooled_states, sri_signal
from toydlm.sri.baselines import GuardModel, response_nll
from toydlm.sri.guard import score_recorded_states

METHOD = ("generation = the jitted sampler (scan over all steps) without hidden recording on a fixed "
          "batch; SRI Guard = SRI signal from the pooled states the sampler recorded + autoencoder "
          "score in one jitted call (numpy reference path timed too; recording the pooled states is "
          "timed apart as hidden_recording_overhead_pct); text-level = refusal judge on every step's "
          "canvas + autoencoder; guard model / perplexity = one forward pass on the final text; all "
          "warmed up, best of k")


@dataclass(frozen=True)
class FittedDetectors:
    """The detectors whose cost is measured, already fitted (see `toydlm.experiment.sri_eval`)."""

    sri_guard: SRIGuard
    centres: tuple[np.ndarray, np.ndarray]  # benign and refusal anchors [T, D] of the SRI signal
    text_guard: SRIGuard  # the autoencoder of the text-level refusal signal
    guard_model: Callable[[np.ndarray], np.ndarray]  # final tokens [N, L] -> scores [N]
    ar_den: JaxDenoiser | None = None  # the perplexity filter's AR model; None: no perplexity filter
    tau: float = 0.1  # the SRI signal's temperature


@dataclass(frozen=True)
class TimingBatch:
    """One fixed batch of benign prompts: the sampler's inputs and what one generation recorded."""

    den: JaxDenoiser
    config: SamplerConfig  # resolved for the grammar's response length
    state: SamplerState
    keys: jax.Array  # one per row
    force: Force
    tokens: np.ndarray  # [n, P + L] prompt + masked response: the generator's input
    hidden: dict  # hidden_mean / hidden_committed [T, n, D], on device as the scan leaves them
    canvas: np.ndarray  # [T, n, L] committed response per step
    final: np.ndarray  # [n, P + L] prompt + final response

    def generate(self, with_hidden: bool) -> tuple[SamplerState, dict]:
        return scan_run(self.den, self.config, self.state, self.keys, self.force, with_hidden=with_hidden)


def timing_batch(den: JaxDenoiser, g: Grammar, cfg: SamplerConfig, seed: int, n: int) -> TimingBatch:
    """Build the batch of n benign prompts (seed + 1) and generate it once, recording hidden states."""
    c = cfg.resolved(g.response_len)
    rows = build_prompts("benign", g, n, seed + 1, c.steps).rows(0, n)
    state = init_state(rows.prompt_ids, rows.response, rows.pinned, int(den.mask_id))
    force = Force(rows.force_step, rows.force_pos, rows.force_tok)
    keys = row_keys(jax.random.PRNGKey(seed), np.arange(n))
    _, rec = scan_run(den, c, state, keys, force, with_hidden=True)
    canvas = np.asarray(rec["canvas"])
    return TimingBatch(den, c, state, keys, force, np.concatenate([rows.prompt_ids, rows.response], 1),
                       {name: rec[name] for name in ("hidden_mean", "hidden_committed")}, canvas,
                       np.concatenate([np.asarray(rows.prompt_ids), canvas[-1]], 1))


def _detector_calls(det: FittedDetectors, g: Grammar, b: TimingBatch) -> dict[str, Callable[[], object]]:
    """One call per detector scoring the whole batch, as deployed (centres converted once per model)."""
    bc, rc = det.centres
    bcj, rcj = jnp.asarray(bc, jnp.float32), jnp.asarray(rc, jnp.float32)
    recorded = {name: np.asarray(v) for name, v in b.hidden.items()}
    calls = {
        "sri_guard": lambda: det.sri_guard.score_recorded(b.hidden["hidden_committed"], b.hidden["hidden_mean"],
                                                          bcj, rcj, det.tau),
        "sri_guard_numpy_reference": lambda: det.sri_guard.score(
            sri_signal(pooled_states(recorded, "generated"), bc, rc, det.tau)),
        "text_level_refusal_signal": lambda: det.text_guard.score(
            (~np.asarray(refusal_found(g, b.canvas))).T.astype(float)),
        "guard_model": lambda: det.guard_model(b.final),
    }
    if det.ar_den is not None:
        calls["perplexity_filter"] = lambda: response_nll(det.ar_den, b.final, g)
    return calls


def _flops_per_seq(det: FittedDetectors, b: TimingBatch) -> dict[str, float | None]:
    """XLA FLOPs per sequence: generation (one forward pass per step) and each jitted detector."""
    n = len(b.final)
    bcj, rcj = (jnp.asarray(c, jnp.float32) for c in det.centres)
    fwd = xla_flops(b.den.fn, b.den.params, jnp.asarray(b.tokens))
    tokens = jnp.asarray(b.final)
    gm = det.guard_model
    flops = {"generation": None if fwd is None else fwd * b.config.steps / n,
             "sri_guard": xla_flops(score_recorded_states, det.sri_guard.params, b.hidden["hidden_committed"],
                                    b.hidden["hidden_mean"], bcj, rcj, det.tau),
             "guard_model": xla_flops(gm.fn, gm.params, tokens) if isinstance(gm, GuardModel) else None,
             "perplexity_filter": None if det.ar_den is None else xla_flops(det.ar_den.fn, det.ar_den.params, tokens)}
    return {k: None if v is None else v / (1 if k == "generation" else n) for k, v in flops.items()}


def detector_overhead(den: JaxDenoiser, g: Grammar, cfg: SamplerConfig, seed: int, n: int, det: FittedDetectors,
                      k: int) -> dict:
    """Steady-state cost per sequence of generation and of every detector, as a share of generation.

    n = the attack traces' batch size, so the sampler is already compiled for it."""
    b = timing_batch(den, g, cfg, seed, n)
    gen_calls = {h: lambda h=h: jax.block_until_ready(b.generate(h)) for h in (False, True)}
    det_calls = _detector_calls(det, g, b)
    best = best_of_each({("gen", h): f for h, f in gen_calls.items()} | {("det", d): f for d, f in det_calls.items()},
                        k)
    gen = {h: best[("gen", h)] for h in gen_calls}
    per = {name: best[("det", name)] / n for name in det_calls}
    g0 = gen[False] / n
    flops = _flops_per_seq(det, b)
    return {"n_seqs": n, "k": k, "generation_s_per_seq": g0, "generation_with_hidden_s_per_seq": gen[True] / n,
            "hidden_recording_overhead_pct": 100 * (gen[True] - gen[False]) / gen[False],
            "sri_guard_overhead_pct_incl_recording": 100 * (gen[True] - gen[False] + per["sri_guard"] * n)
            / gen[False],
            "flops_per_seq": flops,
            "flops_ratio_guard_model_vs_sri_guard": ratio(flops["guard_model"], flops["sri_guard"]),
            "detectors": {name: {"s_per_seq": s, "overhead_pct": 100 * s / g0} for name, s in per.items()},
            "overhead_ratio_vs_guard_model": per["guard_model"] / per["sri_guard"],
            "method": METHOD}


def xla_flops(fn: Callable, *args) -> float | None:
    """XLA's FLOP count of one call `fn(*args)` from the lowered program; None where unavailable."""
    try:
        cost = jax.jit(fn).lower(*args).cost_analysis()
        cost = cost[0] if isinstance(cost, (list, tuple)) else cost
        return float(cost["flops"])
    except Exception:  # noqa: BLE001 - cost analysis is best effort across backends
        return None


def ratio(a: float | None, b: float | None) -> float | None:
    """a / b, or None when either is missing or b is zero."""
    return None if a is None or not b else a / b
