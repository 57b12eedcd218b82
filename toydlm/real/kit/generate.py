"""One cell of real-AR samples: prompts (with attacks or prefills) × samples per prompt, decoded by the
bridge's KV-cached `ar` path, each row stopped at its chat end-of-turn token.

A sample is `{prompt, sample, text, ids, length, ended}`: the response the model wrote after the
prompt (and after any prefill), cut before its end token; `ended` is False when it ran into the
token cap (`length == gen_length`, truncated).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class CellPlan:
    """What to sample: one user turn and prefill per prompt, `samples` rows each."""

    name: str
    users: list[str]
    prefills: list[str]
    temperature: float
    samples: int = 1
    seed: int = 0
    prompt_ids: list[int] = field(default_factory=list)  # indices into the experiment's prompt list
    draw: str = "icdf"  # `kv_ar_sample`'s draw: "icdf" (cheap on a large vocabulary) or "race"

    def spec(self, checkpoint_sha: str, gen_length: int) -> dict:
        """Everything that decides the samples (the store's key)."""
        return {"name": self.name, "checkpoint_sha256": checkpoint_sha, "users": self.users,
                "prefills": self.prefills, "temperature": self.temperature, "samples": self.samples,
                "seed": self.seed, "gen_length": gen_length, "prompt_ids": self.prompt_ids, "sampler": "ar",
                "stop_at_end": True, "draw": self.draw}


def decode_cell(setup, plan: CellPlan, on_step=None, record_hidden: bool = False):
    """The KV-cached trace of every row of `plan` on the loaded checkpoint (`toydlm.bridge.run.Setup`)."""
    from toydlm.bridge.encode import encode_prompts
    from toydlm.bridge.kvar import kv_ar_sample

    users = [u for u in plan.users for _ in range(plan.samples)]
    prefills = [p for p in plan.prefills for _ in range(plan.samples)]
    ids, att = encode_prompts(setup.tok, users, prefills)
    cfg = setup.cfg.replace(temperature=plan.temperature)
    return kv_ar_sample(setup.hf, ids, att, setup.gen_length, cfg, plan.seed, setup.mask_id, setup.eos_id,
                        setup.vocab, setup.batch_size, end_ids=setup.end_ids, record_hidden=record_hidden,
                        on_step=on_step, stop_at_end=True, draw=plan.draw)


def sample_cell(setup, plan: CellPlan, on_step=None) -> list[dict]:
    """Every sample of `plan` on the loaded checkpoint."""
    trace = decode_cell(setup, plan, on_step)
    return responses(setup.tok, trace.final_response, setup.eos_id, plan.samples)


def responses(tok, final: np.ndarray, eos_id: int, samples: int) -> list[dict]:
    """Per-row sample records from final response canvases `[N, L]` (ends already canonical `eos_id`)."""
    out = []
    for r, row in enumerate(np.asarray(final)):
        hit = np.flatnonzero(row == eos_id)
        n = int(hit[0]) if len(hit) else len(row)
        ids = row[:n].tolist()
        out.append({"prompt": r // samples, "sample": r % samples, "ids": ids, "length": n, "ended": bool(len(hit)),
                    "text": tok.decode(ids, skip_special_tokens=True)})
    return out
