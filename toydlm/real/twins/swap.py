"""The sampler swap on a student: fixed weights, holdout prompts, the samplers and controls real LLaDA has.

Samplers are named as in `toydlm audit` (`toydlm.real.kit.sampler_specs`). The core set:
- AR order;
- random;
- global low confidence;
- low confidence in blocks of 32 (`@default`: a divisor of a shorter canvas);
- global low confidence under `+eos_last` (end tokens selected only after everything else);
- global low confidence under `+eos_forbidden` (end tokens never proposed: forced full length).

Every sampler but AR order commits two tokens per step. The gen-length sweep runs AR order and global
low confidence on canvases shorter than the one trained.

A response ends at its first end token, end of turn (EOT) or end of text (EOS). Each row records its
text (keyword-judged for refusal), its length, whether it ended, its unknown-token share, and its
EOS-first terms with both end tokens counted as ends, from which a cell's `eos_first_excess` pools exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np

from toydlm.attacks import PromptBatch
from toydlm.bridge.judges import keyword_refusal
from toydlm.real.kit.sampler_specs import parse_sampler
from toydlm.real.twins.vocab import END_IDS, EOS_ID, EOT_ID, MASK_ID, UNK_ID
from toydlm.samplers import SamplerConfig
from toydlm.trace import eos_first_terms, excess_of_terms

CORE_SAMPLERS = ("ar_order", "random", "low_confidence", "low_confidence@default", "low_confidence+eos_last",
                 "low_confidence+eos_forbidden")
SWEEP_SAMPLERS = ("ar_order", "low_confidence")
SWEEP_LENGTHS = (32, 64)  # besides the trained canvas
DIFFUSION_DRAW = "inverse_cdf"  # how the students' diffusion samplers draw proposals (an audit of a student too)


@dataclass(frozen=True)
class SwapSampler:
    """A sampler as a cell runs it: its audit-style label, the response length, and the lab config."""

    label: str
    gen_length: int
    cfg: SamplerConfig


def sampler_at(label: str, gen_length: int, temperature: float = 1.0, draw: str = DIFFUSION_DRAW) -> SwapSampler:
    """The student's sampler for a label: `ar` (the AR student's decoder) or any audit-style diffusion spec,
    at two tokens per step, with EOS and EOT as its end tokens. The diffusion samplers draw proposals by
    `draw`: by default the inverse CDF, the same distribution as the race at a fraction of its cost on CPU
    (`toydlm bench twin_sampling`). The AR student's decoder keeps the race its stored cells were drawn with."""
    if label == "ar":
        cfg = SamplerConfig("ar", temperature=temperature)
    else:
        spec = parse_sampler(label, "dlm", gen_length, temperature, max(1, gen_length // 2))
        label, cfg = spec.label, spec.cfg.replace(draw=draw)  # `@default`: the block length it runs
    return SwapSampler(label, gen_length, cfg.replace(eos_id=EOS_ID, end_ids=(EOT_ID,)))


def swap_samplers(response_len: int, temperature: float = 1.0) -> tuple[SwapSampler, ...]:
    """The MDLM student's cells: the core set on the trained canvas, then the gen-length sweep."""
    core = [sampler_at(s, response_len, temperature) for s in CORE_SAMPLERS]
    sweep = [sampler_at(s, n, temperature) for n in SWEEP_LENGTHS if n < response_len for s in SWEEP_SAMPLERS]
    return tuple(core + sweep)


def prompt_batch(prompt_rows: np.ndarray, response_len: int, attack: str, harmful: bool) -> PromptBatch:
    """Holdout prompts `[n, P]` with all-mask responses, no pins and no injections."""
    n = len(prompt_rows)
    minus = np.full(n, -1, np.int32)
    return PromptBatch(prompt_ids=np.asarray(prompt_rows, np.int32),
                       response=np.full((n, response_len), MASK_ID, np.int32),
                       pinned=np.zeros((n, response_len), bool), force_step=minus, force_pos=np.zeros(n, np.int32),
                       force_tok=np.zeros(n, np.int32), topic_kind=np.full(n, int(harmful), np.int32),
                       wrapper=np.zeros(n, np.int32), topic=minus, attack=attack)


def end_lengths(final: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(length, ended) of each final response: the position of its first end token, L when it has none."""
    ends = np.isin(final, END_IDS)
    ended = ends.any(-1)
    return np.where(ended, ends.argmax(-1), final.shape[-1]), ended


def trace_rows(trace, vocab, samples: int) -> list[dict]:
    """Per-row records of a sampled trace: prompt and sample index, text, length, ended, refusal, unknown
    share, and the EOS-first terms (s, E, M, m) with both end tokens counted as ends (NaN as None)."""
    canvas = np.asarray(trace["canvas"])
    final = canvas[-1]
    length, ended = end_lengths(final)
    one_end = np.where(canvas == EOT_ID, EOS_ID, canvas)
    terms = eos_first_terms(np.asarray(trace["committed"]), one_end, EOS_ID, int(trace.meta["n_first_commits"]))
    out = []
    for i, row in enumerate(final):
        text = vocab.decode(row)
        body = row[: length[i]]
        out.append({"prompt": i // samples, "sample": i % samples, "text": text, "length": int(length[i]),
                    "ended": bool(ended[i]), "refusal": bool(keyword_refusal(text)),
                    "unk_share": float((body == UNK_ID).mean()) if len(body) else 0.0,
                    "eos": [float(t[i]) if np.isfinite(t[i]) else None for t in terms]})
    return out


def rows_summary(rows: list[dict]) -> dict:
    """A cell's rates from its rows (pure; the pooled cell and each seed's use the same function). The SEs
    of the refusal rate and of the mean length are clustered by prompt, as several samples of one prompt
    (from one seed or several) are not independent."""
    ref = np.asarray([r["refusal"] for r in rows], float)
    length = np.asarray([r["length"] for r in rows], float)
    terms = [np.asarray([np.nan if r["eos"][j] is None else r["eos"][j] for r in rows], float) for j in range(4)]
    excess = excess_of_terms(*terms)
    share = terms[0]
    prompts = [r["prompt"] for r in rows]
    return {"n": len(rows), "refusal_rate": float(ref.mean()), "refusal_rate_se": cluster_se(ref, prompts),
            "mean_length": float(length.mean()), "mean_length_se": cluster_se(length, prompts),
            "length_sd": float(length.std()),
            "truncated_share": float(np.mean([not r["ended"] for r in rows])),
            "unk_share": float(np.mean([r["unk_share"] for r in rows])),
            "eos_first_share": float(np.nanmean(share)) if np.isfinite(share).any() else None,
            "eos_first_excess": excess if np.isfinite(excess) else None}


def cluster_se(values: np.ndarray, clusters: list) -> float:
    """Standard error of a mean over rows grouped in clusters: the sandwich estimator with the g/(g-1)
    correction over g clusters (with every row its own cluster, the binomial SE times sqrt(n/(n-1)))."""
    v = np.asarray(values, float)
    keys, idx = np.unique(np.asarray([str(c) for c in clusters]), return_inverse=True)
    g = len(keys)
    if g < 2:
        return 0.0
    resid = np.bincount(idx, weights=v - v.mean(), minlength=g)
    return float(np.sqrt(g / (g - 1) * (resid ** 2).sum()) / len(v))


def sample_cell(denoiser, task, sampler: SwapSampler, prompts: np.ndarray, attack: str, harmful: bool, seed: int,
                samples: int, batch_size: int = 256) -> dict:
    """One (sampler, prompt set, length) cell of one student on fixed weights: its rows and rates."""
    import time

    from toydlm.sampling import sample

    t0 = time.perf_counter()
    canvas = SimpleNamespace(response_len=sampler.gen_length, mask_id=MASK_ID, config=task.config)
    batch = prompt_batch(prompts, sampler.gen_length, attack, harmful)
    trace = sample(denoiser, canvas, sampler.cfg, attack=batch, seed=seed, batch_size=batch_size,
                   record_hidden=False)
    rows = trace_rows(trace, task.vocab, samples)
    return {"sampler": sampler.label, "gen_length": sampler.gen_length, "attack": attack, "harmful": harmful,
            "seed": seed, "temperature": sampler.cfg.temperature, "samples_per_prompt": samples,
            "n_first_commits": int(trace.meta["n_first_commits"]), **rows_summary(rows),
            "seconds": time.perf_counter() - t0, "rows": rows}
