"""The `toydlm` lm-eval model on tiny checkpoints: it draws the audit's own samples (one code path), scores a
continuation exactly (causal) or by the ELBO (diffusion), answers the same whatever order requests come in, and
turns bad model_args into one-line errors before any weights load."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

pytest.importorskip("lm_eval")
pytest.importorskip("transformers")

from lm_eval.api.instance import Instance  # noqa: E402

from toydlm.errors import UserError  # noqa: E402
from toydlm.real.harness.lm import ToydlmLM  # noqa: E402
from toydlm.real.harness.setup import open_harness_setup  # noqa: E402


def _gen(task: str, doc: dict, doc_id: int, context: str, k: int, L: int = 8) -> Instance:
    kw = {"until": [], "max_gen_toks": L, "do_sample": True, "temperature": 1.0}
    return Instance("generate_until", doc, (context, kw), doc_id, (task, doc_id, k))


@pytest.mark.parametrize("args, why", [
    ({"sampler": "nope"}, "unknown diffusion sampler 'nope'"),
    ({"sampler": "low_confidence+sideways"}, "unknown control"),
    ({"colour": "blue"}, "unknown toydlm model_args colour"),
    ({"kind": "mlm"}, "must be ar or dlm"),
    ({"steps": "many"}, "steps='many' must be an integer"),
    ({"kind": "ar", "sampler": "low_confidence"}, "kind=ar runs only sampler=ar"),
    ({"sampler": "low_confidence@4", "block_length": 4}, "names a block already"),
    ({"temperature": "hot"}, "temperature='hot' must be a number"),
    ({"temperature": -1}, "must be at least 0"),
    ({"dtype": "floaty"}, "dtype='floaty' must be one of"),
    ({"kind": "ar", "sampler": "ar", "steps": 4}, "drop steps"),
])
def test_bad_model_args_are_one_line_before_any_load(tiny, args, why):
    with pytest.raises(UserError) as e:
        open_harness_setup(str(tiny["dlm"]), 1, "cpu", args)
    assert why in str(e.value) and len(str(e.value).splitlines()) == 1


def test_a_causal_checkpoint_asked_to_run_as_diffusion_is_one_line(tiny):
    with pytest.raises(UserError) as e:
        open_harness_setup(str(tiny["ar"]), 1, "cpu", {"kind": "dlm"})
    msg = str(e.value)
    assert "causal LM" in msg and "use kind=ar" in msg and "--kind" not in msg and len(msg.splitlines()) == 1


def test_no_pretrained_and_a_missing_folder_are_one_line(tmp_path):
    for p, why in ((None, "needs model_args pretrained"), (str(tmp_path / "absent"), "model not found")):
        with pytest.raises(UserError) as e:
            open_harness_setup(p, 1, "cpu", {})
        assert why in str(e.value)


@pytest.fixture(scope="module")
def dlm(tiny):
    return ToydlmLM(pretrained=str(tiny["dlm"]), batch_size=4, device="cpu", kind="dlm", sampler="low_confidence",
                    gen_length=8, elbo_draws=64)


def test_answers_do_not_depend_on_the_order_or_batching_of_requests(tiny, dlm):
    docs = [{"attack": "raw"} for _ in range(3)]
    contexts = ["how to make a bomb", "please tell me how to hack a bank account today", "why"]  # unequal padding
    reqs = [_gen("t", d, i, contexts[i], 2) for i, d in enumerate(docs) for _ in range(2)]
    first = dlm.generate_until(reqs, disable_tqdm=True)
    order = list(range(len(reqs)))
    random.Random(0).shuffle(order)
    other = ToydlmLM(pretrained=str(tiny["dlm"]), batch_size=1, device="cpu", kind="dlm", gen_length=8)
    again = other.generate_until([reqs[i] for i in order], disable_tqdm=True)
    by_doc = lambda out, idx: {d: sorted(o for o, i in zip(out, idx) if reqs[i].doc_id == d) for d in range(3)}  # noqa: E731
    assert by_doc(first, range(len(reqs))) == by_doc(again, order)
    assert len(set(first)) > 1  # the rows really are different draws


def test_a_task_that_does_not_sample_decodes_greedily(dlm):
    """The usual generation task names only stops and a cap: no temperature, no do_sample."""
    kw = {"until": ["\n"], "max_gen_toks": 8}
    reqs = [Instance("generate_until", {}, ("what is ten plus two", dict(kw)), 0, ("t", 0, 2))] * 2
    a, b = dlm.generate_until(reqs, disable_tqdm=True)
    assert a == b  # temperature 0: both samples of the prompt are the argmax decode


def test_a_docs_prompt_id_places_its_rows_when_the_harness_picks_docs_out_of_order():
    from toydlm.real.harness.requests import doc_index

    assert doc_index({"prompt_id": 7}, 0) == 7 and doc_index({"question": "x"}, 3) == 3


def test_a_diffusion_models_one_token_continuation_is_scored_exactly(tiny, dlm):
    import torch

    st = dlm.hs.st
    ctx, cont = dlm.hs.encode_pair("how to cook", " food")
    assert len(cont) == 1
    (ll, _), = dlm.loglikelihood([Instance("loglikelihood", {}, ("how to cook", " food"), 0, ("t", 0, 1))],
                                 disable_tqdm=True)
    ids = torch.as_tensor([ctx + [st.mask_id]])
    with torch.no_grad():
        logits = st.hf(input_ids=ids).logits[0, -1].float()
    logits[st.mask_id] = -1e9
    assert ll == pytest.approx(float(torch.log_softmax(logits, -1)[cont[0]]), abs=1e-4)


def test_a_causal_models_loglikelihood_is_the_exact_sum(tiny):
    import torch

    ar = ToydlmLM(pretrained=str(tiny["ar"]), device="cpu", kind="ar")
    (ll, greedy), = ar.loglikelihood([Instance("loglikelihood", {}, ("how to", " cook food"), 0, ("t", 0, 1))],
                                     disable_tqdm=True)
    ctx, cont = ar.hs.encode_pair("how to", " cook food")
    with torch.no_grad():
        lp = torch.log_softmax(ar.hs.st.hf(input_ids=torch.as_tensor([ctx + cont])).logits[0].float(), -1)
    want = sum(float(lp[len(ctx) - 1 + j, t]) for j, t in enumerate(cont))
    assert ll == pytest.approx(want, abs=1e-4) and isinstance(greedy, bool)


def test_the_elbo_of_a_longer_continuation_has_a_stated_standard_error(dlm, capsys):
    (ll, _), = dlm.loglikelihood([Instance("loglikelihood", {}, ("how to", " cook food at home"), 0, ("t", 0, 1))],
                                 disable_tqdm=True)
    assert np.isfinite(ll) and ll < 0
    assert "ELBO over 64 draws per request; mean Monte-Carlo standard error" in capsys.readouterr().out


def _audit_texts(out) -> dict:
    """{(attack, prompt, sample): text} of every cell the audit stored."""
    got = {}
    for f in (out / "cells").glob("*.json"):
        rec = json.loads(f.read_text())
        for s in rec["samples"]:
            got[(rec["spec"]["attack"], s["prompt"], s["sample"])] = s["text"]
    return got


@pytest.mark.parametrize("kind, sampler", [("dlm", "low_confidence"), ("ar", "ar")])
def test_the_harness_draws_the_audits_samples(tiny, tmp_path, kind, sampler):
    """Same prompts, seed, sampler, length and batches: `toydlm audit` and the harness give every row the same
    text, so the task's numbers are the audit's."""
    import lm_eval
    from lm_eval.tasks import TaskManager

    from toydlm.eval import TASKS_DIR
    from toydlm.real.audit.runner import run_audit
    from toydlm.real.audit.spec import AuditConfig

    n, k, L = 3, 4, 8
    cfg = AuditConfig(model=str(tiny[kind]), kind=kind, out=str(tmp_path / "audit"), harmless="harmless", n=n,
                      samplers=(sampler,), samples=k, temperatures=(1.0,), gen_lengths=(L,), batch_size=16,
                      n_boot=20, progress=False, seed=3)
    run_audit(cfg, log=lambda *a, **kw: None)
    audit = _audit_texts(tmp_path / "audit")
    res = lm_eval.simple_evaluate(
        model="toydlm", model_args={"pretrained": str(tiny[kind]), "kind": kind, "sampler": sampler,
                                    "gen_length": L, "seed": 3},
        tasks=["toydlm_refusal_raw", "toydlm_refusal_harmless"], task_manager=TaskManager(include_path=str(TASKS_DIR)),
        limit=n, apply_chat_template=True, log_samples=True, batch_size=16, device="cpu", bootstrap_iters=0)
    harness = {}
    for rows in res["samples"].values():
        for s in rows:
            for j, text in enumerate(s["filtered_resps"][0]):
                harness[(s["doc"]["attack"], s["doc_id"], j)] = text
    assert len(harness) == 2 * n * k and harness == {key: audit[key] for key in harness}


def test_lm_eval_keeps_its_own_models_beside_toydlm():
    from lm_eval.api.registry import get_model

    assert get_model("toydlm") is ToydlmLM
    assert get_model("hf").__name__ == "HFLM"


def test_the_run_records_what_it_decoded_on(dlm):
    info = dlm.get_model_info()["toydlm"]
    assert info["gen_length"] == 8 and info["sampler"] == "low_confidence" and info["elbo_draws"] == 64


def test_a_students_canvas_bounds_every_request():
    from toydlm.real.harness.setup import HarnessSetup

    hs = HarnessSetup(st=None, kind="dlm", sampler_text="low_confidence", steps=None, gen_length=None,
                      temperature=None, seed=0, elbo_draws=1, batch_size=1, max_canvas=96)
    assert (hs.canvas(128), hs.canvas(64)) == (96, 64)
    hs.gen_length = 32
    assert hs.canvas(128) == 32
