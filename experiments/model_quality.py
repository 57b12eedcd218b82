"""Do the trained `default` models reproduce the grammar's refusal rates, per prompt family?

Trains (or resumes, or reuses) the default-preset AR and MDLM models under `runs/quality/`,
then for each prompt family (harmful prompts per wrapper, and benign prompts) measures the
refusal rate of temperature-1 samples against `Grammar.exact_rates`:
- AR: ancestral left-to-right sampling, and the exact next-token probability that the
  response opens with a refusal template (vs the grammar's P(immediate refusal); late
  refusals start with "sure here" and are only visible in samples);
- MDLM: ancestral sampling one token per step, in random order (MDLM's sampler with T = L)
  and left to right.
Writes `results/model_quality.json` and prints a table. Usage:
    python experiments/model_quality.py [--n 3000] [--seed 0] [--runs runs/quality]
"""

from __future__ import annotations

import argparse
import time
from functools import partial
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from toydlm.grammar import REFUSE, Grammar, is_harmful, is_refusal, is_valid
from toydlm.io import atomic_write_json, provenance
from toydlm.train import load_denoiser, train
from toydlm.train.checkpoint import read_checkpoint

TOL = 0.05


@partial(jax.jit, static_argnums=(0,))
def ancestral(fn, params, prompt_BP, order_BR, key):
    """Fill the masked response one position per step (the order's next one), temperature 1."""
    B, P = prompt_BP.shape
    R = order_BR.shape[1]
    canvas = jnp.concatenate([prompt_BP, jnp.full((B, R), 1, prompt_BP.dtype)], axis=1)
    rows = jnp.arange(B)

    def body(i, canvas):
        logits = fn(params, canvas).logits
        pos = P + order_BR[:, i]
        tok = jax.random.categorical(jax.random.fold_in(key, i), logits[rows, pos])
        return canvas.at[rows, pos].set(tok.astype(canvas.dtype))

    return jax.lax.fori_loop(0, R, body, canvas)[:, P:]


def families(g: Grammar) -> list[tuple[str, dict]]:
    fams = [
        (f"harmful/{g.wrapper_name(w) or 'none'}", dict(topic_kind=1, wrapper=w)) for w in range(g.n_wrappers)
    ]
    return fams + [("benign/all", dict(topic_kind=0))]


def ensure_trained(arch: str, run: Path, seed: int) -> dict:
    if run.exists() and any(run.glob("ckpt-*")):
        meta, _, _ = read_checkpoint(run)
        if meta["step"] < meta["train_config"]["steps"]:
            return train(arch, "default", run, resume=True)
        return {"reused": str(run), "step": meta["step"]}
    return train(arch, "default", run, seed=seed)


def measure(g: Grammar, n: int, seed: int, runs: Path) -> dict:
    first_refusal = np.array([t[0] for t in g.vocab.refusal_templates])
    out = {}
    for arch in ("ar", "mdlm"):
        den = load_denoiser(runs / arch, g)
        _, _, where = read_checkpoint(runs / arch)
        meta = read_checkpoint(runs / arch)[0]
        res = {"checkpoint": str(where), "step": meta["step"], "families": {}}
        for fi, (name, cond) in enumerate(families(g)):
            s = g.sample(n, seed + 1000 + fi, **cond)
            prompts = jnp.asarray(s.prompt_ids)
            key = jax.random.PRNGKey(seed * 100 + fi)
            exact = g.exact_rates(**cond)
            p_class = g.skeletons.prior[s.topic_kind, s.wrapper]  # [n, K]
            row = {
                "exact_refusal": exact["refusal_rate"],
                "exact_harmful": exact["harmful_rate"],
                "exact_immediate_refusal": float((p_class[:, g.skeletons.cls == REFUSE]).sum(1).mean()),
            }
            orders = {"l2r": np.tile(np.arange(g.response_len), (n, 1))}
            if arch == "mdlm":
                rng = np.random.default_rng(seed + fi)
                orders["random"] = np.argsort(rng.random((n, g.response_len)), axis=1)
            for oname, order in orders.items():
                resp = np.asarray(ancestral(den.fn, den.params, prompts, jnp.asarray(order, jnp.int32), key))
                ref = np.asarray(is_refusal(g, resp))
                row[f"refusal_{oname}"] = float(ref.mean())
                row[f"refusal_{oname}_se"] = float(ref.std() / np.sqrt(n))
                row[f"harmful_{oname}"] = float(np.asarray(is_harmful(g, resp)).mean())
                row[f"valid_{oname}"] = float(is_valid(g, s.prompt_ids, resp).mean())
            if arch == "ar":  # exact next-token probability of opening with a refusal template
                canvas = jnp.concatenate(
                    [prompts, jnp.full((n, g.response_len), g.mask_id, prompts.dtype)], 1
                )
                p0 = jax.nn.softmax(den(canvas).logits[:, g.prompt_len], -1)
                row["p_first_token_refusal"] = float(np.asarray(p0[:, first_refusal].sum(-1)).mean())
            res["families"][name] = row
        out[arch] = res
    return out


def table(res: dict) -> str:
    cols = f"{'exact':>6s} {'AR samp':>8s} {'AR p0':>6s}/{'ex0':>5s} {'MDLM rnd':>9s} {'MDLM l2r':>9s}"
    head = f"{'family':22s} {cols}"
    lines = [head, "-" * len(head)]
    fams = res["ar"]["families"]
    for name, a in fams.items():
        m = res["mdlm"]["families"][name]
        lines.append(
            f"{name:22s} {a['exact_refusal']:6.3f} {a['refusal_l2r']:8.3f} {a['p_first_token_refusal']:6.3f}/"
            f"{a['exact_immediate_refusal']:5.3f} {m['refusal_random']:9.3f} {m['refusal_l2r']:9.3f}"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=3000, help="prompts per family")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--runs", default="runs/quality")
    ap.add_argument("--out", default="results/model_quality.json")
    a = ap.parse_args()
    runs = Path(a.runs)
    g = Grammar()
    training = {arch: ensure_trained(arch, runs / arch, a.seed) for arch in ("ar", "mdlm")}
    t0 = time.perf_counter()
    res = measure(g, a.n, a.seed, runs)
    worst = max(
        abs(r[k] - r["exact_refusal"])
        for arch in res
        for r in res[arch]["families"].values()
        for k in ("refusal_l2r", "refusal_random")
        if k in r
    )
    summaries = {arch: read_summary(runs / arch) for arch in ("ar", "mdlm")}
    doc = {
        "experiment": "model_quality",
        "n_per_family": a.n,
        "tolerance": TOL,
        "max_abs_error": worst,
        "within_tolerance": worst <= TOL,
        "results": res,
        "training": training,
        "train_summaries": summaries,
        "eval_seconds": time.perf_counter() - t0,
        **provenance(a.seed, {"n": a.n, "runs": str(runs)}),
    }
    atomic_write_json(a.out, doc)
    print(table(res))
    print(f"max |model - exact| = {worst:.3f} (tolerance {TOL}); wrote {a.out}")


def read_summary(run: Path) -> dict | None:
    import json

    f = run / "summary.json"
    return json.loads(f.read_text()) if f.exists() else None


if __name__ == "__main__":
    main()
