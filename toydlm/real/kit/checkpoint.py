"""Open a real checkpoint for the wing's analyses: the bridge's `Setup`, from keyword arguments only."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from toydlm.bridge.run import Setup
    from toydlm.samplers import SamplerConfig


def open_checkpoint(name_or_path: str, kind: str = "ar", *, gen_length: int, batch_size: int,
                    dtype: str = "float32", device: str = "cpu", sampler: SamplerConfig | None = None,
                    seed: int = 0, trust_remote_code: bool = False, mask_id: int | None = None,
                    device_map: str | None = None, tok=None, logits_shift: bool = False,
                    verbose: bool = True) -> Setup:
    """Load a `toydlm weights` name or a local folder (`kind` "ar" or "dlm") with its ids fixed, ready for
    `toydlm.real.kit.generate`; `sampler` defaults to the kind's own (`ar`, or `low_confidence`).
    `device_map` lets accelerate place the weights, `tok` reuses a loaded tokenizer, `logits_shift` marks a
    Dream-style diffusion model. With `verbose`, print the load and the memory estimate."""
    from toydlm.bridge.run import load_setup
    from toydlm.samplers import SamplerConfig

    cfg = sampler or SamplerConfig("ar" if kind == "ar" else "low_confidence")
    setup, mem = load_setup(name_or_path, kind, cfg, device, dtype, trust_remote_code, mask_id,
                            device_map=device_map, tok=tok, gen_length=gen_length, batch_size=batch_size, seed=seed,
                            logits_shift=logits_shift)
    if verbose:
        print(f"loaded {name_or_path} (memory estimate {mem})", flush=True)
    return setup
