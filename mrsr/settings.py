"""The settings of inference, test-time adaptation and self-supervised SR, each one frozen object.

A run's settings are built once — by the command line (:mod:`mrsr.cli`), by a bundle's
``configs/inference.json`` (``"_target_": "mrsr.settings.InferSettings"``) or in Python — and passed
down unchanged: :class:`~mrsr.inference.VolumeInferer` and :func:`~mrsr.adapt.adapt` read
:class:`InferSettings` and :class:`AdaptSettings`, :func:`~mrsr.selfsr.selfsr` reads
:class:`SelfSRSettings`. The functional core, :func:`~mrsr.inference.super_resolve`, keeps flat
keywords, as MONAI's ``sliding_window_inference`` does. Each concept has one name at every layer
(``time_budget`` for a time limit in seconds, ``roi_size`` for the tile, ``out_size`` for the output's
in-plane size); the command line's flags map onto them in :mod:`mrsr.cli`.

This module imports neither torch nor MONAI: the command line builds and checks settings before
they load.

>>> s = InferSettings(scale=4, adapt=AdaptSettings(steps=50))
>>> s.adapt.steps, s.replace(amp=True).amp, s.amp
(50, True, False)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["AdaptSettings", "DegradeSettings", "InferSettings", "SelfSRSettings", "settings_hash"]


class _Settings:
    """What every settings object can do: a changed copy, a plain dict."""

    def replace(self, **changes: Any):
        """A copy with ``changes`` (the object itself is frozen)."""
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]

    def as_dict(self) -> dict[str, Any]:
        """The fields as plain values (nested settings as dicts), e.g. for a JSON record."""
        return dataclasses.asdict(self)  # type: ignore[call-overload]


def _tuple(value: Sequence[int] | None) -> tuple[int, ...] | None:
    return None if value is None else tuple(int(v) for v in value)


@dataclass(frozen=True)
class AdaptSettings(_Settings):
    """Test-time adaptation of a network to the scan it super-resolves (:func:`mrsr.adapt.adapt`).

    Attributes:
        steps: optimiser steps (0: only check the network against zerofill on the scan's own pairs).
        time_budget: stop fine-tuning after this many seconds per volume (``None``: no limit).
        batch_size: patches per step.
        patch_size: input patch side (targets are ``scale`` times larger); smaller slices use their size.
        lr: Adam learning rate.
        holdout: fraction of slices (or, below four slices, of columns) held out for internal validation.
        validate_every: steps between internal validations; the best state is kept.
        seed: seed of every random choice (the same seed gives the same result).
    """

    steps: int = 300
    time_budget: float | None = None
    batch_size: int = 16
    patch_size: int = 24
    lr: float = 1e-4
    holdout: float = 0.2
    validate_every: int = 50
    seed: int = 0


@dataclass(frozen=True)
class InferSettings(_Settings):
    """How a volume is super-resolved in-plane (:class:`~mrsr.inference.VolumeInferer`).

    Attributes:
        scale: in-plane SR factor.
        in_channels: network input channels (1 for 2D, 2k+1 for 2.5D: ``k`` neighbours each side).
        slice_axis: the axis across slices, or ``"auto"`` (each volume's thickest axis,
            :func:`~mrsr.inference.resolve_slice_axis`).
        out_size: in-plane output size (H, W); ``None``: ``round(scale * (h, w))``.
        roi_size: largest tile (h, w) of sliding-window inference; ``None``: whole slices.
        overlap: tile overlap, a fraction of ``roi_size``, in [0, 1).
        sw_batch_size: tiles per forward pass.
        slice_batch: slices per forward pass; ``None``: 8 on a GPU, the network's pixel budget on a CPU
            (:func:`~mrsr.inference.resolve_slice_batch`).
        device: ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"``; the inferer itself runs where its
            inputs are, the file pipeline moves them here.
        amp: mixed precision (float16 on CUDA, bfloat16 on the CPU).
        channels_last: channels_last memory format; ``None`` follows the network's preference.
        data_consistency: give each output slice its input's k-space band (networks; the baselines run
            as they are).
        detail: the share of the detail beyond the input's band that is kept, in [0, 1]
            (:func:`~mrsr.inference.super_resolve`); ``None``: the bundle's own, 1 for a network.
        adapt: test-time adaptation per volume; ``None``: none.
        progress: a progress bar on a terminal, a line every few seconds otherwise.
        method: what runs, as the output's provenance line names it (``mrsr METHOD x2; ...``);
            ``None``: the predictor's class name.
    """

    scale: float = 2.0
    in_channels: int = 1
    slice_axis: int | str = "auto"
    out_size: tuple[int, ...] | None = None
    roi_size: tuple[int, ...] | None = None
    overlap: float = 0.25
    sw_batch_size: int = 8
    slice_batch: int | None = None
    device: str = "auto"
    amp: bool = False
    channels_last: bool | None = None
    data_consistency: bool = True
    detail: float | None = None
    adapt: AdaptSettings | None = None
    progress: bool = False
    method: str | None = None

    def __post_init__(self) -> None:
        # lists from a JSON config or argparse become tuples: the object stays hashable and comparable
        object.__setattr__(self, "out_size", _tuple(self.out_size))
        object.__setattr__(self, "roi_size", _tuple(self.roi_size))
        if isinstance(self.adapt, dict):  # a bundle config or a JSON record gives a dict
            object.__setattr__(self, "adapt", AdaptSettings(**self.adapt))


@dataclass(frozen=True)
class SelfSRSettings(_Settings):
    """Self-supervised through-plane SR of a thick-slice scan (:func:`mrsr.selfsr.selfsr`).

    Attributes:
        network: registry name of the 2D network (:func:`mrsr.networks.get_network`).
        preset: its preset (``"small"``: CPU-trainable).
        approach: ``"refine"`` (cubic + refinement network) or ``"upsample"`` (one-axis upsampler).
        profile: the slice profile of the scan: ``"box"``, ``"gaussian"``, ``"kspace"``, a ``.npy`` file
            or a 1D array on the HR grid.
        thickness: the slice thickness in mm (default: the header's SliceThickness, else the spacing).
        steps: optimiser steps (at most); ``None``: 500 without a ``time_budget``, as many as fit in it
            with one.
        time_budget: stop training after this many seconds (``None``: no limit).
        batch_size: patches per step.
        patch_size: HR patch side (the LR patch is ``patch_size / s`` along the thick axis).
        lr: Adam learning rate.
        validate_every: steps between internal validations (the best state is kept).
        slice_batch: slices per forward pass at validation and inference.
        device: where to train and infer (``"auto"``: CUDA when available).
        amp: mixed precision (bfloat16 training; float16 inference on CUDA, bfloat16 on the CPU).
        seed: seed of the weights and of every random choice.
        fallback: use cubic interpolation when the network never beats it on the held-out pairs.
        combine: how the two orientations are combined: ``"average"`` or ``"fba"`` (Fourier burst).
        slab_consistency: make each output slab's mean its input slice (box profile only).
        progress: report training progress on stderr.
    """

    network: str = "msrn"
    preset: str | None = "small"
    approach: str = "refine"
    profile: Any = "box"
    thickness: float | None = None
    steps: int | None = None
    time_budget: float | None = None
    batch_size: int = 16
    patch_size: int = 64
    lr: float = 1e-3
    validate_every: int = 50
    slice_batch: int = 8
    device: str = "cpu"
    amp: bool = False
    seed: int = 0
    fallback: bool = True
    combine: str = "average"
    slab_consistency: bool = False
    progress: bool = True


@dataclass(frozen=True)
class DegradeSettings(_Settings):
    """How ``mrsr degrade`` simulates a low-resolution scan (:func:`mrsr.pipeline.degrade_file`).

    Attributes:
        scale: the degradation factor (with a slice profile: a whole number).
        axes: the spatial axes to degrade; ``None``: in-plane, the two other than the slice axis (with a
            slice profile: that slice axis).
        grid: ``"reduced"`` (the LR matrix), ``"same"`` or the factor of the output matrix
            (:class:`~mrsr.transforms.KSpaceTruncate`).
        window: k-space window of the truncation (``"none"``, ``"hamming"``, ``"tukey"``).
        snr: complex Gaussian noise at this SNR; ``None``: none.
        seed: seed of the noise.
        slice_profile: ``"box"``, ``"gaussian"``, ``"kspace"`` or a ``.npy`` file of a 1D profile on the HR
            grid: thick slices along one axis instead of in-plane truncation.
        thickness: slice thickness in mm (box and Gaussian profiles).
        gap: gap between slices in mm (box and Gaussian profiles).
    """

    scale: float = 2.0
    axes: tuple[int, ...] | None = None
    grid: str = "reduced"
    window: str = "none"
    snr: float | None = None
    seed: int = 0
    slice_profile: str | None = None
    thickness: float | None = None
    gap: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "axes", _tuple(self.axes))
        if self.slice_profile is not None:
            object.__setattr__(self, "slice_profile", str(self.slice_profile))


def settings_hash(settings: _Settings) -> str:
    """A short, stable hash of ``settings`` (12 hex digits), e.g. to tell outputs made another way apart.

    >>> settings_hash(InferSettings()) == settings_hash(InferSettings(progress=False))
    True
    """
    import hashlib
    import json

    fields = settings.as_dict()
    fields.pop("progress", None)  # how a run reports does not change what it makes
    text = json.dumps(fields, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]
