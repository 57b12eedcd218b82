"""The `toydlm` lm-eval model: a local Hugging Face checkpoint, causal or diffusion, run by any toydlm sampler.

`generate_until` decodes through the audit's own path (`toydlm.real.audit.sample.decode_rows`) with the
audit's seed rule and row layout (`toydlm.real.harness.requests`), so the same prompts and seed give the
same samples here and in `toydlm audit`. `loglikelihood` is exact for a causal model and the Monte-Carlo
ELBO for a diffusion one (`toydlm.real.harness.elbo`). Importing this module registers the model name;
`toydlm lm-eval` does that before handing over to lm-eval's command line.
"""

from __future__ import annotations

import lm_eval.models  # noqa: F401 - lm-eval's own models first: its registry loads them only while empty
import numpy as np
from lm_eval.api.model import LM
from lm_eval.api.registry import register_model
from lm_eval.models.utils import normalize_gen_kwargs
from tqdm import tqdm

from toydlm.errors import UserError
from toydlm.real.harness import elbo
from toydlm.real.harness.requests import CellKey, cell_attack, chunks, cut_at_stops, doc_index, group_cells, place_rows
from toydlm.real.harness.setup import HarnessSetup, open_harness_setup

DEFAULT_MAX_GEN_TOKS = 128


@register_model("toydlm")
class ToydlmLM(LM):
    """lm-eval's model interface over a bridge checkpoint; see `toydlm.real.harness.setup` for model_args."""

    def __init__(self, pretrained: str | None = None, batch_size: int | str | None = None,
                 max_batch_size: int | None = None, device: str | None = None, **model_args) -> None:
        super().__init__()
        self.hs: HarnessSetup = open_harness_setup(pretrained, batch_size, device, model_args)
        self._rank, self._world_size = self.hs.rank, self.hs.world
        self._device = self.hs.device

    # --- what the harness asks of every model ---------------------------------------------------------
    @property
    def tokenizer_name(self) -> str:
        return str(getattr(self.hs.st.tok, "name_or_path", "toydlm")).replace("/", "__")

    def chat_template(self, chat_template: bool | str = False) -> str | None:
        return getattr(self.hs.st.tok, "chat_template", None) or ""

    def apply_chat_template(self, chat_history: list[dict[str, str]], add_generation_prompt: bool = True) -> str:
        """The checkpoint's own chat template as text (the harness then hands it back as the context)."""
        if self.hs.student:
            raise UserError("a twins student lays out its prompts itself: drop --apply_chat_template")
        return self.hs.st.tok.apply_chat_template(chat_history, tokenize=False,
                                                  add_generation_prompt=add_generation_prompt,
                                                  continue_final_message=not add_generation_prompt)

    def generate_until(self, requests, disable_tqdm: bool = False) -> list[str]:
        """Every request decoded by the configured sampler, cut at its stop strings."""
        hs = self.hs
        settings = [self._gen_settings(r.args[1]) for r in requests]
        keys = [CellKey(r.task_name, cell_attack(r.task_name, r.doc), T, L) for r, (_, L, T) in zip(requests, settings)]
        rows = place_rows([(r.task_name, doc_index(r.doc, r.doc_id), r.repeats) for r in requests])
        cells = group_cells(keys, rows, [r.args[0] for r in requests], [u for u, _, _ in settings])
        repeats = {k: max(int(r.repeats or 1), 1) for k, r in zip(keys, requests)}
        out: list[str | None] = [None] * len(requests)
        bar = tqdm(total=len(requests), desc=f"toydlm {hs.sampler_text}", disable=disable_tqdm or self.rank != 0)
        for key, items in cells.items():
            cell = hs.cell(key, repeats[key])
            for batch in chunks(items, hs.batch_size):
                ids, att = hs.encode([it.context for it in batch], key.gen_length)
                recs = hs.decode(cell, np.asarray([it.row for it in batch]), ids, att)
                for it, rec in zip(batch, recs, strict=True):
                    out[it.index] = cut_at_stops(rec["text"], it.until)
                bar.update(len(batch))
        bar.close()
        return out  # type: ignore[return-value]

    def loglikelihood(self, requests, disable_tqdm: bool = False) -> list[tuple[float, bool]]:
        """log p(continuation | context): exact for a causal model, the Monte-Carlo ELBO (a lower bound, with
        `elbo_draws` draws; its standard error is logged) for a diffusion model."""
        hs, out, ses = self.hs, [], []
        den = hs.scorer()
        try:
            for r in tqdm(requests, desc="toydlm loglikelihood", disable=disable_tqdm or self.rank != 0):
                ctx, cont = r.args
                c_ids, x_ids = hs.encode_pair(ctx, cont)
                rng = elbo.request_rng(hs.seed, ctx, cont)
                ll, greedy, se = elbo.score(den, c_ids, x_ids, hs.kind, hs.elbo_draws, rng)
                ses.append(se)
                out.append((ll, greedy))
        finally:
            den.close()
        if hs.kind == "dlm" and ses:
            print(f"toydlm: ELBO over {hs.elbo_draws} draws per request; mean Monte-Carlo standard error "
                  f"{float(np.nanmean(ses)):.4f} nats over {len(ses)} requests", flush=True)
        return out

    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False) -> list[float]:
        raise UserError("the toydlm model does not score whole documents (loglikelihood_rolling, used by perplexity "
                        "tasks); run those with --model hf")

    def get_model_info(self) -> dict:
        return self.hs.info()

    # --- several processes (accelerate launch) ---------------------------------------------------------
    def all_gather(self, tensor):
        return self.hs.all_gather(tensor)

    def gather_object(self, obj, dst: int = 0):
        return self.hs.gather_object(obj, dst)

    def barrier(self) -> None:
        self.hs.barrier()

    # --- helpers --------------------------------------------------------------------------------------
    def _gen_settings(self, gen_kwargs: dict) -> tuple[tuple[str, ...], int, float]:
        """(stop strings, canvas length, temperature): the model's gen_length and temperature, when set,
        override the task's max_gen_toks and temperature."""
        g = normalize_gen_kwargs(dict(gen_kwargs or {}), DEFAULT_MAX_GEN_TOKS)
        L = self.hs.canvas(int(g["max_gen_toks"]))
        task_T = float(g.get("temperature", 1.0 if g.get("do_sample") else 0.0))  # set only when not sampling
        T = self.hs.temperature if self.hs.temperature is not None else task_T
        return tuple(g["until"]), L, T
