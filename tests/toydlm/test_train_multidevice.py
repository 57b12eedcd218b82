"""Data parallelism: 4 forced CPU devices follow the 1-device loss trajectory.

Device count is fixed when JAX starts, so each run is a child process with
`XLA_FLAGS=--xla_force_host_platform_device_count=N` set before jax is imported.
"""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np

CHILD = textwrap.dedent("""
    import json, sys
    import jax
    import numpy as np
    from toydlm.grammar import Grammar
    from toydlm.train import TrainConfig, load_checkpoint, read_log, train
    out, want = sys.argv[1], int(sys.argv[2])
    assert jax.device_count() == want, jax.devices()
    cfg = TrainConfig(batch=32, steps=6, lr=3e-3, warmup=1, eval_every=6, eval_batch=32, ckpt_every=6,
                      log_every=1)
    r = train("mdlm", "tiny", out, train_config=cfg, seed=11, progress=False)
    model, _ = load_checkpoint(out)
    logits = np.asarray(model(jax.numpy.asarray(Grammar().sample(8, 0).tokens))[0])
    losses = [x["loss"] for x in read_log(out) if "loss" in x]
    np.save(out + "/logits.npy", logits)
    print(json.dumps({"losses": losses, "eval": r["eval_loss"], "n_devices": r["n_devices"]}))
""")


def _run(tmp_path, n: int) -> dict:
    env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={n}", JAX_PLATFORMS="cpu")
    out = tmp_path / f"dev{n}"
    p = subprocess.run(
        [sys.executable, "-c", CHILD, str(out), str(n)], env=env, capture_output=True, text=True, timeout=600
    )
    assert p.returncode == 0, p.stderr[-3000:]
    res = json.loads(p.stdout.strip().splitlines()[-1])
    res["logits"] = np.load(out / "logits.npy")
    return res


def test_four_devices_match_one(tmp_path):
    one, four = _run(tmp_path, 1), _run(tmp_path, 4)
    assert one["n_devices"] == 1 and four["n_devices"] == 4
    assert len(one["losses"]) == len(four["losses"]) == 6
    np.testing.assert_allclose(four["losses"], one["losses"], rtol=2e-4)
    np.testing.assert_allclose(four["eval"], one["eval"], rtol=2e-4)
    # the trained models compute the same function (compared as logits, not raw params: the key
    # bias has an exactly-zero gradient, so Adam turns rounding noise into a sign-random update
    # that the softmax ignores)
    np.testing.assert_allclose(four["logits"], one["logits"], rtol=1e-3, atol=1e-4)
    # the trajectory moved, so matching it is not vacuous
    assert abs(one["losses"][-1] - one["losses"][0]) > 0.05
