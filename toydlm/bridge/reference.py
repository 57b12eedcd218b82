"""A plain-torch reference of LLaDA's `generate` (ML-GSAI/LLaDA generate.py), one prompt at a time.

Written from the algorithm's description (docs/algorithms.md, LLaDA), not copied. It is the yardstick
for the bridge's throughput benchmark and the check that our `low_confidence` / `random`
selection samplers do what LLaDA does:

1. canvas = prompt ++ gen_length masks; gen_length % block_length == 0 and steps % n_blocks == 0;
2. per block (left to right), k_i = floor(N_b / S) + 1[i < N_b mod S] from the block's mask count;
3. per step: one bidirectional forward over the whole canvas; proposals
   x0 = argmax(exp(logits) / (-log U)^temperature) in float64 (plain argmax at temperature 0);
4. confidence = softmax(logits)[x0] (untempered) for `low_confidence`, U(0, 1) for `random`;
   positions after the current block and committed positions get -inf;
5. the top-k_i positions are committed, everything else stays masked (no re-masking).

`eos_inf` is LLaDA's `logits_eos_inf` (EOS logit -inf before proposals). Classifier-free
guidance (`cfg_scale`) is not implemented: the research runs it at 0.

Where our sampler differs by design (so tests compare only what should coincide):
- the bridge never proposes the mask token (its logit is -inf before proposals and
  confidences); LLaDA does not exclude it, relying on trained weights never predicting it.
  With a mask logit far below the others (any trained model) the two are identical.
- at temperature > 0 both draw Gumbel-max samples from softmax(logits / temperature), but from
  different noise (ours: keyed float32 exponential race per row and step; LLaDA: torch float64
  uniforms), so they agree in law, not draw by draw.
- exact confidence ties: ours break them by keyed uniforms, torch.topk by its own order.
"""

from __future__ import annotations

import torch


def k_counts(n_masked: int, steps: int) -> list[int]:
    """Tokens to commit at each of `steps` steps for `n_masked` masks: equal shares, the
    remainder spread over the first steps (LLaDA's linear schedule)."""
    base, extra = divmod(int(n_masked), int(steps))
    return [base + (1 if i < extra else 0) for i in range(steps)]


def gumbel_proposals(logits: torch.Tensor, temperature: float, generator: torch.Generator | None) -> torch.Tensor:
    """argmax of exp(logits) / E^temperature, E ~ Exp(1), in float64 (LLaDA's Gumbel-max form)."""
    if temperature == 0:
        return logits.argmax(-1)
    lg = logits.to(torch.float64)
    u = torch.rand(lg.shape, dtype=torch.float64, device=lg.device, generator=generator)
    return (lg.exp() / (-torch.log(u)) ** temperature).argmax(-1)


@torch.no_grad()
def reference_generate(model, prompt_ids, *, steps: int, gen_length: int, block_length: int | None = None,
                       temperature: float = 0.0, mask_id: int, remasking: str = "low_confidence",
                       eos_id: int | None = None, eos_inf: bool = False, generator: torch.Generator | None = None,
                       logits_fn=None, return_history: bool = False):
    """Generate for ONE prompt `[1, P]`; returns the canvas `[1, P + gen_length]` (and, with
    `return_history`, the response after every step `[steps, gen_length]`).

    `logits_fn(x) -> [1, P + L, V]` overrides `model(input_ids=x).logits` (e.g. an adapter).
    """
    prompt = torch.as_tensor(prompt_ids)
    if prompt.ndim != 2 or prompt.shape[0] != 1:
        raise ValueError(f"the reference generates one prompt at a time: prompt_ids must be [1, P], got "
                         f"{tuple(prompt.shape)}")
    block_length = gen_length if block_length is None else block_length
    if gen_length < 1 or block_length < 1 or gen_length % block_length:
        raise ValueError(f"block_length {block_length} must divide gen_length {gen_length}")
    n_blocks = gen_length // block_length
    if steps < 1 or steps % n_blocks:
        raise ValueError(f"steps {steps} must be a positive multiple of the number of blocks {n_blocks}")
    if remasking not in ("low_confidence", "random"):
        raise ValueError(f"unknown remasking {remasking!r} (valid: low_confidence, random)")
    if eos_inf and eos_id is None:
        raise ValueError("eos_inf needs eos_id")
    device = next(model.parameters()).device if model is not None else prompt.device
    P = prompt.shape[1]
    x = torch.full((1, P + gen_length), mask_id, dtype=torch.long, device=device)
    x[:, :P] = prompt.to(device)
    call = logits_fn or (lambda canvas: model(input_ids=canvas).logits)
    spb = steps // n_blocks
    history = []
    for b in range(n_blocks):
        end = P + (b + 1) * block_length
        ks = k_counts(int((x[0, P + b * block_length:end] == mask_id).sum()), spb)
        for i in range(spb):
            masked = x == mask_id
            logits = call(x)
            if eos_inf:
                logits = logits.clone()
                logits[..., eos_id] = -torch.inf
            x0 = gumbel_proposals(logits, temperature, generator)
            if remasking == "low_confidence":
                p = torch.softmax(logits.to(torch.float64), dim=-1)
                conf = torch.gather(p, -1, x0[..., None])[..., 0]
            else:
                conf = torch.rand(x0.shape, dtype=torch.float64, device=device, generator=generator)
            conf[:, end:] = -torch.inf
            x0 = torch.where(masked, x0, x)
            conf = torch.where(masked, conf, torch.full_like(conf, -torch.inf))
            if ks[i] > 0:
                sel = torch.topk(conf[0], ks[i]).indices
                x[0, sel] = x0[0, sel]
            if return_history:
                history.append(x[0, P:].clone())
    return (x, torch.stack(history)) if return_history else x
