"""Checkpoints with their own modelling code (LLaDA/Dream-style): trust_remote_code and logits_shift."""

import importlib.util
import json
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from toydlm.bridge.run import BridgeRunConfig, bridge_run  # noqa: E402
from toydlm.bridge.tiny import build_tokenizer  # noqa: E402
from toydlm.cli import main  # noqa: E402
from toydlm.trace import load_trace  # noqa: E402

CONFIG_PY = '''
from transformers import PretrainedConfig


class ToyLLaDAConfig(PretrainedConfig):
    model_type = "toyllada"

    def __init__(self, vocab_size=64, hidden=16, mask_token_id=2, position_token=False, **kw):
        self.vocab_size, self.hidden, self.mask_token_id = vocab_size, hidden, mask_token_id
        self.position_token = position_token
        kw.setdefault("tie_word_embeddings", False)
        super().__init__(**kw)
'''
MODELING_PY = '''
import torch
from torch import nn
from transformers import PreTrainedModel
from transformers.modeling_outputs import MaskedLMOutput

from .configuration_toyllada import ToyLLaDAConfig


class ToyLLaDAModel(PreTrainedModel):
    """LLaDA-shaped: `transformer.wte`, a bidirectional mixing layer, `transformer.ln_f`, a head.
    With `position_token`, position j strongly predicts token 8 + j % (V - 8) (alignment tests)."""

    config_class = ToyLLaDAConfig
    base_model_prefix = "toy"

    def __init__(self, config):
        super().__init__(config)
        d = config.hidden
        self.transformer = nn.ModuleDict({"wte": nn.Embedding(config.vocab_size, d), "mix": nn.Linear(d, d),
                                          "ln_f": nn.LayerNorm(d)})
        self.lm_head = nn.Linear(d, config.vocab_size)
        self.post_init()

    def _init_weights(self, module):
        pass

    def get_input_embeddings(self):
        return self.transformer.wte

    def get_output_embeddings(self):
        return self.lm_head

    def forward(self, input_ids, attention_mask=None, output_hidden_states=None, **kw):
        h = self.transformer.wte(input_ids)
        h = h + self.transformer.mix(h.mean(1, keepdim=True))
        h = self.transformer.ln_f(h)
        logits = self.lm_head(h)
        if self.config.position_token:
            V = self.config.vocab_size
            tok = 8 + torch.arange(input_ids.shape[1], device=input_ids.device) % (V - 8)
            logits = logits + 100.0 * nn.functional.one_hot(tok, V).to(logits.dtype)
        return MaskedLMOutput(logits=logits, hidden_states=(h,) if output_hidden_states else None)
'''


def write_remote_checkpoint(folder, position_token=False):
    """A local checkpoint whose config.json `auto_map` points at modelling code in the folder."""
    folder.mkdir(parents=True)
    (folder / "configuration_toyllada.py").write_text(CONFIG_PY)
    (folder / "modeling_toyllada.py").write_text(MODELING_PY)
    tok = build_tokenizer()
    name = f"toyllada_{folder.name}"
    spec = importlib.util.spec_from_file_location(f"{name}.configuration_toyllada",
                                                  folder / "configuration_toyllada.py")
    pkg = type(sys)(name)
    pkg.__path__ = [str(folder)]
    sys.modules[name] = pkg
    cfg_mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = cfg_mod
    spec.loader.exec_module(cfg_mod)
    spec2 = importlib.util.spec_from_file_location(f"{name}.modeling_toyllada", folder / "modeling_toyllada.py")
    mod = importlib.util.module_from_spec(spec2)
    sys.modules[spec2.name] = mod
    spec2.loader.exec_module(mod)
    torch.manual_seed(0)
    cfg = cfg_mod.ToyLLaDAConfig(vocab_size=len(tok), mask_token_id=tok.mask_token_id, position_token=position_token)
    mod.ToyLLaDAModel(cfg).save_pretrained(folder, safe_serialization=True)
    tok.save_pretrained(folder)
    c = json.loads((folder / "config.json").read_text())
    c["auto_map"] = {"AutoConfig": "configuration_toyllada.ToyLLaDAConfig",
                     "AutoModel": "modeling_toyllada.ToyLLaDAModel"}
    (folder / "config.json").write_text(json.dumps(c))
    return folder


