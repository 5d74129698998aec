"""Band-limit guard: add nothing beyond the input's band along an axis where the input was already band-limited.

Scanners often reconstruct on a finer grid than they acquired (zero-filled interpolation, ``ZIP``),
and reformats interpolate again. Along such an axis the image has no signal near its own Nyquist
frequency: its power spectrum falls off a cliff inside the band and only a flat floor (noise,
rounding) remains. Whatever an SR network adds beyond that band is then pure error, and zero-filling
is the best SR along that axis.

:func:`band_edge_ratio` looks for the cliff on the LR input at a ladder of candidate edges ``e``
(0.8 of its Nyquist frequency, then 0.8 times less each step, down to 0.17): the mean spectral power
per frequency above ``e`` over that in the band just below (``0.625 e`` to ``e``). "Above" is the
larger of the band just above (``e`` to ``1.6 e``) and everything beyond it up to Nyquist, so power
anywhere past the edge counts. Both neighbouring bands span the same ratio of frequencies, so a power
law ``f^-p`` gives the same value at every edge (0.39 for natural ``p = 2``, 0.15 for ``p = 4``, 0.5 for
``e = 0.8`` where the band above is cut at Nyquist); the smallest over the ladder below
:data:`BAND_EDGE_RATIO` (0.1, a decay steeper than ``f^-6``) makes the axis band-limited.
:func:`keep_band` then projects the SR output onto the input's band along those axes (``T⁺T``, the
truncation followed by its pseudo-inverse), which keeps data consistency exact: the truncation of the
result is still the input.

The test sees a band that ends between a sixth and four fifths of the input's Nyquist frequency
(where each neighbouring band holds at least :data:`MIN_BAND` frequencies): at x2, a scan acquired
with 8-40% of the output grid's samples along an axis. A band that ends higher cannot be told from a
natural image.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from monai.config import KeysCollection
from monai.transforms import Transform
from monai.utils import TransformBackends, convert_to_dst_type, convert_to_tensor

from .consistency import WithReferenced, lift, upsampled_axes
from .kspace import fourier_resize, truncated_size

__all__ = [
    "BAND_EDGE_RATIO",
    "band_edge_ratio",
    "band_edge_ratios",
    "band_limited_dims",
    "summed_power",
    "keep_band",
    "scale_detail",
    "zero_filled_acquisition",
    "BandLimitGuard",
    "BandLimitGuardd",
    "BandLimitGuardD",
    "BandLimitGuardDict",
]

#: below this power ratio (above an edge / just below it) an axis counts as band-limited
BAND_EDGE_RATIO = 0.1
#: axes shorter than this have too few frequencies to judge
MIN_SAMPLES = 16
#: an edge is tested only where each band next to it holds at least this many frequencies
MIN_BAND = 2
EDGES = tuple(0.8**k for k in range(1, 9))  # candidate band edges, fractions of the Nyquist frequency: 0.8 .. 0.17
_BELOW, _ABOVE = 0.625, 1.6  # the bands next to an edge e: (0.625 e, e] and (e, 1.6 e], the same ratio wide
_FLOOR = 1e-10  # power per frequency below this fraction of the mean is floating-point round-off


def summed_power(x: torch.Tensor, dim: int, chunk_voxels: int = 1 << 22) -> torch.Tensor:
    """``|rfft(x - mean(x))|²`` along ``dim``, summed over every other axis: (n // 2 + 1,) float64.

    Computed a chunk of about ``chunk_voxels`` voxels at a time, so the memory it adds stays bounded
    whatever the volume's size.
    """
    if x.ndim == 1:  # one line: a second axis of size 1 to cut chunks along
        x, dim = x[None], 1
    mean = float(x.mean(dtype=torch.float64))
    other = max((a for a in range(x.ndim) if a != dim), key=lambda a: x.shape[a])  # the axis chunks are cut along
    step = max(1, chunk_voxels * x.shape[other] // max(1, x.numel()))
    total = torch.zeros(x.shape[dim] // 2 + 1, dtype=torch.float64)
    for start in range(0, x.shape[other], step):
        chunk = x.narrow(other, start, min(step, x.shape[other] - start))
        part = torch.fft.rfft(chunk.double() - mean, dim=dim).abs().square()
        total += part.movedim(dim, 0).reshape(total.shape[0], -1).sum(dim=1).cpu()
    return total


def band_edge_ratios(img: torch.Tensor, dim: int) -> dict[float, float]:
    """Power above each candidate band edge over the power just below it, along ``dim`` (summed over the rest).

    For each edge ``e`` of :data:`EDGES` (a fraction of the Nyquist frequency) where both neighbouring bands
    hold :data:`MIN_BAND` frequencies or more: the larger of the mean power per frequency in ``(e, 1.6 e]``
    and in ``(1.6 e, 1]``, over that in ``(0.625 e, e]``.

    Args:
        img: real tensor of any shape.
        dim: the axis whose spectrum is measured.

    Returns:
        ``{edge: ratio}``; a ratio is 0 where everything above the edge is round-off, ``inf`` where only
        the bands above it hold power.
    """
    x = torch.as_tensor(img)
    dim = dim % x.ndim
    power = summed_power(x, dim)
    f = torch.arange(power.shape[0], dtype=torch.float64) / (x.shape[dim] / 2)
    ratios = {}
    for edge in EDGES:
        below = power[(f > _BELOW * edge) & (f <= edge)]
        near = power[(f > edge) & (f <= min(1.0, _ABOVE * edge))]
        far = power[(f > _ABOVE * edge) & (f <= 1.0)]
        if min(len(below), len(near)) < MIN_BAND:
            continue
        above, under = float(max(near.mean(), far.mean() if len(far) else 0.0)), float(below.mean())
        if above <= _FLOOR * float(power.mean()):  # round-off only: nothing beyond the lower band
            ratios[edge] = 0.0
        else:
            ratios[edge] = above / under if under > 0 else float("inf")
    return ratios


def band_edge_ratio(img: torch.Tensor, dim: int) -> float:
    """The smallest of :func:`band_edge_ratios` along ``dim``: the steepest cliff in the spectrum.

    Returns:
        The ratio; ``nan`` where the axis is too short for any edge to be tested.

    >>> wave = torch.cos(torch.arange(64) * torch.pi / 8).repeat(64, 1)  # (64, 64): one low frequency along dim 1
    >>> band_edge_ratio(torch.rand(64, 64), 0) > 0.5, band_edge_ratio(wave, 1) < 0.1
    (True, True)
    """
    return min(band_edge_ratios(img, dim).values(), default=float("nan"))


def band_limited_dims(img: torch.Tensor, dims: Sequence[int], ratio: float = BAND_EDGE_RATIO) -> tuple[int, ...]:
    """The axes among ``dims`` along which ``img`` is band-limited inside its own grid (:func:`band_edge_ratio`).

    Axes shorter than :data:`MIN_SAMPLES` are never reported: too few frequencies to tell.

    >>> smooth_rows = torch.cos(torch.arange(32) * torch.pi / 8) + torch.rand(32, 1)  # (32, 32): noise along dim 0
    >>> band_limited_dims(smooth_rows, (0, 1))
    (1,)
    """
    img = torch.as_tensor(img)
    dims = [d % img.ndim for d in dims]
    return tuple(d for d in dims if img.shape[d] >= MIN_SAMPLES and band_edge_ratio(img, d) < ratio)


def keep_band(sr: torch.Tensor, sizes: Sequence[int], dims: Sequence[int]) -> torch.Tensor:
    """Project ``sr`` onto the central k-space band of ``sizes`` samples along ``dims``: zero the rest.

    The truncation to ``sizes`` followed by its pseudo-inverse (:func:`~mrsr.transforms.consistency.lift`),
    so a data-consistent ``sr`` stays data-consistent.

    >>> sr = torch.rand(1, 1, 12, 10)
    >>> out = keep_band(sr, [6], [2])
    >>> bool(torch.allclose(fourier_resize(out, [6], [2]), fourier_resize(sr, [6], [2]), atol=1e-6))
    True
    """
    if not dims:
        return sr
    return lift(fourier_resize(sr, sizes, dims), [sr.shape[d] for d in dims], dims)


def scale_detail(sr: torch.Tensor, sizes: Sequence[int], dims: Sequence[int], detail: float) -> torch.Tensor:
    """Keep ``detail`` of what ``sr`` holds beyond the central band of ``sizes`` samples along ``dims``.

    ``P sr + detail (sr - P sr)`` with ``P`` = :func:`keep_band`: the band itself is untouched, so a
    data-consistent ``sr`` stays data-consistent; ``detail`` 1 returns ``sr``, 0 its in-band part.

    >>> sr = torch.rand(1, 1, 12, 10)
    >>> half = scale_detail(sr, [6, 5], [2, 3], 0.5)
    >>> bool(torch.allclose(half - keep_band(sr, [6, 5], [2, 3]), (sr - keep_band(sr, [6, 5], [2, 3])) / 2, atol=1e-6))
    True
    """
    if detail == 1:
        return sr
    in_band = keep_band(sr, sizes, dims)
    return in_band + detail * (sr - in_band)


def zero_filled_acquisition(
    img: torch.Tensor, dim: int, fraction: float, noise: float = 0.01, levels: int = 1000, seed: int = 0
) -> torch.Tensor:
    """Simulate a scanner that acquired ``fraction`` of ``img``'s k-space samples along ``dim`` and
    zero-filled back to the grid: the band-limited input :func:`band_limited_dims` detects.

    Complex Gaussian noise (``noise``, in ``img``'s units) is added to the acquired band, the image is
    zero-filled back (:func:`~mrsr.transforms.consistency.lift`), its magnitude taken and rounded to
    ``1 / levels`` (as integer pixel values are): the magnitude and the rounding leave a faint floor
    beyond the band, as on real scans.

    Args:
        img: real tensor, e.g. (1, X, Y, Z) in [0, 1].
        dim: the axis acquired at the lower resolution.
        fraction: acquired fraction of the samples, in (0, 1].
        noise, levels, seed: the noise level, rounding levels and noise seed.

    Returns:
        float32 tensor like ``img``.

    >>> x = zero_filled_acquisition(torch.rand(1, 64, 64), 1, 2 / 3)  # its band ends at 2/3 of Nyquist
    >>> band_limited_dims(x, (1, 2))
    (1,)
    """
    gen = torch.Generator().manual_seed(seed)
    n = img.shape[dim]
    kept = [truncated_size(n, 1 / fraction)]
    parts = [torch.as_tensor(img, dtype=torch.float64), torch.zeros(img.shape, dtype=torch.float64)]
    real, imag = (lift(fourier_resize(p + noise * torch.randn(p.shape, generator=gen, dtype=torch.float64),
                                      kept, [dim]), [n], [dim]) for p in parts)  # fmt: skip
    magnitude = torch.sqrt(real.square() + imag.square())
    return (torch.round(magnitude * levels) / levels).float()


class BandLimitGuard(Transform):
    """Keep an SR image inside its LR input's band along the axes where the input is band-limited.

    Args:
        axes: spatial axes (0-based, channel excluded) the LR image was upsampled along; ``None``:
            every axis where the SR and LR sizes differ.
        ratio: :data:`BAND_EDGE_RATIO`, the threshold of :func:`band_edge_ratio`.

    Shapes:
        ``img`` (C, *spatial) SR, ``lr`` (C, *spatial_lr) -> (C, *spatial), img's type and metadata.

    >>> lr = torch.cos(torch.arange(32) * torch.pi / 8) + torch.rand(1, 32, 1)  # (1, 32, 32): smooth along axis 1
    >>> sr = torch.rand(1, 64, 64)
    >>> out = BandLimitGuard()(sr, lr)  # nothing beyond the input's band along axis 1
    >>> bool(torch.allclose(out, keep_band(sr, [32], [2]))), bool(torch.allclose(out, sr))
    (True, False)
    """

    backend = [TransformBackends.TORCH, TransformBackends.NUMPY]

    def __init__(self, axes: Sequence[int] | None = None, ratio: float = BAND_EDGE_RATIO) -> None:
        self.axes = None if axes is None else tuple(int(a) for a in axes)
        self.ratio = ratio

    def __call__(self, img: torch.Tensor | np.ndarray, lr: torch.Tensor | np.ndarray) -> torch.Tensor | np.ndarray:
        sr_t = convert_to_tensor(img, track_meta=False).float()
        lr_t = convert_to_tensor(lr, track_meta=False)
        dims = band_limited_dims(lr_t, [a + 1 for a in upsampled_axes(sr_t, lr_t, self.axes)], self.ratio)
        out = keep_band(sr_t, [lr_t.shape[d] for d in dims], dims)
        return convert_to_dst_type(out, img, dtype=out.dtype)[0]


class BandLimitGuardd(WithReferenced):
    """Dictionary version of :class:`BandLimitGuard`.

    Args:
        keys: keys of the SR images (e.g. ``"pred"``).
        ref_key: key of the LR input they were made from (e.g. ``"image"``).
        axes, ratio: see :class:`BandLimitGuard`.
        allow_missing_keys: do not raise if a key is missing.
    """

    backend = BandLimitGuard.backend

    def __init__(
        self,
        keys: KeysCollection,
        ref_key: str = "image",
        axes: Sequence[int] | None = None,
        ratio: float = BAND_EDGE_RATIO,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, BandLimitGuard(axes, ratio), ref_key, allow_missing_keys)


BandLimitGuardD = BandLimitGuardDict = BandLimitGuardd
