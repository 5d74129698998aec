"""Files in, files out: what ``mrsr degrade``, ``mrsr infer`` and ``mrsr evaluate`` run.

:func:`inference_chain` builds the chain every bundle's ``configs/inference.json`` runs, with its
defaults (slice axis ``auto``, data consistency on, the method named in the output's provenance
line)::

    LoadVolumed -> RobustNormalized -> VolumeInferer -> RestoreVolumed -> SaveOutputd

:func:`super_resolve_file` runs it on one file with ``mrsr infer``'s checks and progress lines
(:mod:`mrsr.batch` runs it, and :func:`selfsr_file`, over folders, lists and manifest sections).
:func:`build_predictor` loads what runs: a bundle's network, a network from its weights file, or an
interpolation baseline (:func:`mrsr.networks.get_baseline`).

This module sits above :mod:`mrsr.bundle` and below :mod:`mrsr.cli`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.config import KeysCollection
from monai.data import MetaTensor, decollate_batch, list_data_collate
from monai.transforms import Compose, MapTransform
from torch import nn

from mrsr.data import LoadVolumed, load_volume, save_volume
from mrsr.data.io import check_fits_output
from mrsr.errors import MrsrError
from mrsr.inference import (
    BAND_LIMITED_KEY,
    RestoreVolumed,
    VolumeInferer,
    check_detail,
    resolve_device,
    resolve_slice_axis,
)
from mrsr.metrics import EvaluationResult, evaluate
from mrsr.networks.baselines import get_baseline, is_baseline
from mrsr.paths import check_output_path
from mrsr.progress import say
from mrsr.selfsr import SelfSRReport, selfsr
from mrsr.settings import DegradeSettings, InferSettings, SelfSRSettings
from mrsr.transforms import KSpaceTruncate, RobustNormalized, SliceProfileDegrade
from mrsr.validation import check_degrade_options, check_slice_widths

__all__ = [
    "Predictor",
    "build_predictor",
    "InferOptions",
    "SaveOutputd",
    "InferenceChain",
    "inference_chain",
    "options_chain",
    "run_settings",
    "super_resolve_file",
    "degrade_file",
    "evaluate_files",
]

Log = Callable[[str], None]


@dataclass(frozen=True)
class InferOptions:
    """What ``mrsr infer`` runs (a bundle, a network and its weights, or a baseline) and how (``settings``).

    Attributes:
        bundle: a bundle name or folder (exclusive with ``network``/``weights``).
        network: a baseline (:data:`mrsr.networks.BASELINES`) or a registered network; default bicubic
            without ``bundle``.
        weights: the network's weights file (an mrsr weights file or a bare state_dict).
        preset: network preset of a bare state_dict.
        in_channels: network input channels of a bare state_dict (``None``: as the file says, else 1).
        settings: how it runs (:class:`~mrsr.settings.InferSettings`); its ``scale`` is the SR factor
            asked for, its ``in_channels`` and ``method`` are set from what loads (:func:`options_chain`).
    """

    bundle: str | None = None
    network: str | None = None
    weights: str | None = None
    preset: str | None = None
    in_channels: int | None = None
    settings: InferSettings = field(default_factory=InferSettings)

    @property
    def method(self) -> str:
        """What runs, as the log lines and the provenance line name it: ``bundle NAME``, a network or a baseline.

        >>> InferOptions(bundle="msrn").method, InferOptions().method
        ('bundle msrn', 'bicubic')
        """
        return f"bundle {self.bundle}" if self.bundle else (self.network or "bicubic").lower()

    @property
    def is_baseline(self) -> bool:
        """An interpolation baseline runs (nothing to adapt, no data consistency)."""
        return not self.bundle and is_baseline(self.method)


@dataclass
class Predictor:
    """What super-resolves: a network with its input channels and scale, or an interpolation baseline.

    Attributes:
        method: its name in log and provenance lines (``bundle msrn``, ``msrn``, ``bicubic``).
        scale: the in-plane SR factor it runs at.
        in_channels: network input channels (2k+1 for 2.5D).
        network: the network in eval mode; ``None`` for a baseline, built per volume by :meth:`module`
            (landing on a requested output size depends on the volume's shape).
        detail: the share of the detail beyond the input's band it keeps (a bundle's own, or 1).
    """

    method: str
    scale: float
    in_channels: int = 1
    network: nn.Module | None = field(default=None, repr=False)
    detail: float = 1.0

    @property
    def is_baseline(self) -> bool:
        return self.network is None

    def module(self, shape: Sequence[int], slice_axis: int, size: Sequence[int] | None = None) -> nn.Module:
        """The module to run on a volume of spatial ``shape``: the network, or the baseline (sized to
        land exactly on the in-plane ``size`` when given)."""
        if self.network is not None:
            return self.network
        scale: float | tuple[float, float] = self.scale
        if size:
            in_plane = [n for a, n in enumerate(shape) if a != slice_axis]
            scale = (size[0] / in_plane[0], size[1] / in_plane[1])
        return get_baseline(self.method, scale)


def build_predictor(options: InferOptions) -> Predictor:
    """Load what ``options`` asks to run: a bundle's network, a network from ``weights``, or a baseline.

    Raises:
        MrsrError: both a bundle and a network, an unknown network, a network without weights, a
            fractional scale for a network, or weights that do not load.
    """
    from mrsr.checkpoint import load_network
    from mrsr.networks import BASELINES, available

    scale, detail = options.settings.scale, options.settings.detail
    if options.settings.adapt is not None and options.is_baseline:
        raise MrsrError(f"--adapt fine-tunes a network; {options.method} has nothing to adapt: drop --adapt or give "
                        "--bundle or --network with --weights.")  # fmt: skip
    if detail is not None and options.is_baseline:
        raise MrsrError(f"--detail scales what a network adds; {options.method} adds nothing: drop --detail or give "
                        "--bundle or --network with --weights.")  # fmt: skip
    detail = check_detail(1.0 if detail is None else detail)
    if options.bundle:
        from mrsr.bundle import bundle_detail, load_bundle_network

        if options.network or options.weights:
            raise MrsrError("Give either --bundle or --network/--weights, not both.")
        if scale != int(scale):
            raise MrsrError(f"Bundles upsample by an integer factor; got --scale {scale:g}.")
        network, in_channels = load_bundle_network(options.bundle, int(scale))
        detail = bundle_detail(options.bundle, int(scale)) if options.settings.detail is None else detail
        return Predictor(options.method, float(scale), in_channels, network, detail)
    name = options.method
    if is_baseline(name):
        return Predictor(name, scale)
    if name not in available():
        raise MrsrError(f"Unknown network {options.network!r}; choose one of {', '.join((*BASELINES, *available()))}.")
    if not options.weights:
        raise MrsrError(f"--network {name} needs --weights FILE (a trained checkpoint); the baselines need none.")
    if scale != int(scale):
        raise MrsrError(f"Networks upsample by an integer factor; got --scale {scale:g}.")
    network, _, kwargs = load_network(
        options.weights, name, preset=options.preset, scale=int(scale), in_channels=options.in_channels
    )
    return Predictor(name, float(kwargs.get("scale", scale)), int(kwargs.get("in_channels", 1)), network, detail)


class SaveOutputd(MapTransform):
    """Save each volume under ``keys`` to the path the data holds under ``path_key``.

    :func:`mrsr.data.save_volume` writes it atomically: a ``.nii``/``.nii.gz`` file or a DICOM series
    folder. Data without ``path_key`` passes through unsaved. (:class:`mrsr.data.SaveVolumed` names
    outputs after their inputs instead, as the bundles do.)

    Args:
        keys: keys of the (1, X, Y, Z) volumes to save.
        path_key: the key of the output path.
        overwrite: replace an existing output.
    """

    def __init__(
        self, keys: KeysCollection, path_key: str = "output", overwrite: bool = False, allow_missing_keys: bool = False
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.path_key, self.overwrite = path_key, overwrite

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict[Hashable, torch.Tensor]:
        d = dict(data)
        if d.get(self.path_key) is None:
            return d
        for key in self.key_iterator(d):
            save_volume(d[key], d[self.path_key], overwrite=self.overwrite)
        return d


def _apply(transform: Compose, data: Mapping[Hashable, Any]) -> dict:
    """``transform(data)``, raising what a transform raised: MONAI wraps it in ``RuntimeError("applying
    transform ...")``, which the command would report as an internal error rather than as bad input."""
    try:
        return transform(data)
    except RuntimeError as err:
        cause: BaseException = err
        while isinstance(cause, RuntimeError) and str(cause).startswith("applying transform") and cause.__cause__:
            cause = cause.__cause__
        if cause is err:
            raise
        raise cause from None


@dataclass
class InferenceChain:
    """The stages of :func:`inference_chain`, on datalist items ``{"image": path, "output": path}``.

    Attributes:
        preprocessing: ``LoadVolumed`` -> ``RobustNormalized`` on ``"image"``: (1, X, Y, Z) in [0, 1].
        inferer: the :class:`~mrsr.inference.VolumeInferer`.
        postprocessing: ``RestoreVolumed`` (the input's intensities, the upsampled affine) -> ``SaveOutputd``
            on ``"pred"``.
    """

    preprocessing: Compose
    inferer: VolumeInferer
    postprocessing: Compose

    def infer(self, data: Mapping[Hashable, Any], network: nn.Module, device: torch.device | None = None) -> dict:
        """``data`` with ``"pred"``: the inferer's (1, X', Y', Z') output for ``data["image"]`` (1, X, Y, Z),
        run as a batch of one on ``device``, as the bundles' DataLoader and evaluator run it."""
        d = dict(data)
        batch = list_data_collate([d["image"]])
        d["pred"] = decollate_batch(self.inferer(batch.to(device) if device else batch, network))[0]
        return d

    def preprocess(self, data: Mapping[Hashable, Any]) -> dict:
        """Load and normalise ``data["image"]`` (errors as the transforms raise them)."""
        return _apply(self.preprocessing, data)

    def postprocess(self, data: Mapping[Hashable, Any]) -> dict:
        """Restore ``data["pred"]`` to the input's world and intensities and save it to ``data["output"]``."""
        return _apply(self.postprocessing, data)

    def __call__(self, data: Mapping[Hashable, Any], network: nn.Module, device: torch.device | None = None) -> dict:
        """Load, normalise, super-resolve, restore and (given ``"output"``) save one datalist item."""
        return self.postprocess(self.infer(self.preprocess(data), network, device))


def inference_chain(settings: InferSettings, orientation: str | None = None, overwrite: bool = False) -> InferenceChain:
    """The MONAI chain of the bundles' ``configs/inference.json``, with an explicit output path per item.

    Args:
        settings: the :class:`~mrsr.inference.VolumeInferer`'s (:class:`~mrsr.settings.InferSettings`).
        orientation: axis codes to reorient inputs to (``LoadVolumed``); ``None``: as stored.
        overwrite: replace existing outputs.

    Returns:
        The :class:`InferenceChain`; call it on ``{"image": path, "output": path}`` and the network.

    >>> from mrsr.data import sample_path
    >>> chain = inference_chain(InferSettings(scale=2, data_consistency=False, method="bicubic"))
    >>> [type(t).__name__ for t in chain.preprocessing.transforms + chain.postprocessing.transforms]
    ['LoadVolumed', 'RobustNormalized', 'RestoreVolumed', 'SaveOutputd']
    >>> sr = chain({"image": sample_path()}, get_baseline("bicubic", 2))["pred"]  # (1, 128, 128, 62) in
    >>> tuple(sr.shape), sr.pixdim.tolist(), sr.meta["mrsr_description"]
    ((1, 256, 256, 62), [1.0, 1.0, 3.0], 'mrsr bicubic x2; data consistency off')
    """
    return InferenceChain(
        Compose([LoadVolumed("image", orientation), RobustNormalized("image")]),
        VolumeInferer(settings),
        Compose([RestoreVolumed("pred", ref_key="image"), SaveOutputd("pred", "output", overwrite)]),
    )


def _stage_line(predictor: Predictor, name: str, image: MetaTensor, axis: int, auto: bool) -> str:
    spacing = ", ".join(f"{v:g}" for v in image.pixdim.tolist())
    why = " (auto: the thickest axis, else the last)" if auto else ""
    return (f"{predictor.method}: {name} {tuple(image.shape[1:])} at {spacing} mm, {image.shape[1 + axis]} slices "
            f"across axis {axis}{why}, x{predictor.scale:g} in-plane")  # fmt: skip


def options_chain(
    options: InferOptions, predictor: Predictor, overwrite: bool = False, progress: bool = True
) -> InferenceChain:
    """The :func:`inference_chain` that ``options`` and ``predictor`` ask for: what :func:`super_resolve_file`
    runs, and what an application that reads and writes volumes itself (deploy/app.py) runs between.

    Data consistency applies to networks only; the predictor brings its scale, channels, detail and name.
    """
    return inference_chain(run_settings(options, predictor, progress), overwrite=overwrite)


def run_settings(options: InferOptions, predictor: Predictor, progress: bool = True) -> InferSettings:
    """``options.settings`` completed by what loaded: the predictor's scale, channels, detail and name;
    data consistency for networks only."""
    s = options.settings
    return s.replace(
        scale=predictor.scale, in_channels=predictor.in_channels, method=predictor.method, detail=predictor.detail,
        data_consistency=s.data_consistency and not predictor.is_baseline, progress=progress,
    )  # fmt: skip


def super_resolve_file(
    path: str | os.PathLike,
    output: str | os.PathLike,
    options: InferOptions | None = None,
    predictor: Predictor | None = None,
    layout: Mapping | None = None,
    overwrite: bool = False,
    log: Log = say,
) -> tuple[MetaTensor, MetaTensor, Predictor]:
    """Super-resolve the volume at ``path`` into ``output`` through :func:`inference_chain`, as ``mrsr infer``.

    Logs a line on what runs (shape, spacing, the slice axis), the adaptation's lines, and progress.

    Args:
        path: a NIfTI file, DICOM file or series folder, or a raw/``.npy`` file with its ``layout``.
        output: a ``.nii``/``.nii.gz`` file or a DICOM folder.
        options: what runs and how (default: :class:`InferOptions`, bicubic x2).
        predictor: a :class:`Predictor` returned by an earlier call, to reuse its loaded network
            (adaptation always starts again from it); ``None``: :func:`build_predictor`.
        layout: the layout of a headerless image (a manifest's ``image_layout``).
        overwrite: replace an existing ``output``.
        log: where the lines go (default: stderr).

    Returns:
        ``(lr, sr, predictor)``: the normalised input (1, X, Y, Z), the saved output (1, X', Y', Z') in
        the input's intensities with its meta (the provenance line under ``"mrsr_description"``), and
        the predictor.

    Raises:
        MrsrError: bad options or input (see :func:`build_predictor`, :func:`mrsr.data.load_volume`).
    """
    options = options or InferOptions()
    settings = options.settings
    device = resolve_device(settings.device)
    predictor = predictor or build_predictor(options)
    chain = options_chain(options, predictor, overwrite=overwrite)
    item = {"image": str(path), "output": str(output), **({"image_layout": layout} if layout else {})}
    d = chain.preprocess(item)
    image, name = d["image"], Path(path).name
    check_fits_output(image, output)
    axis = resolve_slice_axis(image, settings.slice_axis)
    if settings.adapt is not None:
        from mrsr.adapt import adaptable_slices

        adaptable_slices(image, int(predictor.scale), axis)  # a one-line error before any work
    log(_stage_line(predictor, name, image, axis, settings.slice_axis == "auto"))
    if settings.adapt is not None:
        budget = f", at most {settings.adapt.time_budget:g} s" if settings.adapt.time_budget else ""
        log(f"{predictor.method}: adapting to {name} ({settings.adapt.steps} steps{budget})")
    d = chain.infer(d, predictor.module(image.shape[1:], axis, settings.out_size), device)
    d = chain.postprocess(d)
    limited = getattr(d["pred"], "meta", {}).get(BAND_LIMITED_KEY)
    if limited:
        axes = " and ".join(str(a) for a in limited)
        log(f"{predictor.method}: {name} is band-limited along axis {axes} (zero-filled or interpolated when it was "
            "made): nothing added beyond its band there")  # fmt: skip
    return image, d["pred"], predictor


def selfsr_file(
    path: str | os.PathLike,
    output: str | os.PathLike,
    settings: SelfSRSettings | None = None,
    overwrite: bool = False,
    log: Log = say,
) -> tuple[MetaTensor, SelfSRReport]:
    """Self-supervised through-plane SR of the thick-slice scan at ``path`` into ``output``, as ``mrsr selfsr``.

    The output is checked before the training (it must not exist unless ``overwrite``, and must fit the
    input), the input's header decides the axis and the factor, and the result is written atomically.

    Args:
        path: a NIfTI file, DICOM file or series folder with one thick axis.
        output: a ``.nii``/``.nii.gz`` file or a DICOM folder (a derived series of a DICOM input).
        settings: what trains and how (:class:`~mrsr.settings.SelfSRSettings`; ``None``: its defaults).
        overwrite: replace an existing ``output``.
        log: where the lines go (default: stderr).

    Returns:
        ``(sr, report)`` as :func:`mrsr.selfsr.selfsr`.

    Raises:
        MrsrError: bad input or options, or an output that exists or cannot hold the volume.
    """
    settings = settings or SelfSRSettings()
    check_output_path(output, overwrite, inputs=(path,))
    volume = load_volume(path)
    check_fits_output(volume, output)
    log(f"selfsr: {Path(path).name} {tuple(volume.shape[1:])}, training {settings.network} ({settings.preset}) on "
        "its in-plane slices")  # fmt: skip
    sr, report = selfsr(volume, settings)
    save_volume(sr, output, overwrite)
    log(f"{report.summary()}; wrote {output} {tuple(sr.shape[1:])}")
    return sr, report


def degrade_file(
    path: str | os.PathLike,
    output: str | os.PathLike,
    settings: DegradeSettings | None = None,
    overwrite: bool = False,
) -> tuple[MetaTensor, MetaTensor, tuple[int, ...]]:
    """Simulate a low-resolution scan of the volume at ``path`` into ``output``.

    In-plane k-space truncation (:class:`~mrsr.transforms.KSpaceTruncate`) by default; with a
    ``slice_profile``, thick slices along one axis (:class:`~mrsr.transforms.SliceProfileDegrade`).

    Args:
        path: the HR volume (NIfTI, DICOM file or series folder).
        output: a ``.nii``/``.nii.gz`` file or a DICOM folder.
        settings: what degradation (:class:`~mrsr.settings.DegradeSettings`; ``None``: k-space x2 in-plane).
        overwrite: replace an existing ``output``.

    Returns:
        ``(hr, lr, axes)``: the input (1, X, Y, Z), the saved LR volume, the axes degraded.

    Raises:
        MrsrError: options that do not fit together (:func:`mrsr.validation.check_degrade_options`), or a
            thickness and gap that do not add up to the slice spacing.
    """
    s = settings or DegradeSettings()
    check_degrade_options(s.scale, s.axes, s.grid, s.window, s.snr, s.slice_profile, s.thickness, s.gap)
    img = load_volume(path)
    check_fits_output(img, output)
    if s.slice_profile is not None:
        lr, axes = _degrade_slices(img, s)
    else:
        axes = list(s.axes) if s.axes is not None else [a for a in (0, 1, 2) if a != resolve_slice_axis(img)]
        lr = KSpaceTruncate(s.scale, tuple(axes), s.grid, s.window, snr=s.snr, seed=s.seed)(img)
    save_volume(lr, output, overwrite)
    return img, lr, tuple(axes)


def _degrade_slices(img: MetaTensor, s: DegradeSettings) -> tuple[MetaTensor, list[int]]:
    """:func:`degrade_file`'s thick slices (options already checked): mm converted to HR voxels of the axis."""
    axis = int(s.axes[0]) if s.axes is not None else resolve_slice_axis(img)
    step = float(torch.as_tensor(img.affine, dtype=torch.float64)[:3, axis].norm())
    check_slice_widths(s.scale, step, s.thickness, s.gap)
    scale, profile = int(s.scale), s.slice_profile
    if profile in ("box", "gaussian"):
        sizes = (("thickness", s.thickness), ("gap", s.gap))
        voxels = {name: (None if mm is None else mm / step) for name, mm in sizes}
        return SliceProfileDegrade(scale, axis, profile, **voxels)(img), [axis]
    return SliceProfileDegrade(scale, axis, profile if profile == "kspace" else Path(profile))(img), [axis]


def evaluate_files(
    sr: str | os.PathLike,
    hr: str | os.PathLike,
    data_range: float | None = None,
    border: int = 0,
    slice_axis: int | str = "auto",
    mask: str | os.PathLike = "auto",
    log: Log = say,
) -> EvaluationResult:
    """PSNR and SSIM of the SR volume at ``sr`` against the HR volume at ``hr`` (:func:`mrsr.metrics.evaluate`).

    Args:
        sr, hr: volumes on the same grid; a warning is logged when their affines differ.
        data_range, border: as :func:`mrsr.metrics.evaluate`.
        slice_axis: the axis of the per-slice SSIM, or ``"auto"`` (the HR volume's).
        mask: ``"auto"``, ``"none"`` or a mask volume file (foreground: > 0).
        log: where the warning goes (default: stderr).

    Returns:
        The :class:`~mrsr.metrics.EvaluationResult`.

    Raises:
        MrsrError: the volumes' shapes differ.
    """
    sr_img, hr_img = load_volume(sr), load_volume(hr)
    if sr_img.shape != hr_img.shape:
        raise MrsrError(f"SR shape {tuple(sr_img.shape[1:])} differs from HR shape {tuple(hr_img.shape[1:])}; "
                        "resample one onto the other's grid first.")  # fmt: skip
    if not np.allclose(np.asarray(sr_img.affine), np.asarray(hr_img.affine), atol=1e-3):
        log("warning: the SR and HR affines differ: the volumes do not overlay in world coordinates")
    region = mask if str(mask) in ("auto", "none") else load_volume(mask)[0] > 0
    axis = resolve_slice_axis(hr_img, slice_axis)
    return evaluate(sr_img, hr_img, data_range=data_range, border=border, slice_axis=axis, mask=region)
