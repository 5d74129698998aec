"""Training and evaluation on MONAI's ignite engines (single process or DDP under torchrun).

- :class:`TrainConfig` and :func:`train`: a whole run (data, network, loss, validation, checkpoints);
- :mod:`mrsr.engines.data`: cached HR volumes, random aligned LR/HR patch pairs, validation pairs;
- :mod:`mrsr.engines.evaluator`: whole-volume validation through :func:`mrsr.inference.super_resolve`;
- :mod:`mrsr.engines.handlers`: history, checkpoints, TensorBoard panels;
- :mod:`mrsr.engines.distributed`: torchrun / DDP set-up.
"""

from .config import TrainConfig
from .trainer import MedGANTrainer, train

__all__ = ["TrainConfig", "train", "MedGANTrainer"]
