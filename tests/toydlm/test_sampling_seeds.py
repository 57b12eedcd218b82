"""One cell on every seed of an ensemble in one program gives each seed's own cell."""

import numpy as np
import pytest

from toydlm.experiment.metrics import cell_metrics
from toydlm.grammar import Grammar
from toydlm.model import init_model, make_denoiser, model_config
from toydlm.samplers import SamplerConfig
from toydlm.sampling import sample
from toydlm.sampling_seeds import sample_seeds

G = Grammar()


@pytest.mark.parametrize("arch, cfg", [("mdlm", SamplerConfig("low_confidence", steps=4, temperature=1.0)),
                                       ("ar", SamplerConfig("ar", temperature=1.0))])
def test_each_trace_equals_sampling_that_model_alone(arch, cfg):
    dens = [make_denoiser(init_model(model_config("tiny", G, arch), s), arch, G) for s in (0, 1, 2)]
    # batch_size 8: chunks of 2 prompts x 3 seeds, so chunking is exercised too
    together = sample_seeds(dens, G, cfg, attack="wrapper:prefix", n=7, seed=5, batch_size=8)
    for d, t in zip(dens, together):
        alone = sample(d, G, cfg, attack="wrapper:prefix", n=7, seed=5, record_hidden=False)
        assert t.n == alone.n == 7 and t.meta["model_hash"] == alone.meta["model_hash"]
        for k in ("canvas", "committed", "prompt", "final_harmful", "length"):
            np.testing.assert_array_equal(t[k], alone[k], err_msg=k)
        a, b = cell_metrics(t, G), cell_metrics(alone, G)
        assert a["asr"] == b["asr"] and a["refusal_rate"] == b["refusal_rate"]
    assert not np.array_equal(together[0]["canvas"], together[1]["canvas"])
