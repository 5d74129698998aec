"""Self-supervised through-plane SR of a thick-slice scan (the SMORE / ECLARE idea).

A 2D multi-slice scan has thin in-plane voxels and thick slices (factor ``s`` along one axis, read by
:func:`~mrsr.transforms.through_plane_factor`). Its in-plane slices are HR along both of their axes:
degrading them along one in-plane axis with the slice profile (:class:`~mrsr.transforms.SliceProfileDegrade`,
factor ``s``) gives LR/HR pairs from the scan itself, with no other data. :func:`selfsr` trains a small
2D network on those pairs (from both in-plane axes), applies it to the slices that contain the thick
axis (both orientations, averaged, as ECLARE does) and returns the volume on the HR grid of the thick
axis (docs/CONVENTIONS.md, "Through-plane degradation: thick slices").

Choices (the issue leaves them open):

- **Predictor.** Every mrsr network upsamples *both* axes of a slice by its ``scale``; here only one is
  thick. Two ways use the registry unchanged, both around a global residual: the cubic interpolation
  of the LR slice along the thick axis *on the thick-slice grid* (HR sample ``j`` at LR coordinate
  ``(j - (s-1)/2) / s``; :func:`~mrsr.transforms.upsample_aligned` uses the k-space grid, ``j / s``, and
  would be ``(s-1)/(2s)`` of a slice off).

  - ``"upsample"``: a one-axis upsampler. The thin axis is folded into ``s`` channels (space-to-depth
    along it only), so the network at ``scale=s`` sees (B, s, h, W/s) and returns (B, 1, s*h, W): the
    thin axis comes back at its own size, the thick one ``s`` times larger.
  - ``"refine"`` (default): pre-interpolation (the cubic above) and a refinement network. mrsr's
    networks refuse ``scale=1`` (MSRN, DURN, WASA allow 2-4; ICONet 2, 4, 8; only CasNet 1), so the
    interpolated slice is folded 2x2 into 4 channels and the network runs at ``scale=2``: the same
    size out, any registered network, the body at a quarter of the HR pixels.

  Measured (2 CPU threads, MSRN ``small``, box x4): on the MNI 1 mm template, 300 s each, ``"refine"``
  reached 36.54 dB (2597 steps) and ``"upsample"`` 36.19 dB (5857 steps), cubic 32.27 dB; on a crop of
  the bundled T1 head, 20 s each, ``"upsample"`` gained 0.84 dB over cubic and ``"refine"`` 0.31 dB,
  60 s each both 1.0 dB.
  ``"refine"`` is the default for runs of minutes; ``"upsample"`` is 2-6x cheaper per step and better
  for runs under a minute.
- **Integer factors.** The factor is rounded to the nearest integer (``report.notes`` says so when it
  was not one): the output spacing along the axis is the input's divided by that integer, which is
  then not exactly the in-plane spacing.
- **Do no harm.** Every ``validate_every`` steps the network is scored on pairs from held-out in-plane
  slices (every fifth) against cubic interpolation; the best state is kept, and when it never beats
  cubic, cubic is what runs (``fallback=False`` runs the network anyway).
- **Memory.** Training cuts random patches; inference runs whole slices, ``slice_batch`` at a time.
"""

from __future__ import annotations

import time
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import MapTransform, Transform
from monai.utils import convert_to_tensor
from torch import nn

from mrsr.data.dicom import DICOM_META_KEY, SLICE_GEOMETRY_KEY
from mrsr.data.io import DESCRIPTION_KEY
from mrsr.errors import MrsrError
from mrsr.fitting import fit
from mrsr.metrics import range_psnr
from mrsr.networks import get_network
from mrsr.progress import say
from mrsr.runtime import autocast_context, resolve_device
from mrsr.settings import SelfSRSettings
from mrsr.transforms.resample import thick_interp
from mrsr.transforms.sliceprofile import (
    PROFILES,
    THICKNESS_KEYS,
    WIDTH_PROFILES,
    SliceProfileDegrade,
    through_plane_factor,
)

