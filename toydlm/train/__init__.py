"""Training: objectives, data stream, jitted steps, checkpoints, the resumable loop (over `toydlm.parallel`)."""

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
