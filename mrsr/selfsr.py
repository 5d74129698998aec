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

from mrsr.adapt import fit_on_pairs
from mrsr.data.dicom import DICOM_META_KEY, SLICE_GEOMETRY_KEY
from mrsr.data.io import DESCRIPTION_KEY
from mrsr.errors import MrsrError
from mrsr.inference import autocast_context, resolve_device
from mrsr.metrics import range_psnr
from mrsr.networks import get_network
from mrsr.progress import say
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


@dataclass
class _Pairs:
    """Training and held-out pairs: LR (N, 1, H/s, W) thick along H, HR (N, 1, H, W); one list per orientation."""

    lr: list[torch.Tensor]
    hr: list[torch.Tensor]
    val_lr: list[torch.Tensor]
    val_hr: list[torch.Tensor]
    holdout: str


def _make_pairs(vol: torch.Tensor, scale: int, degrade: SliceProfileDegrade) -> _Pairs:
    """Pairs from the in-plane slices of ``vol`` (A, B, L) (thick axis last), degraded along A and along B."""
    n_slices = vol.shape[-1]
    val = list(range(HOLDOUT_EVERY // 2, n_slices, HOLDOUT_EVERY)) if n_slices >= 4 else []
    train = [k for k in range(n_slices) if k not in val] or list(range(n_slices))
    pairs = _Pairs([], [], [], [], f"{len(val)} of {n_slices} in-plane slices, both axes")
    for hr in (vol, vol.transpose(0, 1)):  # degrade A, then B: the degraded axis first
        n = hr.shape[0] // scale * scale
        hr = hr[:n].permute(2, 0, 1).unsqueeze(1).contiguous()  # (L, 1, H, W)
        lr = degrade(hr)  # its axis 1 is H of (L, 1, H, W): channels L, spatial (1, H, W)
        pairs.lr.append(lr[train])
        pairs.hr.append(hr[train])
        if val:
            pairs.val_lr.append(lr[val])
            pairs.val_hr.append(hr[val])
    return pairs


def _batch(pairs: _Pairs, scale: int, size: int, patch: int, flip_h: bool, rng: np.random.Generator):
    """``size`` random patch pairs: LR (B, 1, p/s, p) and HR (B, 1, p, p), flipped (after degrading: the
    flips commute with a symmetric profile on slabs aligned with the slice)."""
    inputs, targets = [], []
    ph = min([patch // scale] + [lr.shape[-2] for lr in pairs.lr])  # one patch size for both orientations
    pw = min([patch] + [lr.shape[-1] for lr in pairs.lr])
    for _ in range(size):
        o = int(rng.integers(len(pairs.lr)))
        lr, hr = pairs.lr[o], pairs.hr[o]
        i = int(rng.integers(lr.shape[0]))
        y0, x0 = int(rng.integers(lr.shape[-2] - ph + 1)), int(rng.integers(lr.shape[-1] - pw + 1))
        a = lr[i, :, y0 : y0 + ph, x0 : x0 + pw]
        b = hr[i, :, scale * y0 : scale * (y0 + ph), x0 : x0 + pw]
        flips = [d for d, on in ((-1, rng.random() < 0.5), (-2, flip_h and rng.random() < 0.5)) if on]
        if flips:
            a, b = a.flip(flips), b.flip(flips)
        inputs.append(a)
        targets.append(b)
    return torch.stack(inputs), torch.stack(targets)


@torch.no_grad()
def _predict(predictor, lr: torch.Tensor, dev: torch.device, amp: bool, batch: int) -> torch.Tensor:
    """Run ``predictor`` on (N, 1, h, W) in batches of ``batch``; returns (N, 1, s*h, W) on the CPU, float."""
    outs = []
    for start in range(0, lr.shape[0], batch):
        with autocast_context(dev, amp):
            outs.append(predictor(lr[start : start + batch].to(dev)).float().cpu())
    return torch.cat(outs)


def _score(predictor, pairs: _Pairs, dev: torch.device, amp: bool, batch: int) -> float:
    preds = [_predict(predictor, lr, dev, amp, batch) for lr in pairs.val_lr]
    return range_psnr(torch.cat([p.flatten() for p in preds]), torch.cat([t.flatten() for t in pairs.val_hr]))


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


def fit_selfsr(
    volume: MetaTensor,
    network: str = "msrn",
    preset: str | None = "small",
    steps: int | None = None,
    time_limit: float | None = None,
    profile: str = "box",
    thickness: float | None = None,
    device: str | torch.device | None = "cpu",
    seed: int = 0,
    progress: bool = True,
    approach: str = "refine",
    batch_size: int = 16,
    patch_size: int = 64,
    lr: float = 1e-3,
    validate_every: int = 50,
    slice_batch: int = 8,
    amp: bool = False,
    fallback: bool = True,
) -> SelfSRModel:
    """Train a network on ``volume``'s own in-plane slices to super-resolve its thick axis.

    Args:
        volume: (1, X, Y, Z) MetaTensor with one thick axis (its affine says which and by how much).
        network: registry name of the 2D network (:func:`mrsr.networks.get_network`).
        preset: its preset (``"small"``: CPU-trainable).
        steps: optimiser steps (at most); ``None``: :data:`DEFAULT_STEPS` without a ``time_limit``, as many
            as fit in it with one.
        time_limit: stop training after this many seconds (``None``: no limit).
        profile: the slice profile of the scan: ``"box"``, ``"gaussian"``, ``"kspace"`` or a 1D array on the HR grid.
        thickness: the slice thickness in mm (default: the header's SliceThickness, else the spacing).
        device: where to train and infer (``"auto"``: CUDA when available).
        seed: seed of the weights and of every random choice.
        progress: report training progress on stderr.
        approach: ``"refine"`` (cubic + refinement network) or ``"upsample"`` (one-axis upsampler).
        batch_size: patches per step.
        patch_size: HR patch side (the LR patch is ``patch_size / s`` along the thick axis).
        lr: Adam learning rate.
        validate_every: steps between internal validations (the best state is kept).
        slice_batch: slices per forward pass at validation and inference.
        amp: mixed precision (bfloat16 training; float16 inference on CUDA, bfloat16 on the CPU).
        fallback: use cubic interpolation when the network never beats it on the held-out pairs.

    Returns:
        A :class:`SelfSRModel`; its ``report`` says what the training did.

    Raises:
        MrsrError: a 2D or nearly isotropic input, or one with too few samples to make pairs from.
    """
    start = time.perf_counter()
    if steps is not None and steps < 1:  # 0 would keep the untrained network: it is never validated
        raise MrsrError(f"steps must be a whole number >= 1, got {steps}.")
    if steps is None and time_limit is None:
        steps = DEFAULT_STEPS
    if volume.ndim != 4 or volume.shape[0] != 1:
        raise MrsrError(f"selfsr needs a (1, X, Y, Z) volume, got shape {tuple(volume.shape)}.")
    if isinstance(volume, MetaTensor) and volume.meta.get(SLICE_GEOMETRY_KEY) is not None:
        raise MrsrError("This series' slices are not parallel (a radial or localizer set): selfsr needs a stack "
                        "of parallel slices.")  # fmt: skip
    tp = through_plane_factor(volume)
    axis, scale = tp.axis, int(round(tp.factor))
    report = SelfSRReport(axis, tp.factor, scale, approach, network)
    if abs(tp.factor - scale) > 1e-3:
        report.notes.append(f"factor {tp.factor:.3g} rounded to {scale}: the output spacing is not isotropic")
    degrade, box = _degrader(tp, scale, profile, thickness)
    with torch.random.fork_rng(devices=[]):  # seeded weights without touching the caller's generator
        torch.manual_seed(seed)
        predictor = _build(network, preset, scale, approach)
    dev = resolve_device(device)
    x = convert_to_tensor(volume[0], dtype=torch.float32, track_meta=False).movedim(axis, -1)
    lo, hi = float(x.min()), float(np.percentile(x.flatten()[:: max(1, x.numel() // 2**20)].numpy(), 99.5))
    hi = hi if hi > lo else lo + 1.0
    vol = (x - lo) / (hi - lo)  # networks expect about [0, 1]
    if min(vol.shape[0], vol.shape[1]) < 2 * scale:
        raise MrsrError(f"The in-plane size {tuple(vol.shape[:2])} is too small for x{scale} through-plane SR.")
    pairs = _make_pairs(vol, scale, degrade)
    symmetric = isinstance(profile, str) and profile in PROFILES  # flips along the thick axis are pairs too
    with torch.inference_mode(False), torch.enable_grad():
        predictor = _train(predictor, pairs, report, dev, steps, time_limit, batch_size, patch_size, lr,
                           validate_every, slice_batch, amp, seed, progress, symmetric, start)  # fmt: skip
    if not fallback:
        report.choice = "network"
    report.seconds = time.perf_counter() - start
    return SelfSRModel(volume, predictor, report, box, vol, lo, hi, dev, amp, slice_batch)


def selfsr(
    volume: MetaTensor, combine: str = "average", slab_consistency: bool = False, **fit_options: Any
) -> tuple[MetaTensor, SelfSRReport]:
    """Super-resolve the thick axis of ``volume`` with a network trained on the volume's own in-plane slices.

    :func:`fit_selfsr` then :meth:`SelfSRModel.predict`.

    Args:
        volume: (1, X, Y, Z) MetaTensor with one thick axis.
        combine: how the two orientations are combined (:meth:`SelfSRModel.predict`).
        slab_consistency: make each output slab's mean its input slice (box profile only).
        fit_options: :func:`fit_selfsr`'s keyword arguments (``network``, ``steps``, ``time_limit``, ``profile``,
            ``approach``, ``device``, ``seed``, ``amp``, ``fallback``, ...).

    Returns:
        ``(sr, report)``: ``sr`` (1, X, Y, Z) with the thick axis ``s`` times longer, on the HR grid
        (:func:`_hr_affine`), intensities as the input's; ``report`` a :class:`SelfSRReport`.

    Raises:
        MrsrError: a 2D or nearly isotropic input, one with too few samples to make pairs from, or
            options that do not fit together.
    """
    start = time.perf_counter()
    _check_output_options(combine, slab_consistency, fit_options.get("profile", "box"))  # before the training
    model = fit_selfsr(volume, **fit_options)
    sr = model.predict(combine, slab_consistency)
    model.report.combine = combine + (" + slab consistency" if slab_consistency else "")
    model.report.seconds = time.perf_counter() - start
    return sr, model.report


class SelfSR(Transform):
    """MONAI array transform of :func:`selfsr`: a thick-slice (1, X, Y, Z) MetaTensor -> (1, X, Y, Z') on the HR
    grid of its thick axis, trained on the volume itself at each call.

    Args:
        summary: say the report's one line (:meth:`SelfSRReport.summary`) on stderr after each volume.
        options: :func:`selfsr`'s keyword arguments (``network``, ``steps``, ``time_limit``, ``profile``, ...).

    Attributes:
        report: the :class:`SelfSRReport` of the last call.
    """

    def __init__(self, summary: bool = True, **options: Any) -> None:
        _check_output_options(options.get("combine", "average"), options.get("slab_consistency", False),
                              options.get("profile", "box"))  # fmt: skip
        self.summary, self.options = summary, options
        self.report: SelfSRReport | None = None

    def __call__(self, img: MetaTensor) -> MetaTensor:
        sr, self.report = selfsr(img, **self.options)
        if self.summary:
            say(self.report.summary())
        return sr


class SelfSRd(MapTransform):
    """Dictionary version of :class:`SelfSR`: each volume under ``keys`` replaced by its through-plane SR.

    Args:
        keys: keys of the thick-slice volumes.
        allow_missing_keys: skip missing keys.
        options: :class:`SelfSR`'s.
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


def _train(predictor: _ThickSR, pairs: _Pairs, report: SelfSRReport, dev: torch.device, steps: int | None,
           time_limit: float | None, batch_size: int, patch_size: int, lr: float, validate_every: int,
           slice_batch: int, amp: bool, seed: int, progress: bool, flip_h: bool, start: float):  # fmt: skip
    """Train ``predictor`` on ``pairs``; fill ``report`` (scores, steps, choice); return the best state."""
    predictor = predictor.to(dev)
    report.holdout = pairs.holdout
    have_val = bool(pairs.val_lr)
    if have_val:
        report.scores["cubic"] = _score(_cubic("cubic", report.scale), pairs, dev, False, slice_batch)
        report.scores["linear"] = _score(_cubic("linear", report.scale), pairs, dev, False, slice_batch)
    else:
        report.notes.append("fewer than 4 slices: no held-out check, the network runs unchecked")
    rng = np.random.default_rng(seed)
    fit = fit_on_pairs(
        predictor, lambda: _batch(pairs, report.scale, batch_size, patch_size, flip_h, rng),
        (lambda model: _score(model, pairs, dev, amp, slice_batch)) if have_val else None, steps, lr,
        validate_every, dev, time_limit, start, train_mode=True, amp=amp, progress=progress, desc="selfsr training",
    )  # fmt: skip
    report.steps = fit.steps
    if fit.best_state is not None:
        predictor.load_state_dict(fit.best_state)
        report.scores["network"] = fit.best_score
        if fit.best_score <= report.scores["cubic"]:
            report.choice = "cubic"
            report.notes.append("the network never beat cubic interpolation on the held-out slices")
    return predictor
