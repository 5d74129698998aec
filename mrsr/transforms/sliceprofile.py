"""Thick-slice (through-plane) degradation with a slice profile (docs/CONVENTIONS.md).

A 2D multi-slice acquisition measures each slice as the HR signal weighted by a slice profile
across the slice thickness, once per slice spacing. :class:`SliceProfileDegrade` simulates it along
one axis with an integer factor ``s``: LR slice ``k`` is centred at HR position ``s*k + (s-1)/2``
(a box of ``s`` HR samples covers exactly ``[s*k, s*k + s)``), the profile is normalised to sum 1,
and a trailing partial slab is dropped. The LR affine moves the origin by ``(s-1)/2`` HR voxels
along the axis and multiplies the spacing by ``s``, so LR and HR overlay in world coordinates.

Unlike the k-space truncation (whose LR sample ``m`` lies at HR ``m*s``), the LR origin moves:
the two degradations are different physics and have different geometry.

:func:`through_plane_factor` reads a volume's header: the thick axis, the factor (its spacing over
the mean in-plane spacing) and, when the meta carries DICOM's SliceThickness, the thickness.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from monai.data import MetaTensor
from monai.transforms import InvertibleTransform
from monai.utils import TraceKeys, TransformBackends, convert_to_dst_type, convert_to_numpy, convert_to_tensor

from mrsr.errors import MrsrError

from .kspace import _PerKeyd

__all__ = [
    "PROFILES",
    "WIDTH_PROFILES",
    "slice_profile_weights",
    "ThroughPlane",
    "through_plane_factor",
    "SliceProfileDegrade",
    "SliceProfileDegraded",
    "SliceProfileDegradeD",
    "SliceProfileDegradeDict",
]

#: named slice profiles: box and gaussian have a width (thickness, gap); kspace is the ideal band-limited slice
PROFILES = ("box", "gaussian", "kspace")
WIDTH_PROFILES = ("box", "gaussian")
#: a Gaussian profile is kept to this many standard deviations either side of its centre
GAUSS_SUPPORT = 4.0
#: volumes thicker across one axis than this factor count as thick-slice stacks
MIN_THROUGH_PLANE_FACTOR = 1.5
# where DICOM's SliceThickness can sit in a volume's meta: a top-level key (ITK and pydicom-json
# spellings included) or the patient/study tags mrsr's DICOM reader keeps ("mrsr_dicom_tags")
THICKNESS_KEYS = ("SliceThickness", "0018|0050", "00180050")
_DICOM_TAGS_KEY = "mrsr_dicom_tags"


def _integer_scale(scale: float) -> int:
    """``scale`` as an int >= 1, refusing fractions (a slab of a fraction of a sample is not defined here)."""
    value = float(scale)
    if not math.isfinite(value) or value < 1 or value != int(value):
        raise MrsrError(
            f"The slice-profile degradation needs an integer factor >= 1, got {scale:g}; "
            "round it (non-integer factors are not supported yet)."
        )
    return int(value)


def _load_profile(profile: np.ndarray | Sequence[float] | str | os.PathLike) -> np.ndarray:
    """A profile array, or one read from a ``.npy`` file, checked: 1D, finite, positive sum."""
    if isinstance(profile, (str, os.PathLike)):
        path = Path(profile)
        if not path.is_file():
            raise MrsrError(f"Slice profile {path} is not a file; give box, gaussian or a .npy file of a 1D array.")
        try:
            profile = np.load(path, allow_pickle=False)
        except (ValueError, OSError) as err:
            raise MrsrError(f"Slice profile {path} is not a .npy array ({err}); save one with numpy.save.") from None
        where = f"Slice profile {path}"
    else:
        where = "The slice profile"
    p = np.asarray(profile, dtype=np.float64)
    if p.ndim != 1 or p.size == 0:
        raise MrsrError(f"{where} must be a 1D array of weights on the HR grid, got shape {p.shape}.")
    if not np.isfinite(p).all() or not p.sum() > 0:
        raise MrsrError(f"{where} must be finite with a positive sum, got {p.tolist()[:8]}.")
    return p


def slice_profile_weights(
    scale: int,
    profile: str | np.ndarray | Sequence[float] = "box",
    thickness: float | None = None,
) -> tuple[np.ndarray, int]:
    """The weights of one LR slice over the HR samples, relative to the start of its slab.

    LR slice ``k`` is ``sum_i w[i] * hr[s*k + t0 + i]``. The profile is centred at ``(s-1)/2`` (the
    slab's centre); each HR sample gets the profile's integral over its own extent ``[t-1/2, t+1/2]``
    (a box of an integer width aligned with the grid gives whole samples; one of another width gives
    the samples at its edges a fraction), and the weights sum to 1.

    Args:
        scale: the integer factor ``s`` (the slice spacing in HR samples).
        profile: ``"box"``, ``"gaussian"`` (FWHM = ``thickness``), or a 1D array sampled on the HR grid,
            centred on the slab (an array whose length has the other parity than ``s`` lies half a
            sample off the grid and is linearly interpolated onto it, which keeps its centroid).
        thickness: width of the box or FWHM of the Gaussian in HR samples (default ``s``); not used
            with an array.

    Returns:
        ``(w, t0)``: float64 weights summing to 1 and the offset of the first one.

    >>> w, t0 = slice_profile_weights(4, "box", thickness=2)
    >>> w.tolist(), t0
    ([0.5, 0.5], 1)
    """
    s = _integer_scale(scale)
    centre = (s - 1) / 2
    if isinstance(profile, str) and profile == "kspace":
        raise MrsrError("The kspace profile is the periodic sinc of the whole axis, not a finite kernel.")
    if isinstance(profile, str) and profile in WIDTH_PROFILES:
        width = float(s if thickness is None else thickness)
        if not width > 0 or not math.isfinite(width):
            raise MrsrError(f"The slice thickness must be positive, got {width:g} HR samples.")
        half = width / 2 if profile == "box" else GAUSS_SUPPORT * width / (2 * math.sqrt(2 * math.log(2)))
        t = np.arange(math.floor(centre - half) - 1, math.ceil(centre + half) + 2, dtype=np.float64)
        if profile == "box":
            w = np.clip(np.minimum(t + 0.5, centre + half) - np.maximum(t - 0.5, centre - half), 0, None)
        else:
            sigma = width / (2 * math.sqrt(2 * math.log(2)))
            cdf = torch.special.ndtr(torch.from_numpy(np.concatenate([t - 0.5, t[-1:] + 0.5]) - centre) / sigma)
            w = np.diff(cdf.numpy())
            w[np.abs(t - centre) > half] = 0.0  # cut the tails symmetrically
        nonzero = np.flatnonzero(w > 0)
        w, t0 = w[nonzero[0] : nonzero[-1] + 1], int(t[nonzero[0]])
    else:
        p = _load_profile(profile)
        if (s - p.size) % 2 == 0:
            w, t0 = p, (s - p.size) // 2
        else:  # centred half a sample off the grid: the mean of neighbours (same centroid and sum)
            w, t0 = (np.concatenate([[0.0], p]) + np.concatenate([p, [0.0]])) / 2, (s - p.size - 1) // 2
    return w / w.sum(), t0


class ThroughPlane(tuple):
    """``(axis, factor)`` of a thick-slice volume, with the header's slice geometry as attributes.

    Attributes:
        axis: the thick (through-plane) spatial axis.
        factor: its spacing over the mean in-plane spacing (need not be an integer).
        spacing: the slice spacing in mm (the affine's).
        thickness: the slice thickness in mm from DICOM's SliceThickness, or ``None`` without one.
    """

    def __new__(cls, axis: int, factor: float, spacing: float, thickness: float | None = None) -> ThroughPlane:
        self = super().__new__(cls, (int(axis), float(factor)))
        self.spacing, self.thickness = float(spacing), thickness
        return self

    @property
    def axis(self) -> int:
        return self[0]

    @property
    def factor(self) -> float:
        return self[1]


def _meta_thickness(meta: Mapping[str, Any]) -> float | None:
    """DICOM's SliceThickness (mm) where a reader left it in ``meta``; ``None`` if absent or not positive."""
    places = [meta, meta.get(_DICOM_TAGS_KEY) or {}]
    for place in places:
        for key in THICKNESS_KEYS:
            value = place.get(key) if isinstance(place, Mapping) else None
            if isinstance(value, Mapping):  # pydicom's JSON form: {"vr": "DS", "Value": [3.0]}
                value = (value.get("Value") or [None])[0]
            if isinstance(value, (list, tuple, np.ndarray)) and len(value):
                value = value[0]
            try:
                thickness = float(value)  # type: ignore[arg-type]
            except (TypeError, ValueError):
                continue
            if math.isfinite(thickness) and thickness > 0:
                return thickness
    return None


def through_plane_factor(
    affine_or_spacing: MetaTensor | torch.Tensor | np.ndarray | Sequence[float],
    shape: Sequence[int] | None = None,
) -> ThroughPlane:
    """The thick axis of a volume and its through-plane factor, from the header.

    The factor is the largest spacing over the mean of the other two (0.9 x 0.9 x 3.5 mm gives axis
    2, 3.89). A MetaTensor gives its affine, its spatial shape and its meta; a DICOM series' slice
    thickness is reported when the meta carries SliceThickness (a thickness below the spacing means
    gaps between slices, above it overlapping slices).

    Args:
        affine_or_spacing: a (C, X, Y, Z) MetaTensor, a 4x4 voxel-to-world affine, or the 3 spacings (mm).
        shape: the spatial shape (X, Y, Z), to refuse a single slice; a MetaTensor's own by default.

    Returns:
        :class:`ThroughPlane`: unpacks as ``(axis, factor)``; ``.spacing`` and ``.thickness`` in mm.

    Raises:
        MrsrError: a 2D image or a single slice, voxels with no single thick axis, or a factor below 1.5.

    >>> through_plane_factor([1.0, 1.0, 4.0])
    (2, 4.0)
    """
    meta: Mapping[str, Any] = {}
    if isinstance(affine_or_spacing, MetaTensor):
        meta = affine_or_spacing.meta
        if shape is None:
            shape = tuple(affine_or_spacing.shape[1:])
        affine_or_spacing = affine_or_spacing.affine
    values = np.asarray(convert_to_numpy(affine_or_spacing), dtype=np.float64)
    if values.ndim == 3 and values.shape[0] == 1:  # a batch of one affine
        values = values[0]
    if values.ndim == 2:
        if values.shape != (4, 4):
            raise MrsrError(
                f"A {values.shape[0]}x{values.shape[1]} affine is a 2D image's: through-plane SR needs a 3D volume "
                "(a stack of slices)."
            )
        spacing = np.linalg.norm(values[:3, :3], axis=0)
    else:
        spacing = values.reshape(-1)
    if spacing.size != 3 or (shape is not None and sum(int(n) > 1 for n in shape) < 3):
        given = f"shape {tuple(int(n) for n in shape)}" if shape is not None and spacing.size == 3 else (
            f"{spacing.size} spacings"
        )  # fmt: skip
        raise MrsrError(f"The input is 2D ({given}): through-plane SR needs a 3D volume of several slices.")
    if not (np.isfinite(spacing).all() and (spacing > 0).all()):
        raise MrsrError(f"The voxel spacing {spacing.tolist()} is not positive and finite; fix the header.")
    order = np.argsort(spacing)[::-1]
    axis, second = int(order[0]), int(order[1])
    in_plane = float(np.mean([spacing[a] for a in range(3) if a != axis]))
    factor = float(spacing[axis]) / in_plane
    dims = "x".join(f"{v:.3g}" for v in spacing)
    if factor < MIN_THROUGH_PLANE_FACTOR:
        raise MrsrError(
            f"The voxels are {dims} mm, nearly isotropic (through-plane factor {factor:.2f} < "
            f"{MIN_THROUGH_PLANE_FACTOR}): there are no thick slices to super-resolve; use in-plane SR (mrsr infer)."
        )
    if spacing[second] >= spacing[axis] * (1 - 1e-3):
        raise MrsrError(
            f"The voxels are {dims} mm: axes {min(axis, second)} and {max(axis, second)} are equally thick, so "
            "there is no single slice axis; resample the volume so that only the slice axis is thick."
        )
    return ThroughPlane(axis, factor, float(spacing[axis]), _meta_thickness(meta))


class SliceProfileDegrade(InvertibleTransform):
    """Simulate thick slices along one axis: weight by a slice profile, keep one slice in ``scale``.

    The image is channel-first (C, X, Y, Z) (any number of spatial axes). LR slice ``k`` is the
    profile-weighted sum of the HR samples around ``s*k + (s-1)/2`` (:func:`slice_profile_weights`);
    there are ``N // s`` of them (a trailing partial slab is dropped) and a profile reaching past the
    volume's ends reads the edge sample again (replicate padding), so a constant image stays
    constant. The slice spacing is always ``s`` HR samples; ``thickness`` and ``gap`` share it
    (``thickness + gap = s``): a gap leaves the HR samples at the slab's edges out (the profile stays
    centred on the slab), a thickness above ``s`` makes slices overlap. Computed with ``conv1d`` of
    stride ``s`` on the input's device.

    A MetaTensor's affine moves its origin by ``(s-1)/2`` HR voxels along the axis and multiplies the
    axis's spacing by ``s``: LR and HR overlay in world coordinates. The input's meta and
    ``applied_operations`` are kept and a record of this transform is pushed, so ``Compose.inverse``
    and ``Invertd`` work (:meth:`inverse`: linear interpolation back onto the HR grid).

    Args:
        scale: integer factor ``s`` >= 1 (the slice spacing in HR samples); fractions are refused.
        axis: the spatial axis across the slices (0-based, channel excluded).
        profile: ``"box"``, ``"gaussian"`` (FWHM = ``thickness``), ``"kspace"`` (the ideal slice of
            band-limited excitation: the axis's k-space truncated to the LR band, sampled at the slab
            centres; one spacing wide), or a 1D array of weights sampled on the HR grid (or a ``.npy`` file
            of one), centred on the slab; an array sets its own width.
        thickness: slice thickness in HR samples (default ``s - gap``: contiguous slices); box and
            Gaussian only.
        gap: space between slices in HR samples (default ``s - thickness``, 0 without ``thickness``);
            box and Gaussian only. With both, ``thickness + gap`` must equal ``s``.

    Raises:
        MrsrError: a non-integer or too large factor, an unknown profile, a bad thickness or gap, or a
            thickness or gap given with an array profile (:class:`~mrsr.errors.MrsrError` for a bad file).

    >>> t = SliceProfileDegrade(scale=4, axis=2)
    >>> x = torch.arange(8.0).reshape(1, 1, 1, 8)
    >>> t(x).flatten().tolist()  # the means of [0, 1, 2, 3] and [4, 5, 6, 7]
    [1.5, 5.5]
    """

    backend = [TransformBackends.TORCH, TransformBackends.NUMPY]

    def __init__(
        self,
        scale: int = 2,
        axis: int = 2,
        profile: str | np.ndarray | Sequence[float] | os.PathLike = "box",
        thickness: float | None = None,
        gap: float | None = None,
    ) -> None:
        self.scale = _integer_scale(scale)
        if int(axis) < 0:
            raise MrsrError(f"axis must be a non-negative spatial axis, got {axis}.")
        self.axis = int(axis)
        named = isinstance(profile, str) and profile in WIDTH_PROFILES
        kspace = isinstance(profile, str) and profile == "kspace"
        if kspace and (gap or (thickness is not None and abs(thickness - self.scale) > 1e-6 * self.scale)):
            raise MrsrError("The kspace profile is one slice spacing wide: give no other thickness and no gap.")
        if not named and not kspace and (thickness is not None or gap is not None):
            raise MrsrError("A profile array sets its own width: give no thickness or gap with it.")
        if isinstance(profile, str) and not (named or kspace) and not profile.endswith(".npy"):
            raise MrsrError(
                f"Unknown slice profile {profile!r}; choose box, gaussian, kspace or a .npy file of a 1D array."
            )
        for name, value in (("thickness", thickness), ("gap", gap)):
            if value is not None and not (math.isfinite(value) and value >= 0):
                raise MrsrError(f"The slice {name} must be a number >= 0, got {value:g}.")
        if named:
            if thickness is None:
                thickness = self.scale - (gap or 0.0)
            elif gap is not None and abs(thickness + gap - self.scale) > 1e-6 * self.scale:
                raise MrsrError(
                    f"thickness {thickness:g} + gap {gap:g} must equal the slice spacing, the factor {self.scale} "
                    "(all in HR samples)."
                )
            if not thickness > 0:
                nothing = f"leaves nothing of the slice spacing, {self.scale} HR samples"
                left = "" if gap is None else f": a gap of {gap:g} HR samples {nothing}"
                raise MrsrError(f"The slice thickness must be positive, got {thickness:g}{left}.")
        self.profile = profile if named or kspace else _load_profile(profile)  # type: ignore[arg-type]
        self.thickness = float(self.scale) if kspace else None if not named else float(thickness)  # type: ignore
        self.gap = 0.0 if kspace else None if not named else self.scale - float(thickness)  # type: ignore[arg-type]
        if kspace:
            self.weights, self.offset = None, 0
        else:
            weights, self.offset = slice_profile_weights(self.scale, self.profile, self.thickness)
            self.weights = torch.from_numpy(weights)

    def lr_size(self, size: int) -> int:
        """The number of LR slices of an axis of ``size`` HR samples: ``size // scale``, at least 2."""
        n = size // self.scale
        if n < 2 and size < 2:  # no factor leaves 2 slices: "at most 0" would be no advice
            raise MrsrError(f"Axis {self.axis} has {size} slice: too small to degrade (it must keep at least 2).")
        if n < 2:
            raise MrsrError(
                f"Axis {self.axis} has {size} samples: a factor of {self.scale} would leave {n} slice(s); "
                f"use a factor of at most {size // 2}."
            )
        return n

    def __call__(self, img: torch.Tensor | np.ndarray) -> torch.Tensor | np.ndarray:
        """Degrade ``img`` (C, *spatial) along :attr:`axis`; returns the same type.

        Args:
            img: (C, *spatial) image; a MetaTensor's affine is updated and its history kept.

        Returns:
            (C, *spatial) with ``spatial[axis]`` replaced by ``spatial[axis] // scale``, float; a MetaTensor
            gets a ``SliceProfileDegrade`` record pushed onto its ``applied_operations``.
        """
        x = convert_to_tensor(img, track_meta=False)
        if not torch.is_floating_point(x) or x.dtype in (torch.float16, torch.bfloat16):
            x = x.float()
        dim = self.axis + 1
        if dim >= x.ndim:
            raise MrsrError(f"Axis {self.axis} does not exist in an image with {x.ndim - 1} spatial axes.")
        size = x.shape[dim]
        n = self.lr_size(size)
        lr = self._filter(x, dim, n)
        if not isinstance(img, MetaTensor):
            return convert_to_dst_type(lr, img, dtype=lr.dtype)[0]
        meta = dict(img.meta)
        affine = img.affine.clone().to(torch.float64)
        affine[:-1, -1] += affine[:-1, self.axis] * (self.scale - 1) / 2  # slab centre, not its first sample
        affine[:-1, self.axis] *= self.scale
        meta["affine"] = affine
        meta["spatial_shape"] = np.asarray(lr.shape[1:])
        out = MetaTensor(lr, meta=meta, applied_operations=list(img.applied_operations))
        info = {"axis": self.axis, "scale": self.scale, "original_affine": convert_to_numpy(img.affine, np.float64)}
        if "spatial_shape" in img.meta:
            info["original_spatial_shape"] = convert_to_numpy(img.meta["spatial_shape"])
        return self.push_transform(out, orig_size=tuple(img.shape[1:]), extra_info=info)

    def _filter(self, x: torch.Tensor, dim: int, n: int) -> torch.Tensor:
        """``n`` profile-weighted slabs along ``dim``: one strided conv1d over all other axes at once."""
        if self.weights is None:
            return self._kspace_slices(x, dim, n)
        size, k = x.shape[dim], self.weights.numel()
        rows = torch.movedim(x, dim, -1)
        lead = rows.shape[:-1]
        rows = rows.reshape(-1, 1, size)
        # LR slice j reads HR samples s*j + offset + i, i < k: pad or crop so that index 0 is HR `offset`
        first, last = self.offset, self.scale * (n - 1) + self.offset + k - 1
        rows = rows[..., max(first, 0) :]
        rows = F.pad(rows, (max(-first, 0), max(last - (size - 1), 0)), mode="replicate")
        weight = self.weights.to(device=x.device, dtype=x.dtype).reshape(1, 1, k)
        out = F.conv1d(rows, weight, stride=self.scale)[..., :n]
        return torch.movedim(out.reshape(*lead, n), -1, dim).contiguous()

    def _kspace_slices(self, x: torch.Tensor, dim: int, n: int) -> torch.Tensor:
        """The ``kspace`` profile: the central ``n`` frequencies of the first ``s*n`` samples along ``dim``,
        sampled at the slab centres ``s*k + (s-1)/2`` (a phase shift of the kept band, then an ``n``-point
        inverse FFT); an even ``n``'s Nyquist bin takes half of each of its two aliases, so real stays real."""
        big = self.scale * n
        spectrum = torch.fft.fft(x.narrow(dim, 0, big).double(), dim=dim)
        freqs = torch.fft.fftfreq(big, d=1.0 / big, device=x.device).double()  # integer frequencies
        shift = torch.exp(2j * torch.pi * freqs * ((self.scale - 1) / 2) / big)
        shape = [-1 if d == dim else 1 for d in range(x.ndim)]
        spectrum = spectrum * shift.reshape(shape)
        half = n // 2
        low = spectrum.narrow(dim, 0, (n + 1) // 2)  # 0 .. ceil(n/2) - 1
        high = spectrum.narrow(dim, big - half, half)  # -n/2 .. -1
        if n % 2 == 0:  # bin n/2 of the LR grid: the mean of HR bins +n/2 and -n/2
            nyquist = (spectrum.narrow(dim, half, 1) + high.narrow(dim, 0, 1)) / 2
            high = torch.cat([nyquist, high.narrow(dim, 1, half - 1)], dim=dim)
        kept = torch.cat([low, high], dim=dim)
        return (torch.fft.ifft(kept, dim=dim).real * (n / big)).to(x.dtype).contiguous()

    def inverse(self, data: torch.Tensor) -> torch.Tensor:
        """Put ``data`` back on the HR grid by linear interpolation between slice centres.

        The most recent ``SliceProfileDegrade`` record of ``data`` (a MetaTensor) is popped. HR sample
        ``j`` reads the LR image at ``(j - (s-1)/2) / s`` (held constant past the first and last slice
        centres); the input's affine and ``spatial_shape`` meta come back. This is upsampling, not a
        reconstruction: what the profile averaged away is not restored. An image already on the HR
        grid (an SR output given the LR input's history, e.g. by ``Invertd``) keeps its values and only
        gets the HR geometry back.

        Args:
            data: (C, *spatial) MetaTensor carrying this transform's record.

        Returns:
            (C, *input_spatial) MetaTensor, float.
        """
        record = self.pop_transform(data)
        info = record[TraceKeys.EXTRA_INFO]
        axis, scale = int(info["axis"]), int(info["scale"])
        size = int(record[TraceKeys.ORIG_SIZE][axis])
        x = convert_to_tensor(data, track_meta=False)
        if not torch.is_floating_point(x):
            x = x.float()
        dim = axis + 1
        if x.shape[dim] != size:
            u = (torch.arange(size, device=x.device, dtype=torch.float64) - (scale - 1) / 2) / scale
            u = u.clamp(0, x.shape[dim] - 1)
            lo = u.floor().long()
            hi = (lo + 1).clamp(max=x.shape[dim] - 1)
            frac = (u - lo).to(x.dtype).reshape([-1 if d == dim else 1 for d in range(x.ndim)])
            x = x.index_select(dim, lo) * (1 - frac) + x.index_select(dim, hi) * frac
        if not isinstance(data, MetaTensor):
            return x
        meta = dict(data.meta)
        meta["affine"] = torch.as_tensor(info["original_affine"], dtype=torch.float64)
        if "original_spatial_shape" in info:
            meta["spatial_shape"] = np.asarray(info["original_spatial_shape"])
        else:
            meta.pop("spatial_shape", None)
        return MetaTensor(x, meta=meta, applied_operations=list(data.applied_operations))


class SliceProfileDegraded(_PerKeyd):
    """Dictionary version of :class:`SliceProfileDegrade`; invertible (:meth:`SliceProfileDegrade.inverse`).

    Args:
        keys: keys of the images to degrade.
        output_keys: where to store each degraded image (e.g. ``"lr"`` to keep the HR ``"image"``);
            ``None`` degrades in place. The record is on the output key.
        allow_missing_keys: do not raise if a key is missing.
        kwargs: the arguments of :class:`SliceProfileDegrade`.

    >>> d = SliceProfileDegraded("image", output_keys="lr", scale=2)({"image": torch.rand(1, 8, 8, 6)})
    >>> d["image"].shape, d["lr"].shape
    (torch.Size([1, 8, 8, 6]), torch.Size([1, 8, 8, 3]))
    """

    backend = SliceProfileDegrade.backend
    array_class = SliceProfileDegrade


SliceProfileDegradeD = SliceProfileDegradeDict = SliceProfileDegraded