__all__ = [
    "APPROACHES",
    "COMBINES",
    "SelfSR",
    "SelfSRModel",
    "SelfSRReport",
    "SelfSRd",
    "ThickSlicePairs",
    "fit_selfsr",
    "fourier_burst",
    "selfsr",
    "slab_consistent",
]

APPROACHES = ("refine", "upsample")
COMBINES = ("average", "fba")
DEFAULT_STEPS = 500
HOLDOUT_EVERY = 5  # every fifth in-plane slice is held out for the internal validation


@dataclass
class SelfSRReport:
    """What :func:`selfsr` did.

    Attributes:
        axis: the thick spatial axis of the input.
        factor: the header's through-plane factor; ``scale`` is it rounded.
        scale: the integer factor the output is upsampled by.
        approach: ``"refine"`` or ``"upsample"`` (module docstring).
        network: the registry name of the network trained.
        combine: how the two orientations were combined (:meth:`SelfSRModel.predict`).
        choice: ``"network"`` or ``"cubic"`` (what produced the output).
        scores: internal validation PSNR (dB) on held-out pairs: ``network`` (best), ``cubic``, ``linear``.
        steps: optimiser steps taken.
        seconds: wall time of the whole call.
        holdout: which slices were held out.
        notes: anything the caller should know (a rounded factor, a fallback).
    """

    axis: int
    factor: float
    scale: int
    approach: str
    network: str = "msrn"
    combine: str = "average"
    choice: str = "network"
    scores: dict[str, float] = field(default_factory=dict)
    steps: int = 0
    seconds: float = 0.0
    holdout: str = ""
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line: factor, choice, internal validation scores."""
        scores = ", ".join(f"{k} {v:.2f} dB" for k, v in self.scores.items())
        notes = "".join(f"; {n}" for n in self.notes)
        return (f"selfsr axis {self.axis} x{self.scale} ({self.approach}, {self.combine}): using {self.choice} "
                f"after {self.steps} steps in {self.seconds:.0f} s; internal validation on {self.holdout}: "
                f"{scores}{notes}")  # fmt: skip


def _pad_to(x: torch.Tensor, multiple: int, dim: int) -> torch.Tensor:
    """Replicate-pad ``x`` (B, C, H, W) at the end of ``dim`` (-2 or -1) to a multiple of ``multiple``."""
    extra = -x.shape[dim] % multiple
    if not extra:
        return x
    return F.pad(x, (0, extra, 0, 0) if dim == -1 else (0, 0, 0, extra), mode="replicate")


class _ThickSR(nn.Module):
    """LR slice (B, 1, h, W), thick along h -> (B, 1, s*h, W): cubic on the thick grid plus a network."""

    def __init__(self, network: nn.Module, scale: int, approach: str) -> None:
        super().__init__()
        self.network, self.scale, self.approach = network, scale, approach

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s, width = self.scale, x.shape[-1]
        cubic = thick_interp(x, s, -2)
        if self.approach == "upsample":  # fold the thin axis into s channels: only h is upsampled
            x = _pad_to(x, s, -1)
            b, _, h, w = x.shape
            folded = x.reshape(b, h, w // s, s).permute(0, 3, 1, 2)
            out = self.network(folded)[..., :width]
        else:  # refine the cubic interpolation: a 2x2 fold to 4 channels, the network at scale 2
            padded = _pad_to(_pad_to(cubic, 2, -2), 2, -1)
            out = self.network(F.pixel_unshuffle(padded, 2))[..., : cubic.shape[-2], :width]
        return cubic + out.to(cubic.dtype)


def _build(network: str, preset: str | None, scale: int, approach: str) -> _ThickSR:
    if approach not in APPROACHES:
        raise MrsrError(f"Unknown selfsr approach {approach!r}; choose {' or '.join(APPROACHES)}.")
    if approach == "upsample":
        net = get_network(network, preset=preset, scale=scale, in_channels=scale, out_channels=1)
    else:
        net = get_network(network, preset=preset, scale=2, in_channels=4, out_channels=1)
    return _ThickSR(net, scale, approach)


class ThickSlicePairs:
    """Pairs from a scan's own in-plane slices (a :class:`~mrsr.fitting.PairSource`): each, degraded along one of
    its axes by the slice profile, is an input whose target is the slice itself.

    Every fifth in-plane slice is held out; the score is the PSNR over both orientations.

    Args:
        vol: (A, B, L) normalised volume, thick axis last.
        scale: the through-plane factor.
        degrade: the slice-profile degradation, along axis 1 of (L, 1, H, W).
        device: where candidates are scored.
        amp: mixed precision when scoring.
        slice_batch: slices per forward pass when scoring.
        flip_h: flips along the thick axis make pairs too (a symmetric profile).
    """

    def __init__(
        self, vol: torch.Tensor, scale: int, degrade: SliceProfileDegrade, device: torch.device | None = None,
        amp: bool = False, slice_batch: int = 8, flip_h: bool = True,
    ) -> None:  # fmt: skip
        self.scale, self.device, self.amp, self.slice_batch, self.flip_h = scale, device, amp, slice_batch, flip_h
        n_slices = vol.shape[-1]
        val = list(range(HOLDOUT_EVERY // 2, n_slices, HOLDOUT_EVERY)) if n_slices >= 4 else []
        train = [k for k in range(n_slices) if k not in val] or list(range(n_slices))
        self.holdout = f"{len(val)} of {n_slices} in-plane slices, both axes"
        self.lr: list[torch.Tensor] = []  # per orientation: (N, 1, H/s, W), thick along H
        self.hr: list[torch.Tensor] = []  # (N, 1, H, W)
        self.val_lr: list[torch.Tensor] = []
        self.val_hr: list[torch.Tensor] = []
        for hr in (vol, vol.transpose(0, 1)):  # degrade A, then B: the degraded axis first
            n = hr.shape[0] // scale * scale
            hr = hr[:n].permute(2, 0, 1).unsqueeze(1).contiguous()  # (L, 1, H, W)
            lr = degrade(hr)  # its axis 1 is H of (L, 1, H, W): channels L, spatial (1, H, W)
            self.lr.append(lr[train])
            self.hr.append(hr[train])
            if val:
                self.val_lr.append(lr[val])
                self.val_hr.append(hr[val])

    def batch(self, size: int, patch: int, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """``size`` random patch pairs: LR (B, 1, p/s, p) and HR (B, 1, p, p), flipped (after degrading: the
        flips commute with a symmetric profile on slabs aligned with the slice)."""
        s = self.scale
        inputs, targets = [], []
        ph = min([patch // s] + [lr.shape[-2] for lr in self.lr])  # one patch size for both orientations
        pw = min([patch] + [lr.shape[-1] for lr in self.lr])
        for _ in range(size):
            o = int(rng.integers(len(self.lr)))
            lr, hr = self.lr[o], self.hr[o]
            i = int(rng.integers(lr.shape[0]))
            y0, x0 = int(rng.integers(lr.shape[-2] - ph + 1)), int(rng.integers(lr.shape[-1] - pw + 1))
            a = lr[i, :, y0 : y0 + ph, x0 : x0 + pw]
            b = hr[i, :, s * y0 : s * (y0 + ph), x0 : x0 + pw]
            flips = [d for d, on in ((-1, rng.random() < 0.5), (-2, self.flip_h and rng.random() < 0.5)) if on]
            if flips:
                a, b = a.flip(flips), b.flip(flips)
            inputs.append(a)
            targets.append(b)
        return torch.stack(inputs), torch.stack(targets)

    def score(self, model, amp: bool | None = None) -> float | None:
        """PSNR of ``model`` on the held-out pairs, both orientations; ``None`` with nothing held out."""
        if not self.val_lr:
            return None
        amp = self.amp if amp is None else amp
        preds = [_predict(model, lr, self.device, amp, self.slice_batch) for lr in self.val_lr]
        return range_psnr(torch.cat([p.flatten() for p in preds]), torch.cat([t.flatten() for t in self.val_hr]))


@torch.no_grad()
def _predict(predictor, lr: torch.Tensor, dev: torch.device, amp: bool, batch: int) -> torch.Tensor:
    """Run ``predictor`` on (N, 1, h, W) in batches of ``batch``; returns (N, 1, s*h, W) on the CPU, float."""
    outs = []
    for start in range(0, lr.shape[0], batch):
        with autocast_context(dev, amp):
            outs.append(predictor(lr[start : start + batch].to(dev)).float().cpu())
    return torch.cat(outs)


def _cubic(mode: str, scale: int):
    return lambda x: thick_interp(x, scale, -2, mode)


def _hr_affine(affine: torch.Tensor, axis: int, scale: int) -> torch.Tensor:
    """The affine of the HR grid: spacing along ``axis`` divided by ``scale``, origin moved back by
    ``(scale-1)/2`` HR voxels (LR slice ``k`` is centred at HR ``scale*k + (scale-1)/2``)."""
    out = affine.clone().to(torch.float64)
    out[:-1, axis] /= scale
    out[:-1, -1] -= out[:-1, axis] * (scale - 1) / 2
    return out


def _check_output_options(combine: str, slab_consistency: bool = False, profile: Any = "box") -> None:
    """Refuse, before any training, output options that cannot work."""
    if combine not in COMBINES:
        raise MrsrError(f"Unknown way to combine the orientations {combine!r}; choose {' or '.join(COMBINES)}.")
    if slab_consistency and not (isinstance(profile, str) and profile == "box"):
        raise MrsrError("Slab consistency is exact only for a box profile one slice spacing wide; drop it.")


def _orientations(predictor, vol: torch.Tensor, dev: torch.device, amp: bool, batch: int) -> list[torch.Tensor]:
    """``vol`` (A, B, L) -> two (A, B, s*L) estimates: from the slices along A and from those along B."""
    along_a = _predict(predictor, vol.permute(0, 2, 1).unsqueeze(1), dev, amp, batch)  # (A, 1, sL, B)
    along_b = _predict(predictor, vol.permute(1, 2, 0).unsqueeze(1), dev, amp, batch)  # (B, 1, sL, A)
    return [along_a[:, 0].permute(0, 2, 1), along_b[:, 0].permute(2, 0, 1)]


def fourier_burst(estimates: list[torch.Tensor], power: float = 2.0) -> torch.Tensor:
    """Fourier burst accumulation (Delbracio and Sapiro, 2015, as SMORE combines its orientations).

    Each frequency is the average of the estimates' coefficients weighted by their magnitude to the
    ``power``: an estimate that kept a frequency (the one whose in-plane axis resolved it) outweighs
    one that blurred it away. ``power=0`` is the plain average.

    Args:
        estimates: same-shape real tensors (here (A, B, s*L) volumes).
        power: the weights' exponent.

    Returns:
        The combined tensor, shaped as each estimate.

    >>> a = torch.rand(4, 5, 6); torch.allclose(fourier_burst([a, a], 3.0), a, atol=1e-6)
    True
    """
    dims = tuple(range(estimates[0].ndim))
    spectra = [torch.fft.rfftn(e.double(), dim=dims) for e in estimates]
    weights = [z.abs() ** power for z in spectra]
    total = sum(weights)
    mean = sum(spectra) / len(spectra)
    combined = torch.where(total > 0, sum(w * z for w, z in zip(weights, spectra)) / total.clamp_min(1e-300), mean)
    return torch.fft.irfftn(combined, s=estimates[0].shape, dim=dims).to(estimates[0].dtype)


def slab_consistent(hr: torch.Tensor, lr: torch.Tensor, scale: int) -> torch.Tensor:
    """Shift each slab of ``hr`` (..., s*L) so that its mean equals the thick slice of ``lr`` (..., L) it
    came from: the least change that makes the box-profile degradation of the output the input.

    >>> slab_consistent(torch.zeros(1, 4), torch.tensor([[1.0, 3.0]]), 2).tolist()
    [[1.0, 1.0, 3.0, 3.0]]
    """
    means = hr.unflatten(-1, (lr.shape[-1], scale)).mean(-1)
    return hr + (lr - means).repeat_interleave(scale, -1)


@dataclass
class SelfSRModel:
    """A predictor trained on one scan by :func:`fit_selfsr`; :meth:`predict` applies it to that scan.

    Attributes:
        volume: the input (1, X, Y, Z).
        predictor: the trained thick-axis predictor (cubic when ``report.choice`` is ``"cubic"``).
        report: what the fit did.
        box_profile: the degradation is a box exactly one slice spacing wide (slab consistency is exact).
        vol: the input normalised to about [0, 1], thick axis last (A, B, L).
        lo: the normalisation's offset.
        hi: the normalisation's top.
        device: where it runs.
        amp: mixed precision at inference.
        slice_batch: slices per forward pass.
    """

    volume: MetaTensor
    predictor: nn.Module
    report: SelfSRReport
    box_profile: bool
    vol: torch.Tensor
    lo: float
    hi: float
    device: torch.device
    amp: bool = False
    slice_batch: int = 8

    def predict(self, combine: str = "average", slab_consistency: bool = False, power: float = 2.0) -> MetaTensor:
        """The volume on the HR grid of the thick axis.

        Args:
            combine: how the two through-plane orientations are combined: ``"average"`` (as ECLARE) or
                ``"fba"`` (:func:`fourier_burst`, as SMORE).
            slab_consistency: make the mean of each output slab equal its input slice
                (:func:`slab_consistent`); for a box profile one spacing wide only.
            power: the exponent of ``"fba"``.

        Returns:
            (1, X, Y, Z) with the thick axis ``s`` times longer (:func:`_hr_affine`), intensities as the input's.

        Raises:
            MrsrError: an unknown ``combine``, or slab consistency with another profile.
        """
        _check_output_options(combine, slab_consistency, "box" if self.box_profile else None)
        scale = self.report.scale
        if self.report.choice == "network":
            estimates = _orientations(self.predictor, self.vol, self.device, self.amp, self.slice_batch)
            out = fourier_burst(estimates, power) if combine == "fba" else (estimates[0] + estimates[1]) / 2
        else:
            out = thick_interp(self.vol, scale, -1)
        if slab_consistency:
            out = slab_consistent(out, self.vol, scale)
        out = (out * (self.hi - self.lo) + self.lo).movedim(-1, self.report.axis).unsqueeze(0)
        return MetaTensor(out, meta=self._meta(out.shape[1:], combine, slab_consistency))

    def _meta(self, shape, combine: str, slab_consistency: bool) -> dict:
        """The input's meta on the HR grid, with a provenance line and no stale thickness."""
        meta = dict(self.volume.meta)
        meta["affine"] = _hr_affine(self.volume.affine, self.report.axis, self.report.scale)
        meta["spatial_shape"] = np.asarray(shape)
        tags = dict(meta.get(DICOM_META_KEY) or {})
        for key in THICKNESS_KEYS:  # the thick slices' thickness no longer describes the output
            meta.pop(key, None)
            tags.pop(key, None)
        if DICOM_META_KEY in meta:
            meta[DICOM_META_KEY] = tags
        r = self.report
        how = "cubic interpolation" if r.choice == "cubic" else f"{r.network} ({r.approach}, {combine})"
        meta[DESCRIPTION_KEY] = (f"mrsr selfsr x{r.scale} along axis {r.axis}: {how}"
                                 f"{', slab consistent' if slab_consistency else ''}")  # fmt: skip
        return meta


