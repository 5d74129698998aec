"""The configuration of a training run: one dataclass, saved with the run and in every checkpoint."""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mrsr.errors import MrsrError
from mrsr.paths import write_text_atomic

if TYPE_CHECKING:
    from mrsr.networks import NetworkSpec

__all__ = ["TrainConfig", "RESUME_MAY_CHANGE"]

# what --resume may change: how long to run, where, and how fast/visibly; everything else must match
RESUME_MAY_CHANGE = ("epochs", "iterations", "device", "amp", "num_workers", "progress", "data_root")


@dataclass
class TrainConfig:
    """Everything that defines a training run.

    Args:
        network: registry name (``mrsr.networks.available()``): durn, wasa, iconet, msrn or casnet.
        manifest: MONAI datalist JSON (``data_manifests/``) with "training" and "validation" lists.
        data_root: folder that relative paths in the manifest are relative to.
        out: run folder: ``config.json``, ``checkpoint.pt`` (everything to resume), ``model_best.pt``
            and ``model_last.pt`` (weights for ``mrsr infer --weights``), ``history.json``, ``tensorboard/``.
        scale: SR factor (integer).
        preset: network preset (``"small"``, ``"default"``) or ``None`` for the class defaults.
        network_kwargs: constructor overrides (after the preset).
        neighbours: k of 2.5D input (2k+1 channels); 0 for 2D.
        patch_size: LR patch side; the HR patch is ``scale * patch_size``.
        batch_size: patches per step on each rank.
        samples_per_epoch: patches per epoch over all ranks (steps per epoch = this / (ranks * batch)).
        epochs: epochs to train (ignored when ``iterations`` is given).
        iterations: total optimiser steps; rounded up to whole epochs.
        lr: Adam learning rate (generator and discriminator for MedGAN).
        lr_schedule: ``"cosine"`` (to 1% of lr over the run, per step) or ``"constant"``.
        warmup: optimiser steps of linear learning-rate warm-up (from ``lr / warmup`` to ``lr``) before the
            schedule; 0: none. Adam's first steps at a high rate can throw a zero-initialised network far off.
        weight_decay: Adam weight decay.
        grad_clip: clip the gradient norm to this, or ``None``.
        data_consistency: train and validate the network wrapped in :class:`mrsr.networks.DataConsistent`,
            so it learns only what lies outside the input's k-space band. Training pairs are then made
            by degrading each HR patch itself (``PairedPatchDataset(patch_degradation=True)``), the only
            way the consistency is exact on a patch; validation on whole volumes is exact anyway. Not
            for ICONet, whose intermediate stages have no LR input to be consistent with.
        loss: loss options, passed to :func:`mrsr.losses.get_loss` (e.g. ``{"perceptual_weight": 0.1,
            "vgg_weights": "vgg19.pth"}``).
        windows, snr_range, factor_jitter, augment: see :class:`mrsr.engines.data.Degradation`.
        background_weight: sampling weight of an empty slice (see :func:`mrsr.engines.data.slice_weights`).
        balance_volumes: draw every training volume equally often, whatever its number of slices (by
            default a slice is a slice: a 189-slice volume is drawn 19 times as often as a 10-slice one).
        slice_axis: the axis across which slices are taken.
        synthetic: fraction of the training samples drawn from the synthetic-MR generator
            (:class:`mrsr.engines.data.SyntheticSlabs`: the MNI152 tissue maps, if nilearn is installed, and
            k-means tissue maps of every training volume) instead of real slices; 0: real only, 1: synthetic only.
        val_every: validate every this many epochs (0: never).
        val_roi: tile size (h, w) for validation inference, or ``None`` for whole slices.
        seed: seed of the weights' initialisation and of every sample.
        deterministic: deterministic algorithms (``torch.use_deterministic_algorithms``).
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"`` or ``"auto"``; under torchrun each rank takes its
            local GPU.
        amp: mixed precision on CUDA (float16 with a gradient scaler); ignored on the CPU.
        num_workers: DataLoader workers.
        progress: console progress bar.
    """

    network: str
    manifest: str
    data_root: str | None = None
    out: str | None = None
    scale: int = 2
    preset: str | None = "small"
    network_kwargs: dict[str, Any] = field(default_factory=dict)
    neighbours: int = 0
    patch_size: int = 32
    batch_size: int = 16
    samples_per_epoch: int = 1600
    epochs: int = 10
    iterations: int | None = None
    lr: float = 5e-4
    lr_schedule: str = "cosine"
    warmup: int = 0
    weight_decay: float = 0.0
    grad_clip: float | None = None
    data_consistency: bool = False
    loss: dict[str, Any] = field(default_factory=dict)
    windows: tuple[str, ...] = ("none",)
    snr_range: tuple[float, float] | None = None
    factor_jitter: float = 1.0
    augment: bool = True
    background_weight: float = 0.1
    balance_volumes: bool = False
    slice_axis: int = 2
    synthetic: float = 0.0
    val_every: int = 1
    val_roi: tuple[int, int] | None = None
    seed: int = 0
    deterministic: bool = False
    device: str = "auto"
    amp: bool = False
    num_workers: int = 0
    progress: bool = True

    @property
    def spec(self) -> NetworkSpec:
        """The :class:`~mrsr.networks.NetworkSpec` of :attr:`network`.

        Raises:
            MrsrError: not a registered SR network.
        """
        from mrsr.networks import available, get_spec

        try:
            spec = get_spec(self.network)
        except KeyError:
            spec = None
        if spec is None or not spec.super_resolution:
            raise MrsrError(f"Unknown network {self.network!r}; train one of {', '.join(available())}.")
        return spec

    def __post_init__(self) -> None:
        self.windows = tuple(self.windows)
        if self.snr_range is not None:
            self.snr_range = tuple(self.snr_range)  # type: ignore[assignment]
        if self.val_roi is not None:
            self.val_roi = tuple(self.val_roi)  # type: ignore[assignment]
        spec = self.spec  # an alias ("medgan") trains its network ("casnet")
        self.network = spec.name
        if self.out is None:
            self.out = str(Path("runs") / f"{self.network}_x{self.scale}")
        for name in ("scale", "patch_size", "batch_size", "samples_per_epoch", "epochs"):
            if not int(getattr(self, name)) >= 1:
                raise MrsrError(f"{name} must be a positive integer, got {getattr(self, name)}.")
        if self.iterations is not None and not self.iterations >= 1:
            raise MrsrError(f"iterations must be a positive integer, got {self.iterations}.")
        if self.neighbours < 0:
            raise MrsrError(f"neighbours must be >= 0 (0: 2D), got {self.neighbours}.")
        if self.lr_schedule not in ("cosine", "constant"):
            raise MrsrError(f"lr_schedule must be 'cosine' or 'constant', got {self.lr_schedule!r}.")
        if not int(self.warmup) >= 0:
            raise MrsrError(f"warmup must be a number of steps >= 0, got {self.warmup}.")
        if self.data_consistency and spec.stages:
            from mrsr.networks import get_network_class

            raise MrsrError(
                f"{get_network_class(spec.name).__name__} cannot train with --data-consistency (its stages have no "
                "LR input to be consistent with); inference applies it to its output all the same."
            )
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise MrsrError(f"grad_clip must be a positive gradient norm (or none), got {self.grad_clip}.")
        if not self.lr > 0:
            raise MrsrError(f"The learning rate must be positive, got {self.lr}.")
        if not 0.0 <= self.synthetic <= 1.0:
            raise MrsrError(f"synthetic is a fraction of the samples, from 0 (real only) to 1, got {self.synthetic}.")
        if self.slice_axis not in (0, 1, 2):
            raise MrsrError(f"slice_axis must be 0, 1 or 2, got {self.slice_axis}.")
        from mrsr.engines.data import Degradation

        Degradation(self.windows, self.snr_range, self.factor_jitter, self.augment)  # raises on bad options now

    @property
    def in_channels(self) -> int:
        """Network input channels: 2k+1."""
        return 2 * self.neighbours + 1

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Build from a dict (``config.json``, a checkpoint); unknown keys are an error."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise MrsrError(f"Unknown training option(s): {', '.join(unknown)}.")
        return cls(**data)

    def save(self, path: str | os.PathLike) -> None:
        """Write as JSON, atomically."""
        write_text_atomic(path, json.dumps(self.to_dict(), indent=2) + "\n")

    def resumed_with(self, new: TrainConfig) -> TrainConfig:
        """This (saved) config, with what ``new`` may change on ``--resume`` taken from it.

        Raises:
            MrsrError: ``new`` differs in anything else (the network, the data, the loss ...).
        """
        saved, asked = self.to_dict(), new.to_dict()
        changed = [k for k in saved if k not in RESUME_MAY_CHANGE and k != "out" and saved[k] != asked[k]]
        if changed:
            detail = ", ".join(f"{k}: {saved[k]!r} -> {asked[k]!r}" for k in changed)
            raise MrsrError(f"--resume must keep the run's settings; these differ from the saved run: {detail}.")
        merged = dict(saved, **{k: asked[k] for k in RESUME_MAY_CHANGE})
        return TrainConfig.from_dict(merged)
