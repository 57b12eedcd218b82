"""Training: objectives, data stream, jitted steps, data-parallel sharding, checkpoints, loop."""

from toydlm.train.checkpoint import load_checkpoint, load_denoiser
from toydlm.train.config import TRAIN_PRESETS, TrainConfig
from toydlm.train.loop import NonFiniteLoss, read_log, train

__all__ = [
    "NonFiniteLoss",
    "TRAIN_PRESETS",
    "TrainConfig",
    "load_checkpoint",
    "load_denoiser",
    "read_log",
    "train",
]