def fit_selfsr(volume: MetaTensor, settings: SelfSRSettings | None = None) -> SelfSRModel:
    """Train a network on ``volume``'s own in-plane slices to super-resolve its thick axis.

    Args:
        volume: (1, X, Y, Z) MetaTensor with one thick axis (its affine says which and by how much).
        settings: the network, profile, training budget and where it runs
            (:class:`~mrsr.settings.SelfSRSettings`; ``None``: its defaults). ``steps=None`` trains
            :data:`DEFAULT_STEPS` steps without a ``time_budget``, as many as fit in it with one.

    Returns:
        A :class:`SelfSRModel`; its ``report`` says what the training did.

    Raises:
        MrsrError: a 2D or nearly isotropic input, or one with too few samples to make pairs from.
    """
    start = time.perf_counter()
    s = settings or SelfSRSettings()
    if s.steps is not None and s.steps < 1:  # 0 would keep the untrained network: it is never validated
        raise MrsrError(f"steps must be a whole number >= 1, got {s.steps}.")
    if s.steps is None and s.time_budget is None:
        s = s.replace(steps=DEFAULT_STEPS)
    _check_volume(volume)
    tp = through_plane_factor(volume)
    axis, scale = tp.axis, int(round(tp.factor))
    report = SelfSRReport(axis, tp.factor, scale, s.approach, s.network)
    if abs(tp.factor - scale) > 1e-3:
        report.notes.append(f"factor {tp.factor:.3g} rounded to {scale}: the output spacing is not isotropic")
    degrade, box = _degrader(tp, scale, s.profile, s.thickness)
    with torch.random.fork_rng(devices=[]):  # seeded weights without touching the caller's generator
        torch.manual_seed(s.seed)
        predictor = _build(s.network, s.preset, scale, s.approach)
    dev = resolve_device(s.device)
    x = convert_to_tensor(volume[0], dtype=torch.float32, track_meta=False).movedim(axis, -1)
    lo, hi = float(x.min()), float(np.percentile(x.flatten()[:: max(1, x.numel() // 2**20)].numpy(), 99.5))
    hi = hi if hi > lo else lo + 1.0
    vol = (x - lo) / (hi - lo)  # networks expect about [0, 1]
    if min(vol.shape[0], vol.shape[1]) < 2 * scale:
        raise MrsrError(f"The in-plane size {tuple(vol.shape[:2])} is too small for x{scale} through-plane SR.")
    symmetric = isinstance(s.profile, str) and s.profile in PROFILES  # flips along the thick axis are pairs too
    pairs = ThickSlicePairs(vol, scale, degrade, dev, s.amp, s.slice_batch, symmetric)
    with torch.inference_mode(False), torch.enable_grad():
        predictor = _train(predictor, pairs, report, s, start)
    if not s.fallback:
        report.choice = "network"
    report.seconds = time.perf_counter() - start
    return SelfSRModel(volume, predictor, report, box, vol, lo, hi, dev, s.amp, s.slice_batch)


def _check_volume(volume: torch.Tensor) -> None:
    """A (1, X, Y, Z) stack of parallel slices, or a one-line error."""
    if volume.ndim != 4 or volume.shape[0] != 1:
        raise MrsrError(f"selfsr needs a (1, X, Y, Z) volume, got shape {tuple(volume.shape)}.")
    if isinstance(volume, MetaTensor) and volume.meta.get(SLICE_GEOMETRY_KEY) is not None:
        raise MrsrError("This series' slices are not parallel (a radial or localizer set): selfsr needs a stack "
                        "of parallel slices.")  # fmt: skip


def selfsr(
    volume: MetaTensor, settings: SelfSRSettings | None = None, **changes: Any
) -> tuple[MetaTensor, SelfSRReport]:
    """Super-resolve the thick axis of ``volume`` with a network trained on the volume's own in-plane slices.

    :func:`fit_selfsr` then :meth:`SelfSRModel.predict`.

    Args:
        volume: (1, X, Y, Z) MetaTensor with one thick axis.
        settings: :class:`~mrsr.settings.SelfSRSettings` (``None``: its defaults).
        changes: fields of ``settings`` to change, e.g. ``selfsr(volume, steps=100, combine="fba")``.

    Returns:
        ``(sr, report)``: ``sr`` (1, X, Y, Z) with the thick axis ``s`` times longer, on the HR grid
        (:func:`_hr_affine`), intensities as the input's; ``report`` a :class:`SelfSRReport`.

    Raises:
        MrsrError: a 2D or nearly isotropic input, one with too few samples to make pairs from, or
            options that do not fit together.
    """
    start = time.perf_counter()
    s = _settings(settings, changes)
    _check_output_options(s.combine, s.slab_consistency, s.profile)  # before the training
    model = fit_selfsr(volume, s)
    sr = model.predict(s.combine, s.slab_consistency)
    model.report.combine = s.combine + (" + slab consistency" if s.slab_consistency else "")
    model.report.seconds = time.perf_counter() - start
    return sr, model.report


def _settings(settings: SelfSRSettings | None, changes: dict[str, Any]) -> SelfSRSettings:
    """``settings`` (or the defaults) with ``changes``; an unknown name is a one-line error."""
    settings = settings or SelfSRSettings()
    try:
        return settings.replace(**changes) if changes else settings
    except TypeError as err:  # an unknown field
        raise MrsrError(f"selfsr: {err}; the settings are those of mrsr.settings.SelfSRSettings.") from None


class SelfSR(Transform):
    """MONAI array transform of :func:`selfsr`: a thick-slice (1, X, Y, Z) MetaTensor -> (1, X, Y, Z') on the HR
    grid of its thick axis, trained on the volume itself at each call.

    Args:
        summary: say the report's one line (:meth:`SelfSRReport.summary`) on stderr after each volume.
        settings: :class:`~mrsr.settings.SelfSRSettings` (``None``: its defaults).
        changes: fields of ``settings`` to change (``network``, ``steps``, ``time_budget``, ``profile``, ...), as a
            bundle config gives them.

    Attributes:
        report: the :class:`SelfSRReport` of the last call.
    """

    def __init__(self, summary: bool = True, settings: SelfSRSettings | None = None, **changes: Any) -> None:
        self.summary, self.settings = summary, _settings(settings, changes)
        _check_output_options(self.settings.combine, self.settings.slab_consistency, self.settings.profile)
        self.report: SelfSRReport | None = None

    def __call__(self, img: MetaTensor) -> MetaTensor:
        sr, self.report = selfsr(img, self.settings)
        if self.summary:
            say(self.report.summary())
        return sr


class SelfSRd(MapTransform):
    """Dictionary version of :class:`SelfSR`: each volume under ``keys`` replaced by its through-plane SR.

    Args:
        keys: keys of the thick-slice volumes.
        allow_missing_keys: skip missing keys.
        options: :class:`SelfSR`'s (``summary``, ``settings`` or the settings' fields).
    """

    def __init__(self, keys: KeysCollection, allow_missing_keys: bool = False, **options: Any) -> None:
        super().__init__(keys, allow_missing_keys)
        self.selfsr = SelfSR(**options)

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict[Hashable, torch.Tensor]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.selfsr(d[key])
        return d


def _degrader(tp, scale: int, profile, thickness: float | None) -> tuple[SliceProfileDegrade, bool]:
    """The slice-profile degradation of the scan, with the thickness in HR voxels (mm over HR spacing), and
    whether it is a box exactly one slice spacing wide."""
    mm = thickness if thickness is not None else tp.thickness
    named = isinstance(profile, str) and profile in WIDTH_PROFILES
    width = mm / (tp.spacing / scale) if mm is not None and named else None
    box = isinstance(profile, str) and profile == "box" and (width is None or abs(width - scale) < 1e-3)
    return SliceProfileDegrade(scale, axis=1, profile=profile, thickness=width), box


def _train(predictor: _ThickSR, pairs: ThickSlicePairs, report: SelfSRReport, s: SelfSRSettings, start: float):
    """Train ``predictor`` on ``pairs``; fill ``report`` (scores, steps, choice); return the best state."""
    predictor = predictor.to(pairs.device)
    report.holdout = pairs.holdout
    if pairs.val_lr:
        report.scores["cubic"] = pairs.score(_cubic("cubic", report.scale), amp=False)
        report.scores["linear"] = pairs.score(_cubic("linear", report.scale), amp=False)
    else:
        report.notes.append("fewer than 4 slices: no held-out check, the network runs unchecked")
    result = fit(predictor, pairs, s, pairs.device, start, train_mode=True, amp=s.amp, progress=s.progress,
                 desc="selfsr training")  # fmt: skip
    report.steps = result.steps
    if result.best_state is not None:
        predictor.load_state_dict(result.best_state)
        report.scores["network"] = result.best_score
        if result.best_score <= report.scores["cubic"]:
            report.choice = "cubic"
            report.notes.append("the network never beat cubic interpolation on the held-out slices")
    return predictor
