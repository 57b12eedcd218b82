"""The bridge: the toy lab's samplers, traces, judges, SRI and theory fit on Hugging Face checkpoints.

Needs the `[bridge]` extra (torch, transformers, safetensors); importing `toydlm` never imports
torch. Weights load only from safetensors, remote code only with `trust_remote_code=True`, and
nothing is downloaded: a missing local model is a clear error.
"""
