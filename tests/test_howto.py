"""docs/howto.md, followed once: a new selection sampler, registered for the lab and the theory,
runs through `toydlm sample` and through the theory's cell prediction."""

import json

import jax.numpy as jnp
import numpy as np

import theory.selection_rules
import toydlm.samplers
from toydlm.cli import main
from toydlm.experiment.cells import Cell
from toydlm.experiment.predict import oracle_sim_predict
from toydlm.experiment.presets import SamplerVariant
from toydlm.grammar import load_grammar
from toydlm.trace import load_trace

NAME = "howto_rightmost_first"
ATTACK = "wrapper:prefix"


def rightmost_first(x):
    return jnp.asarray(x.position, jnp.float32)


def rightmost_first_np(x):
    return np.asarray(x.position, float)


def test_a_registered_sampler_runs_through_toydlm_sample_and_the_theory(tmp_path, capsys):
    toydlm.samplers.register_selection_rule(NAME, rightmost_first)
    theory.selection_rules.register_selection_rule(NAME, rightmost_first_np)
    g = load_grammar("default")
    L, n = g.response_len, 1200
    out = tmp_path / "t.npz"
    assert main(["sample", "--ckpt", "oracle", "--sampler", NAME, "--attack", ATTACK, "--n", str(n),
                 "--seed", "0", "--out", str(out), "--json"]) == 0
    lab = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    tr = load_trace(out)
    assert tr.meta["sampler"]["name"] == NAME and tr.steps == L
    first_commit = np.argmax(tr["committed"], axis=0)  # [B, L]: the step at which each position was committed
    assert (first_commit == (L - 1 - np.arange(L))[None]).all()  # right to left, one position per step

    # the theory, through the same path `toydlm run` predicts a cell with
    cell = Cell("default", "oracle", None, SamplerVariant(NAME, NAME), 1.0, ATTACK, fit=False)
    pred = oracle_sim_predict(cell, g, 4000, seed=1)

    # any fixed order, one exact conditional per step, samples the grammar's exact joint
    exact = lab["exact_harmful_rate"]
    assert abs(exact - 0.63) < 1e-9  # the prefix family's exact harmful rate on the default grammar
    assert abs(lab["asr"] - exact) < 4 * np.sqrt(exact * (1 - exact) / n)
    assert abs(pred["asr"] - exact) < 4 * np.sqrt(exact * (1 - exact) / 4000)