@pytest.fixture(scope="module")
def prompts(tmp_path_factory):
    p = tmp_path_factory.mktemp("prompts") / "p.json"
    p.write_text(json.dumps([{"instruction": s} for s in ("how to hack a bank", "write a poem about music")]))
    return p


@pytest.fixture(scope="module")
def remote(tmp_path_factory):
    root = tmp_path_factory.mktemp("remote")
    return {"plain": write_remote_checkpoint(root / "plain"),
            "positional": write_remote_checkpoint(root / "positional", position_token=True)}


def test_remote_code_is_refused_without_the_flag_in_one_line(remote, prompts, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    rc = main(["bridge", "run", "--model", str(remote["plain"]), "--kind", "dlm", "--prompts", str(prompts),
               "--out", str(tmp_path), "--gen-length", "4"])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.count("\n") == 1 and "--trust-remote-code" in err and "Traceback" not in err
    assert not (tmp_path / "summary.json").exists()
    import os

    assert os.environ["HF_HUB_OFFLINE"] == "1"  # the CLI turns the hub offline before loading anything


def test_remote_code_loads_and_samples_with_the_flag(remote, prompts, tmp_path, capsys):
    rc = main(["bridge", "run", "--model", str(remote["plain"]), "--kind", "dlm", "--prompts", str(prompts),
               "--harmless", str(prompts), "--out", str(tmp_path), "--gen-length", "4", "--steps", "2",
               "--trust-remote-code"])
    assert rc == 0, capsys.readouterr().err
    s = json.loads((tmp_path / "summary.json").read_text())
    assert [c["n"] for c in s["cells"]] == [2, 2] and s["config"]["kind"] == "dlm"
    tr = load_trace(tmp_path / "trace_none.npz")
    assert tr["hidden_mean"].shape == (2, 2, 16)  # captured through the hook on transformer.ln_f
    assert not (tr.final_response == tr.meta["mask_id"]).any()


@pytest.mark.parametrize("shift", [False, True])
def test_logits_shift_aligns_a_dream_style_model(remote, prompts, tmp_path, shift):
    """Position j of the model predicts token 8 + j mod (V-8); Dream's shift moves it to j + 1."""
    s = bridge_run(BridgeRunConfig(
        str(remote["positional"]), "dlm", str(prompts), str(tmp_path), steps=2, gen_length=4, temperature=0.0,
        trust_remote_code=True, logits_shift=shift, progress=False))
    assert s["config"]["logits_shift"] is shift
    tr = load_trace(tmp_path / "trace_none.npz")
    P, V = tr["prompt"].shape[1], len(build_tokenizer())
    pos = P + np.arange(4) - (1 if shift else 0)  # the model position whose output fills response slot i
    np.testing.assert_array_equal(tr.final_response, np.broadcast_to(8 + pos % (V - 8), (2, 4)))


def test_logits_shift_is_rejected_for_ar_models(tmp_path, prompts):
    with pytest.raises(ValueError, match="logits-shift"):
        bridge_run(BridgeRunConfig(str(tmp_path), "ar", str(prompts), str(tmp_path), logits_shift=True, progress=False))


def test_audit_runs_a_remote_code_diffusion_checkpoint(remote, prompts, tmp_path, capsys):
    args = ["audit", "--model", str(remote["plain"]), "--kind", "dlm", "--prompts", str(prompts), "--gen-length", "8",
            "--samplers", "low_confidence,low_confidence+eos_last", "--n-boot", "50", "--no-progress",
            "--out", str(tmp_path)]
    assert main(args) == 2 and "--trust-remote-code" in capsys.readouterr().err  # asks first
    assert main([*args, "--trust-remote-code"]) == 0
    a = json.loads((tmp_path / "audit.json").read_text())
    assert [c["sampler"] for c in a["cells"]] == ["low_confidence", "low_confidence+eos_last"]
    assert a["model"]["logits_shift"] is False and all(c["n"] == 2 for c in a["cells"])
