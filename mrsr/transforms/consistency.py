"""k-space data consistency: give an SR output exactly the k-space band its LR input was measured with.

Under mrsr's degradation (:class:`~mrsr.transforms.KSpaceTruncate`) the LR image *is* the central
band of the HR k-space: the ``n`` kept samples of each degraded axis. A network may still get that
band wrong. :func:`kspace_consistency` replaces it with the measured one and keeps the network's
output only outside it (the part that was never measured)::

    out = sr + T⁺ (lr - T sr)

where ``T`` is the truncation (``fourier_resize`` from the SR to the LR grid) and ``T⁺`` its
pseudo-inverse. ``T T⁺ = I``, so truncating ``out`` again gives back ``lr`` exactly: the output is
consistent with the measurement, whatever the network did. ``T⁺`` is zero-filling (the ``zerofill``
baseline): on an even LR grid the truncation keeps the mean of the HR bins ``±n/2`` as the LR's
Nyquist bin (so real images stay real), and zero-filling puts that value back on both at full
weight. The ``zerofill`` baseline is therefore this consistency applied to an image of zeros.

Windowed degradations (``window="hamming"``/``"tukey"``) multiply the kept band by a taper ``w``.
The consistent output then carries ``lr / w`` in the band: the unweighted k-space that the taper
was applied to. Where ``w`` is 0 (Tukey's band edge) nothing was measured and the network's output
is kept. Near the band edge ``1 / w`` is large (12.5 for Hamming), so noise in ``lr`` is amplified
there: use a window only when the input really was acquired with that filter.

The degradation's magnitude step is not inverted: the consistency holds for the signed image, which
equals its magnitude wherever the LR image is non-negative (MR magnitude images are).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Hashable, Mapping, Sequence

import numpy as np
import torch
from monai.config import KeysCollection
from monai.transforms import MapTransform, Transform
from monai.utils import TransformBackends, convert_to_dst_type, convert_to_tensor

from .kspace import MATMUL_MAX_SIZE, WINDOWS, fourier_resize, kspace_window, matmul_dim

__all__ = [
    "kspace_consistency",
    "lift",
    "KSpaceConsistency",
    "KSpaceConsistencyd",
    "KSpaceConsistencyD",
    "KSpaceConsistencyDict",
]


def _lift_last(x: torch.Tensor, n_out: int, window: str, alpha: float) -> torch.Tensor:
    """Pseudo-inverse of the truncation to ``x.shape[-1]`` samples: back to ``n_out``, along the last axis.

    Without a window this is zero-padding (:func:`~mrsr.transforms.kspace.fourier_resize` growing an
    axis, the ``zerofill`` baseline); with one, the band is divided by the window first. An even LR
    grid's Nyquist value is doubled before the round trip through the LR grid and halved after it:
    the identity in exact arithmetic, kept in this order so that data-consistent outputs stay bit for
    bit what they were when zero-padding itself halved that bin (the bundles' published scores).
    """
    n = x.shape[-1]
    spec = torch.fft.rfft(x, dim=-1)
    weight = torch.ones(spec.shape[-1], dtype=torch.float64, device=x.device)
    split = n % 2 == 0 and n < n_out
    if split:
        weight[-1] = 2.0
    if window not in ("none", None):
        w = kspace_window(n, window, alpha, device=x.device, dtype=torch.float64)
        weight = torch.where(w > 1e-12, weight / w.clamp_min(1e-12), torch.zeros_like(w))
    spec = spec * weight.to(spec.real.dtype)
    band = torch.fft.rfft(torch.fft.irfft(spec, n=n, dim=-1), dim=-1)
    if split:
        band[..., -1] *= 0.5
    return torch.fft.irfft(band, n=n_out, dim=-1) * (n_out / n)


@functools.lru_cache(maxsize=64)
def _lift_matrix_cpu(n_in: int, n_out: int, window: str, alpha: float) -> torch.Tensor:
    """The (n_out, n_in) real matrix of :func:`_lift_last`, made by lifting the identity."""
    return _lift_last(torch.eye(n_in, dtype=torch.float64), n_out, window, alpha).t().contiguous()


def lift(x: torch.Tensor, sizes: Sequence[int], dims: Sequence[int], window: str = "none", alpha: float = 0.5):
    """Apply the pseudo-inverse of the k-space truncation: LR grid ``x`` -> ``sizes`` along ``dims``.

    Args:
        x: real tensor on the LR grid.
        sizes: the HR length of each of ``dims`` (at least the LR length).
        dims: the degraded axes.
        window: the taper the truncation used (``"none"``, ``"hamming"``, ``"tukey"``).
        alpha: Tukey taper fraction.

    Returns:
        Real tensor on the HR grid whose truncation (:func:`fourier_resize` with the same window) is ``x``.
    """
    out = x if x.dtype in (torch.float32, torch.float64) else x.float()
    for size, dim in zip(sizes, dims):
        size, dim, n = int(size), dim % out.ndim, out.shape[dim % out.ndim]
        if size < n:
            raise ValueError(f"The SR grid must not be smaller than the LR grid: axis {dim} has {size} < {n} samples.")
        if size == n and window in ("none", None):
            continue
        if max(n, size) <= MATMUL_MAX_SIZE:
            matrix = _lift_matrix_cpu(n, size, window or "none", float(alpha)).to(device=out.device, dtype=out.dtype)
            out = matmul_dim(out, matrix, dim)
        else:
            out = torch.movedim(_lift_last(torch.movedim(out, dim, -1), size, window, alpha), -1, dim)
    return out.contiguous()


def kspace_consistency(
    sr: torch.Tensor,
    lr: torch.Tensor,
    dims: Sequence[int],
    window: str = "none",
    alpha: float = 0.5,
    magnitude: bool = True,
) -> torch.Tensor:
    """Replace the measured k-space band of ``sr`` by ``lr``'s: ``sr + T⁺(lr - T sr)``.

    Args:
        sr: SR output, real, of any shape; ``dims`` are its upsampled axes.
        lr: the LR input it came from: the same shape except along ``dims``, where it is smaller
            (or equal).
        dims: the degraded axes (e.g. ``(2, 3)`` for a batch of slices (B, 1, H, W)).
        window: the taper of the degradation (``"none"`` for mrsr's default truncation).
        alpha: Tukey taper fraction.

    Returns:
        Tensor like ``sr`` (float32 or float64) whose k-space truncation to ``lr``'s grid equals ``lr``.

    >>> sr, lr = torch.rand(1, 1, 12, 10), torch.rand(1, 1, 6, 5)
    >>> out = kspace_consistency(sr, lr, (2, 3))
    >>> bool(torch.allclose(fourier_resize(out, (6, 5), (2, 3)), lr, atol=1e-5))
    True
    """
    if window not in WINDOWS:
        raise ValueError(f"Unknown k-space window {window!r}; choose one of {WINDOWS}.")
    sr = sr if sr.dtype in (torch.float32, torch.float64) else sr.float()
    dims = [d % sr.ndim for d in dims]
    others = [a for a in range(sr.ndim) if a not in dims]
    if lr.ndim != sr.ndim or any(sr.shape[a] != lr.shape[a] for a in others):
        raise ValueError(
            f"The LR shape {tuple(lr.shape)} does not match the SR shape {tuple(sr.shape)} outside the "
            f"degraded axes {dims}."
        )
    lr_sizes = [lr.shape[d] for d in dims]
    band = fourier_resize(sr, lr_sizes, dims, window or "none", alpha)
    measured = lr.to(sr)
    if magnitude:  # give the measured magnitude the sign of the SR output's own band-limited image
        measured = torch.where(band < 0, -measured.abs(), measured.abs())
    residual = measured - band
    return sr + lift(residual, [sr.shape[d] for d in dims], dims, window or "none", alpha)


def upsampled_axes(sr: torch.Tensor, lr: torch.Tensor, axes: Sequence[int] | None) -> tuple[int, ...]:
    """``axes``, or (``None``) the spatial axes (0-based, channel first) where ``sr`` and ``lr`` differ in size.

    Raises:
        ValueError: ``sr`` and ``lr`` differ in their number of axes.
    """
    if sr.ndim != lr.ndim:
        raise ValueError(f"SR {tuple(sr.shape)} and LR {tuple(lr.shape)} need the same number of axes.")
    if axes is not None:
        return tuple(axes)
    return tuple(a for a in range(sr.ndim - 1) if sr.shape[a + 1] != lr.shape[a + 1])


class KSpaceConsistency(Transform):
    """Data consistency of an SR image with its LR input, for MONAI pipelines (see the module docstring).

    Args:
        axes: spatial axes (0-based, channel excluded) the LR image was degraded along; ``None``:
            every axis where the SR and LR sizes differ.
        window: the degradation's k-space taper: ``"none"`` (mrsr's default), ``"hamming"``, ``"tukey"``.
        alpha: Tukey taper fraction.

    Shapes:
        ``img`` (C, *spatial) SR, ``lr`` (C, *spatial_lr) -> (C, *spatial), img's type and metadata
        (a MetaTensor keeps its affine and transform history).

    >>> sr, lr = torch.rand(1, 8, 8, 3), torch.rand(1, 4, 4, 3)
    >>> KSpaceConsistency()(sr, lr).shape
    torch.Size([1, 8, 8, 3])
    """

    backend = [TransformBackends.TORCH, TransformBackends.NUMPY]

    def __init__(self, axes: Sequence[int] | None = None, window: str = "none", alpha: float = 0.5) -> None:
        if window not in WINDOWS:
            raise ValueError(f"Unknown k-space window {window!r}; choose one of {WINDOWS}.")
        self.axes = None if axes is None else tuple(int(a) for a in axes)
        self.window, self.alpha = window, alpha

    def __call__(self, img: torch.Tensor | np.ndarray, lr: torch.Tensor | np.ndarray) -> torch.Tensor | np.ndarray:
        sr_t = convert_to_tensor(img, track_meta=False)
        lr_t = convert_to_tensor(lr, track_meta=False)
        axes = upsampled_axes(sr_t, lr_t, self.axes)
        out = kspace_consistency(sr_t.float(), lr_t, [a + 1 for a in axes], self.window, self.alpha)
        return convert_to_dst_type(out, img, dtype=out.dtype)[0]


class WithReferenced(MapTransform):
    """Apply an ``(img, ref)`` array transform to each key, with the image under ``ref_key`` as ``ref``.

    Args:
        keys: keys of the images to transform (e.g. ``"pred"``).
        transform: called as ``transform(d[key], d[ref_key])``.
        ref_key: key of the reference image (e.g. the LR input ``"image"``).
        allow_missing_keys: do not raise if a key is missing.
    """

    def __init__(
        self,
        keys: KeysCollection,
        transform: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        ref_key: str = "image",
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.transform, self.ref_key = transform, ref_key

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict[Hashable, torch.Tensor]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.transform(d[key], d[self.ref_key])
        return d


class KSpaceConsistencyd(WithReferenced):
    """Dictionary version of :class:`KSpaceConsistency`.

    Args:
        keys: keys of the SR images (e.g. ``"pred"``).
        ref_key: key of the LR input they were made from (e.g. ``"image"``), in the same intensity scale.
        axes, window, alpha: see :class:`KSpaceConsistency`.
        allow_missing_keys: do not raise if a key is missing.
    """

    backend = KSpaceConsistency.backend

    def __init__(
        self,
        keys: KeysCollection,
        ref_key: str = "image",
        axes: Sequence[int] | None = None,
        window: str = "none",
        alpha: float = 0.5,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, KSpaceConsistency(axes, window, alpha), ref_key, allow_missing_keys)


KSpaceConsistencyD = KSpaceConsistencyDict = KSpaceConsistencyd
