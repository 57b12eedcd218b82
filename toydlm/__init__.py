"""toydlm: a toy laboratory for step-wise refusal dynamics in AR and masked-diffusion LMs."""
__version__ = "0.1.0"
