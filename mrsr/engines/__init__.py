"""Training and evaluation on MONAI's ignite engines (single process or DDP under torchrun).

- :class:`TrainConfig` and :func:`train`: a whole run (data, network, loss, validation, checkpoints);
  :class:`TrainingRun` builds it from parts (:func:`training_dataset`, :func:`validation_dataset`,
  extra handlers) and exposes its ``trainer`` and ``evaluator``, as a bundle's train.json names them;
- :mod:`mrsr.engines.data`: cached HR volumes, random aligned LR/HR patch pairs, validation pairs;
- :mod:`mrsr.engines.evaluator`: whole-volume validation through :func:`mrsr.inference.super_resolve`;
- :mod:`mrsr.engines.handlers`: history, checkpoints, TensorBoard panels;
- :mod:`mrsr.engines.distributed`: torchrun / DDP set-up.
"""

from typing import Any

from .config import TrainConfig

__all__ = ["TrainConfig", "train", "TrainingRun", "training_dataset", "validation_dataset", "MedGANTrainer"]


def __getattr__(name: str) -> Any:
    """The engines load torch and MONAI on first use, so ``mrsr --help`` and argument errors stay fast."""
    if name in __all__[1:]:
        from . import trainer

        return getattr(trainer, name)
    raise AttributeError(f"module 'mrsr.engines' has no attribute {name!r}")
