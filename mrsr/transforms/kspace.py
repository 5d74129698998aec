"""Low-resolution simulation by k-space truncation (docs/CONVENTIONS.md).

An MR scanner's low-resolution image is a smaller piece of k-space. ``fourier_resize`` keeps the
central ``n`` of ``N`` Fourier samples along each degraded axis (or zero-pads ``n`` back to ``N``),
inverse transforms on the new grid and rescales by ``n / N`` so intensities are preserved. LR
sample ``m`` then lies at HR position ``m * N / n`` (``m * s`` when ``s`` divides ``N``): the LR
affine keeps the origin and multiplies the spacing by ``N / n``.

The truncation is Hermitian-symmetric: an even-length LR grid's Nyquist bin holds the mean of the
HR bins ``+n/2`` and ``-n/2``. A real image therefore stays real on every grid and each axis is a
real-to-real ``rfft``/``irfft`` pair. Zero-filling is the truncation's pseudo-inverse: it puts that
Nyquist value on both ``±n/2`` at full weight, so truncating a zero-filled image gives it back
exactly, and zero-filling a truncated image is the original projected onto the kept band.

The transforms are MONAI invertible transforms: they keep the input's ``applied_operations`` and
push their own record, so ``Compose.inverse`` and ``Invertd`` undo the transforms before them too.
Their inverse is the pseudo-inverse of the truncation, zero-filling back to the input grid (see
:meth:`KSpaceTruncate.inverse`).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Hashable, Mapping, Sequence

import numpy as np
import torch
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import InvertibleTransform, MapTransform, RandomizableTransform
from monai.utils import TraceKeys, TransformBackends, convert_to_dst_type, convert_to_numpy, convert_to_tensor

from mrsr.errors import MrsrError

__all__ = [
    "fourier_resize",
    "kspace_window",
    "truncated_size",
    "KSpaceTruncate",
    "KSpaceTruncated",
    "KSpaceTruncateD",
    "KSpaceTruncateDict",
    "RandKSpaceTruncate",
    "RandKSpaceTruncated",
    "RandKSpaceTruncateD",
    "RandKSpaceTruncateDict",
]

WINDOWS = ("none", "hamming", "tukey")
GRIDS = ("reduced", "same")


def truncated_size(size: int, factor: float) -> int:
    """Number of k-space samples kept when an axis of ``size`` samples is degraded by ``factor``.

    ``round(size / factor)`` (halves round up), at least 1.

    >>> truncated_size(256, 3), truncated_size(62, 4), truncated_size(128, 2)
    (85, 16, 64)
    """
    if factor <= 0 or not math.isfinite(factor):
        raise MrsrError(f"Degradation factors must be positive and finite, got {factor}.")
    return max(1, int(math.floor(size / factor + 0.5)))


def kspace_window(n: int, kind: str = "none", alpha: float = 0.5, device=None, dtype=torch.float32) -> torch.Tensor:
    """Weights of the ``n // 2 + 1`` non-negative frequencies kept on an ``n``-sample grid.

    Args:
        n: kept width of k-space.
        kind: ``"none"`` (box), ``"hamming"`` or ``"tukey"``.
        alpha: Tukey taper fraction (0 = box, 1 = Hann).
        device: device of the weights.
        dtype: dtype of the weights.
    """
    k = torch.arange(n // 2 + 1, device=device, dtype=torch.float64)
    r = k / (n / 2.0)  # 0 at DC, 1 at the edge of the kept band
    if kind in ("none", None):
        w = torch.ones_like(r)
    elif kind == "hamming":
        w = 0.54 + 0.46 * torch.cos(math.pi * r)
    elif kind == "tukey":
        if not 0.0 <= alpha <= 1.0:
            raise MrsrError(f"Tukey alpha must lie in [0, 1], got {alpha}.")
        flat = 1.0 - alpha
        taper = 0.5 * (1.0 + torch.cos(math.pi * (r - flat) / max(alpha, 1e-12)))
        w = torch.where(r <= flat, torch.ones_like(r), taper)
    else:
        raise MrsrError(f"Unknown k-space window {kind!r}; choose one of {WINDOWS}.")
    return w.to(dtype)


def _resize_last(x: torch.Tensor, n_out: int, window: torch.Tensor | None) -> torch.Tensor:
    """Fourier-resize the last axis of a real tensor from N to ``n_out`` samples.

    Shrinking to an even ``n_out`` keeps the real part of bin ``+n_out/2``, the mean of the pair
    ``±n_out/2`` (what ``n_out`` real samples can hold). Growing zero-pads and is the pseudo-inverse
    of shrinking: an even input's Nyquist value goes to both ``+N/2`` and ``-N/2`` at full weight
    (``irfft`` adds the conjugate of a bin below the new Nyquist), so shrinking the result gives the
    input back exactly.
    """
    n_in = x.shape[-1]
    spec = torch.fft.rfft(x, dim=-1)
    keep = min(n_in, n_out) // 2 + 1
    spec = spec[..., :keep]
    if window is not None:
        spec = spec * window[:keep].to(spec.real.dtype)
    return torch.fft.irfft(spec, n=n_out, dim=-1) * (n_out / n_in)


# Up to this many samples an axis is resized by one real matrix product (BLAS, batched over the
# other axes, no copies) instead of FFTs: the truncation is a real linear map, and for clinical
# matrix sizes the product is several times faster than the FFT pair on the CPU and on a GPU.
MATMUL_MAX_SIZE = 512


@functools.lru_cache(maxsize=64)
def _resize_matrix_cpu(n_in: int, n_out: int, window: str, alpha: float) -> torch.Tensor:
    """The (n_out, n_in) real matrix of :func:`_resize_last`, made by resizing the identity."""
    win = None if window in ("none", None) else kspace_window(min(n_in, n_out), window, alpha, dtype=torch.float64)
    return _resize_last(torch.eye(n_in, dtype=torch.float64), n_out, win).t().contiguous()


def _resize_matrix(n_in: int, n_out: int, window: str, alpha: float, like: torch.Tensor) -> torch.Tensor:
    return _resize_matrix_cpu(n_in, n_out, window, float(alpha)).to(device=like.device, dtype=like.dtype)


def matmul_dim(x: torch.Tensor, matrix: torch.Tensor, dim: int) -> torch.Tensor:
    """Apply the (m, n) ``matrix`` along axis ``dim`` (of length n) of ``x``, batched over the other axes."""
    n_in, size = x.shape[dim], matrix.shape[0]
    before = int(np.prod(x.shape[:dim]))
    after = int(np.prod(x.shape[dim + 1 :]))
    out = torch.matmul(matrix, x.contiguous().reshape(before, n_in, after))
    return out.reshape(*x.shape[:dim], size, *x.shape[dim + 1 :])


def _resize_dim(x: torch.Tensor, size: int, dim: int, window: str, alpha: float) -> torch.Tensor:
    n_in = x.shape[dim]
    if max(n_in, size) <= MATMUL_MAX_SIZE:
        return matmul_dim(x, _resize_matrix(n_in, size, window, alpha, x), dim)
    win = None
    if window not in ("none", None):
        win = kspace_window(min(size, n_in), window, alpha, device=x.device, dtype=x.dtype)
    return torch.movedim(_resize_last(torch.movedim(x, dim, -1), size, win), -1, dim)


def fourier_resize(
    x: torch.Tensor,
    sizes: Sequence[int],
    dims: Sequence[int],
    window: str = "none",
    alpha: float = 0.5,
) -> torch.Tensor:
    """Resize a real tensor along ``dims`` by cropping (or zero-padding) centred k-space.

    Cropping is the k-space degradation, zero-padding is sinc interpolation (the ``zerofill``
    baseline) and the exact right inverse of cropping: an axis of ``n`` samples zero-padded to any
    ``N >= n`` and cropped back is unchanged. Both put output sample ``j`` at input coordinate
    ``j * N / n``. Axes of up to ``MATMUL_MAX_SIZE`` samples use the equivalent real matrix, longer
    ones the FFT.

    Args:
        x: real tensor of any shape (float32 or float64; other dtypes are computed in float32).
        sizes: output length for each of ``dims``.
        dims: the axes to resize.
        window: taper applied to the kept band when cropping: ``"none"``, ``"hamming"`` or ``"tukey"``.
        alpha: Tukey taper fraction.

    Returns:
        Real tensor of x's dtype (floating) with ``out.shape[d] == size`` for each pair.

    >>> y = fourier_resize(torch.ones(4, 6), [2, 3], [0, 1])
    >>> y.shape, round(float(y.mean()), 6)
    (torch.Size([2, 3]), 1.0)
    """
    if len(sizes) != len(dims):
        raise MrsrError(f"fourier_resize needs one size per dim, got sizes={list(sizes)} dims={list(dims)}.")
    out = x if x.dtype in (torch.float32, torch.float64) else x.float()
    # shrink first: the axes that get smaller are done before those that grow
    for size, dim in sorted(zip(sizes, dims), key=lambda p: int(p[0]) / out.shape[p[1] % out.ndim]):
        size, dim = int(size), dim % out.ndim
        if size < 1:
            raise MrsrError(f"Output sizes must be at least 1, got {size}.")
        if size == out.shape[dim] and window in ("none", None):
            continue
        out = _resize_dim(out, size, dim, window, alpha)
    return out.contiguous()


def _spatial_factors(factor: float | Sequence[float], axes: Sequence[int]) -> list[float]:
    factors = [float(factor)] * len(axes) if np.isscalar(factor) else [float(f) for f in factor]  # type: ignore[union-attr]
    if len(factors) != len(axes):
        raise MrsrError(f"Give one factor or one per axis: {len(factors)} factors for axes {list(axes)}.")
    for f in factors:
        if not math.isfinite(f) or f < 1.0:
            raise MrsrError(f"Degradation factors must be >= 1 (got {f}): a factor below 1 would upsample.")
    return factors


def _grid_factors(grid: float | Sequence[float], factors: Sequence[float], axes: Sequence[int]) -> list[float]:
    """The output-grid factors of :class:`KSpaceTruncate`, checked against its degradation factors."""
    grids = _spatial_factors(grid, axes)
    if any(g > f for g, f in zip(grids, factors)):
        raise MrsrError(
            f"grid factors {grids} must not exceed the degradation factors {list(factors)}: "
            "the output matrix cannot be smaller than the kept band."
        )
    return grids


def _foreground_mean(x: torch.Tensor) -> torch.Tensor:
    """Mean of the voxels above the image mean: the signal level that ``snr`` refers to."""
    mag = x.abs()
    fg = mag[mag > mag.mean()]
    return fg.mean() if fg.numel() else mag.mean()


class KSpaceTruncate(InvertibleTransform):
    """Simulate a low-resolution MR acquisition by keeping the centre of k-space.

    The image is channel-first (C, *spatial). Along each of ``axes`` the central
    ``round(N / factor)`` k-space samples are kept (see :func:`fourier_resize`); with
    ``grid="reduced"`` the result is the true LR matrix and a MetaTensor's affine gets its columns
    for those axes multiplied by ``N / n`` (origin kept: LR sample ``m`` lies at HR sample
    ``m * N / n``); with ``grid="same"`` the LR data is zero-filled back to the input matrix and
    the affine is unchanged; with a grid factor ``g`` it is zero-filled to the matrix of factor
    ``g``, ``round(N / g)`` samples (affine columns times ``N / round(N / g)``): a scan a little
    blurrier than its matrix, as training's factor jitter makes. Optional Rician noise is added as
    complex Gaussian noise on the acquisition (LR) grid before the magnitude is taken; the noise is
    zero-filled with the signal on the same grid, as a scanner's would be. MONAI's
    ``RandRicianNoise`` acts on the output grid after the fact, which is why it is not used here.

    A MetaTensor output keeps the input's meta and ``applied_operations`` and gets a record of its
    own (the input's spatial size, affine and ``spatial_shape``, and the degraded axes), so
    :meth:`inverse` can put an image back on the input grid and ``Compose.inverse`` / ``Invertd``
    then undo the transforms before this one.

    Args:
        factor: one degradation factor (>= 1, need not divide the matrix) or one per axis.
        axes: spatial axes to degrade (0-based, channel excluded). ``(0, 1)``: in-plane for a
            volume stored slice-last; ``(2,)``: thick slices; ``(0, 1, 2)``: 3D.
        grid: ``"reduced"`` (true LR matrix), ``"same"`` (zero-filled to the input matrix), or the
            factor ``g`` of the output matrix, one or one per axis, ``1 <= g <= factor``
            (``"reduced"`` is ``g = factor``).
        window: ``"none"``, ``"hamming"`` or ``"tukey"`` taper of the kept band (less ringing, more blur).
        alpha: Tukey taper fraction.
        snr: Rician noise level as mean foreground signal / noise sigma (foreground: voxels above the
            image mean); ``None`` for no noise.
        magnitude: return the magnitude (MR images are magnitudes); ``False`` keeps the signed real
            image, which is what makes the degradation exactly invertible on its band.
        seed: seed of the transform's own noise generator (``None``: a random seed).
        rng: draw the noise from this NumPy generator instead of the transform's own; each noisy
            call takes one ``rng.standard_normal((2, C, *band))`` draw (real, imaginary parts), so
            a caller that owns the generator (a training dataset, one generator per sample) decides
            the noise. Exclusive with ``seed``.

    Raises:
        MrsrError: a bad factor, grid, window, snr or axis, or both ``seed`` and ``rng``.

    >>> img = torch.rand(1, 32, 32, 8)
    >>> KSpaceTruncate(factor=2, axes=(0, 1))(img).shape
    torch.Size([1, 16, 16, 8])
    >>> KSpaceTruncate(factor=2.5, axes=(0, 1), grid=2)(img).shape  # a 2.5x band on the 2x matrix
    torch.Size([1, 16, 16, 8])
    """

    backend = [TransformBackends.TORCH, TransformBackends.NUMPY]

    def __init__(
        self,
        factor: float | Sequence[float] = 2.0,
        axes: Sequence[int] = (0, 1),
        grid: str | float | Sequence[float] = "reduced",
        window: str = "none",
        alpha: float = 0.5,
        snr: float | None = None,
        magnitude: bool = True,
        seed: int | None = None,
        rng: np.random.Generator | None = None,
    ) -> None:
        if isinstance(grid, str) and grid not in GRIDS:
            raise MrsrError(f"grid must be 'reduced', 'same' or the factor of the output matrix, got {grid!r}.")
        if window not in WINDOWS:
            raise MrsrError(f"Unknown k-space window {window!r}; choose one of {WINDOWS}.")
        if snr is not None and not snr > 0:
            raise MrsrError(f"snr must be positive, got {snr}.")
        self.axes = tuple(int(a) for a in axes)
        if len(set(self.axes)) != len(self.axes) or any(a < 0 for a in self.axes):
            raise MrsrError(f"axes must be distinct non-negative spatial axes, got {list(axes)}.")
        self.factors = _spatial_factors(factor, self.axes)
        self.grid = grid if isinstance(grid, str) else _grid_factors(grid, self.factors, self.axes)
        self.window, self.alpha, self.snr, self.magnitude = window, alpha, snr, magnitude
        if rng is not None and seed is not None:
            raise MrsrError("Give the noise a seed or a generator (rng), not both.")
        self.rng = rng
        self.generator = torch.Generator()
        if rng is None:
            self.set_seed(seed)

    def set_seed(self, seed: int | None) -> KSpaceTruncate:
        """Re-seed the transform's own noise generator (``None``: a fresh random seed).

        The generator is unused while ``rng`` is set. The global torch RNG is left alone, so making
        a transform never changes other random draws.
        """
        if seed is None:
            self.generator.seed()
        else:
            self.generator.manual_seed(int(seed) % (2**63))
        return self

    def lr_shape(self, spatial_shape: Sequence[int]) -> list[int]:
        """The spatial shape of the kept band (the output on ``grid="reduced"``) for an input of ``spatial_shape``."""
        shape = list(spatial_shape)
        for a, f in zip(self.axes, self.factors):
            if a >= len(shape):
                raise MrsrError(f"Axis {a} does not exist in an image with {len(shape)} spatial axes.")
            n = truncated_size(shape[a], f)
            if n < 2 and shape[a] < 2:  # no factor leaves 2 samples: "at most 0.5" would be no advice
                raise MrsrError(f"Axis {a} has {shape[a]} sample: too small to degrade (it must keep at least 2).")
            if n < 2:
                raise MrsrError(
                    f"Axis {a} has {shape[a]} samples: a factor of {f:g} would leave {n}; "
                    f"use a factor of at most {shape[a] / 2:g}."
                )
            shape[a] = n
        return shape

    def _zero_fill_sizes(self, spatial: Sequence[int]) -> list[int]:
        """Lengths the band of the degraded axes is zero-filled to: the input's, or the grid factors'."""
        if self.grid == "same":
            return [spatial[a] for a in self.axes]
        return [truncated_size(spatial[a], g) for a, g in zip(self.axes, self.grid)]

    def _unit_noise(self, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Standard complex Gaussian noise shaped like ``like``: (real, imaginary)."""
        if self.rng is not None:
            noise = torch.from_numpy(self.rng.standard_normal((2, *like.shape))).to(like.device, like.dtype)
            return noise[0], noise[1]
        # imaginary part first: another order would change the noise that every seed gives
        imag = torch.randn(like.shape, generator=self.generator, dtype=like.dtype).to(like.device)
        real = torch.randn(like.shape, generator=self.generator, dtype=like.dtype).to(like.device)
        return real, imag

    def __call__(self, img: torch.Tensor | np.ndarray) -> torch.Tensor | np.ndarray:
        """Degrade ``img`` (C, *spatial); returns the same type (MetaTensor with the new affine).

        Args:
            img: (C, *spatial) image; a MetaTensor's affine is updated and its history kept.

        Returns:
            (C, *lr_spatial) with ``grid="reduced"`` (see :meth:`lr_shape`), (C, *spatial) with
            ``"same"``, ``round(N / g)`` samples along the degraded axes with a grid factor ``g``; a
            MetaTensor gets a ``KSpaceTruncate`` record pushed onto its ``applied_operations``.
        """
        out = self._degrade(img)
        if isinstance(out, MetaTensor):
            out = self.push_transform(out, orig_size=tuple(img.shape[1:]), extra_info=_record(img, self.axes))
        return out

    def _degrade(self, img: torch.Tensor | np.ndarray) -> torch.Tensor | np.ndarray:
        """The degradation of :meth:`__call__`, without the record."""
        x = convert_to_tensor(img, track_meta=False)
        if not torch.is_floating_point(x) or x.dtype in (torch.float16, torch.bfloat16):
            x = x.float()
        spatial = list(x.shape[1:])
        band = self.lr_shape(spatial)
        dims = [a + 1 for a in self.axes]
        lr = fourier_resize(x, [band[a] for a in self.axes], dims, self.window, self.alpha)
        imag = None
        if self.snr is not None:
            sigma = _foreground_mean(lr) / self.snr
            real, imag = self._unit_noise(lr)
            lr, imag = lr + real * sigma, imag * sigma
        if self.grid != "reduced":  # zero-fill the band, and the noise acquired with it, to the output grid
            sizes = self._zero_fill_sizes(spatial)
            lr = fourier_resize(lr, sizes, dims)
            if imag is not None:
                imag = fourier_resize(imag, sizes, dims)
        if imag is not None:
            lr = torch.sqrt(lr * lr + imag * imag)
        elif self.magnitude:
            lr = lr.abs()
        return self._with_meta(lr, img, spatial)

    def _with_meta(self, out: torch.Tensor, img, spatial: list[int]):
        if isinstance(img, MetaTensor):
            meta = dict(img.meta)
            affine = img.affine.clone().to(torch.float64)
            if self.grid != "same":
                for a in self.axes:
                    affine[:-1, a] *= spatial[a] / out.shape[a + 1]
            meta["affine"] = affine
            meta["spatial_shape"] = np.asarray(out.shape[1:])
            return MetaTensor(out, meta=meta, applied_operations=list(img.applied_operations))
        return convert_to_dst_type(out, img, dtype=out.dtype)[0]

    def inverse(self, data: torch.Tensor) -> torch.Tensor:
        """Pseudo-inverse: zero-fill ``data`` back to the grid this transform's input was on.

        The most recent ``KSpaceTruncate`` record of ``data`` (a MetaTensor) is popped; the degraded
        axes are Fourier-resized (:func:`fourier_resize`, no window) to the input's sizes, and the
        input's affine and ``spatial_shape`` meta are restored. This is the pseudo-inverse of the
        truncation: truncating its output again gives ``data`` back, and for ``magnitude=False``, no
        window and no noise, ``inverse(t(x))`` is ``x`` projected onto the kept band (what
        ``grid="same"`` gives). The window, the noise and the magnitude are not undone. An image
        already on the input grid (an SR output given the LR input's history, e.g. by ``Invertd``)
        keeps its values and only gets the input's geometry back; ``grid="same"`` outputs likewise.

        Args:
            data: (C, *spatial) MetaTensor carrying this transform's record.

        Returns:
            (C, *input_spatial) MetaTensor, float.
        """
        return _zero_fill_inverse(data, self.pop_transform(data))


def _record(img: torch.Tensor, axes: Sequence[int]) -> dict:
    """What :func:`_zero_fill_inverse` needs of a degraded image's input (a MetaTensor)."""
    info = {"axes": [int(a) for a in axes], "original_affine": convert_to_numpy(img.affine, dtype=np.float64)}
    if "spatial_shape" in img.meta:
        info["original_spatial_shape"] = convert_to_numpy(img.meta["spatial_shape"])
    return info


def _zero_fill_inverse(data: torch.Tensor, record: Mapping) -> torch.Tensor:
    """Fourier-resize ``data`` back to the input grid of a k-space truncation ``record`` (already popped)."""
    info = record[TraceKeys.EXTRA_INFO]
    orig_size = [int(n) for n in record[TraceKeys.ORIG_SIZE]]
    axes = info["axes"]
    x = convert_to_tensor(data, track_meta=False)
    out = fourier_resize(x, [orig_size[a] for a in axes], [a + 1 for a in axes])
    if not isinstance(data, MetaTensor):
        return out
    meta = dict(data.meta)
    meta["affine"] = torch.as_tensor(info["original_affine"], dtype=torch.float64)
    if "original_spatial_shape" in info:
        meta["spatial_shape"] = np.asarray(info["original_spatial_shape"])
    else:
        meta.pop("spatial_shape", None)
    return MetaTensor(out, meta=meta, applied_operations=list(data.applied_operations))


def _output_keys(keys: tuple[Hashable, ...], output_keys: KeysCollection | None) -> tuple[Hashable, ...]:
    if output_keys is None:
        return keys
    out = (output_keys,) if isinstance(output_keys, (str, int)) else tuple(output_keys)
    if len(out) != len(keys):
        raise MrsrError(f"output_keys must match keys one to one, got {list(out)} for {list(keys)}.")
    return out


def _invert_output_keys(
    transform: MapTransform, array_transform: InvertibleTransform, data: Mapping[Hashable, torch.Tensor]
) -> dict[Hashable, torch.Tensor]:
    """Invert the images under ``transform.output_keys`` (where the records are) with ``array_transform``."""
    d = dict(data)
    for out_key in transform.output_keys:  # type: ignore[attr-defined]
        if out_key in d:
            d[out_key] = array_transform.inverse(d[out_key])
        elif not transform.allow_missing_keys:
            raise KeyError(f"Key {out_key!r} of {type(transform).__name__} is missing and allow_missing_keys is False.")
    return d


class _PerKeyd(MapTransform, InvertibleTransform):
    """A dictionary transform that applies one invertible array transform (``array_class(**kwargs)``) to
    each key, storing the result under the matching output key; :meth:`inverse` inverts the output keys."""

    array_class: type[InvertibleTransform]

    def __init__(
        self,
        keys: KeysCollection,
        output_keys: KeysCollection | None = None,
        allow_missing_keys: bool = False,
        **kwargs,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.output_keys = _output_keys(self.keys, output_keys)
        self.transform = self.array_class(**kwargs)

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict[Hashable, torch.Tensor]:
        d = dict(data)
        for key, out_key in self.key_iterator(d, self.output_keys):
            d[out_key] = self.transform(d[key])
        return d

    def inverse(self, data: Mapping[Hashable, torch.Tensor]) -> dict[Hashable, torch.Tensor]:
        return _invert_output_keys(self, self.transform, data)


class KSpaceTruncated(_PerKeyd):
    """Dictionary version of :class:`KSpaceTruncate`; invertible (zero-filling, :meth:`KSpaceTruncate.inverse`).

    The record of the degradation is on the output key: :meth:`inverse` zero-fills the images under
    ``output_keys``. With ``output_keys`` the HR key keeps its own history, so to map an output that
    is already on the HR grid (an SR prediction) back through the transforms before this one, give
    ``Invertd`` the HR key as ``orig_keys``.

    Args:
        keys: keys of the images to degrade.
        output_keys: where to store each degraded image (e.g. ``"lr"`` to keep the HR ``"image"``);
            ``None`` degrades in place.
        allow_missing_keys: do not raise if a key is missing.
        kwargs: the arguments of :class:`KSpaceTruncate`.

    >>> d = KSpaceTruncated("image", output_keys="lr", factor=2)({"image": torch.rand(1, 8, 8, 4)})
    >>> d["image"].shape, d["lr"].shape
    (torch.Size([1, 8, 8, 4]), torch.Size([1, 4, 4, 4]))
    """

    backend = KSpaceTruncate.backend
    array_class = KSpaceTruncate


class RandKSpaceTruncate(RandomizableTransform, InvertibleTransform):
    """Randomised k-space truncation for training: factor jitter, random window, random noise level.

    Each call draws a factor uniformly from ``factor_range`` (the same for every axis), a window
    from ``windows`` and, if ``snr_range`` is given, an SNR uniformly from it; with probability
    ``1 - prob`` the image is returned unchanged.

    Every sample must have one output shape, or a DataLoader cannot stack a batch. With
    ``grid="reduced"`` the LR shape depends on the factor, and an image left unchanged keeps the
    input shape, so ``grid="reduced"`` needs a fixed factor (``low == high``) and ``prob=1``: other
    combinations raise a ``ValueError`` at construction. Jitter the factor, or degrade only some
    samples, with ``grid="same"`` (every output on the input grid, band-limited by its own factor).

    Each call pushes a record onto a MetaTensor's ``applied_operations``, whether it degraded the
    image or not, so ``Compose.inverse`` stays consistent; :meth:`inverse` zero-fills as
    :meth:`KSpaceTruncate.inverse` does, or does nothing for a call that did not degrade.

    Args:
        factor_range: (low, high) of the degradation factor, both >= 1; low == high with ``grid="reduced"``.
        axes: spatial axes to degrade.
        grid: ``"reduced"`` (true LR matrix) or ``"same"`` (zero-filled to the input matrix).
        windows: windows to choose from.
        snr_range: (low, high) of the SNR, or ``None`` for no noise.
        prob: probability of degrading; 1 with ``grid="reduced"``.
        magnitude: see :class:`KSpaceTruncate`.

    Raises:
        MrsrError: bad ranges, windows or grid, or a combination giving samples different shapes.

    >>> t = RandKSpaceTruncate((2.0, 2.0), windows=("hamming",), snr_range=(20, 40)).set_random_state(0)
    >>> t(torch.rand(1, 16, 16, 4)).shape
    torch.Size([1, 8, 8, 4])
    """

    backend = KSpaceTruncate.backend

    def __init__(
        self,
        factor_range: tuple[float, float] = (2.0, 2.0),
        axes: Sequence[int] = (0, 1),
        grid: str = "reduced",
        windows: Sequence[str] = ("none",),
        snr_range: tuple[float, float] | None = None,
        prob: float = 1.0,
        magnitude: bool = True,
    ) -> None:
        RandomizableTransform.__init__(self, prob)
        if not 1.0 <= factor_range[0] <= factor_range[1]:
            raise MrsrError(f"factor_range must be (low, high) with 1 <= low <= high, got {factor_range}.")
        if snr_range is not None and not 0 < snr_range[0] <= snr_range[1]:
            raise MrsrError(f"snr_range must be (low, high) with 0 < low <= high, got {snr_range}.")
        for w in windows:
            if w not in WINDOWS:
                raise MrsrError(f"Unknown k-space window {w!r}; choose from {WINDOWS}.")
        if grid not in GRIDS:
            raise MrsrError(f"grid must be 'reduced' or 'same', got {grid!r}.")
        if grid == "reduced" and factor_range[0] != factor_range[1]:
            raise MrsrError(
                f"factor_range={tuple(factor_range)} with grid='reduced' gives each sample its own LR shape, "
                "which a batch cannot stack: use grid='same' or a fixed factor (low == high)."
            )
        if grid == "reduced" and prob < 1:
            raise MrsrError(
                f"prob={prob:g} with grid='reduced' leaves the samples it skips at the input shape, which a batch "
                "cannot stack with the LR ones: use prob=1 or grid='same'."
            )
        self.factor_range, self.axes, self.grid = factor_range, tuple(axes), grid
        self.windows, self.snr_range, self.magnitude = tuple(windows), snr_range, magnitude
        self.params: dict = {}

    def randomize(self, data=None) -> None:
        super().randomize(None)
        snr = None if self.snr_range is None else float(self.R.uniform(*self.snr_range))
        self.params = {
            "factor": float(self.R.uniform(*self.factor_range)),
            "window": self.windows[self.R.randint(len(self.windows))],
            "snr": snr,
            "seed": int(self.R.randint(2**31 - 1)),
        }

    def __call__(self, img: torch.Tensor | np.ndarray, randomize: bool = True) -> torch.Tensor | np.ndarray:
        """Degrade ``img`` (C, *spatial) with a fresh draw (or the last one if ``randomize`` is False).

        Returns:
            As :meth:`KSpaceTruncate.__call__`; ``img`` itself, or for a MetaTensor a view of it with
            the record added, when the draw does not degrade.
        """
        if randomize:
            self.randomize()
        if self._do_transform:
            out = KSpaceTruncate(axes=self.axes, grid=self.grid, magnitude=self.magnitude, **self.params)._degrade(img)
        elif isinstance(img, MetaTensor):  # unchanged, but with its own history: the input's is left alone
            out = MetaTensor(img.as_tensor(), meta=dict(img.meta), applied_operations=list(img.applied_operations))
        else:
            return img
        if isinstance(out, MetaTensor):
            out = self.push_transform(out, orig_size=tuple(img.shape[1:]), extra_info=_record(img, self.axes))
        return out

    def inverse(self, data: torch.Tensor) -> torch.Tensor:
        """Zero-fill ``data`` back to the input grid (:meth:`KSpaceTruncate.inverse`) if this call degraded it.

        Args:
            data: (C, *spatial) MetaTensor carrying this transform's record.

        Returns:
            (C, *input_spatial) MetaTensor.
        """
        record = self.pop_transform(data)
        if not record[TraceKeys.DO_TRANSFORM]:
            return data
        return _zero_fill_inverse(data, record)


class RandKSpaceTruncated(RandomizableTransform, MapTransform, InvertibleTransform):
    """Dictionary version of :class:`RandKSpaceTruncate`; every key gets the same draw.

    ``prob < 1`` is refused together with ``output_keys``: a skipped draw would store an untouched
    copy of the HR image as its "LR" image, which is no training pair (and, with ``grid="reduced"``,
    cannot be stacked with the LR images of a batch). The combinations :class:`RandKSpaceTruncate`
    refuses are refused too. :meth:`inverse` zero-fills the images under ``output_keys``.

    Args:
        keys: keys of the images to degrade.
        output_keys: where to store each degraded image; ``None`` degrades in place.
        allow_missing_keys: do not raise if a key is missing.
        kwargs: the arguments of :class:`RandKSpaceTruncate`.

    Raises:
        MrsrError: ``prob < 1`` with ``output_keys``, or any argument :class:`RandKSpaceTruncate` refuses.

    >>> t = RandKSpaceTruncated("image", output_keys="lr", windows=("none", "hamming")).set_random_state(0)
    >>> d = t({"image": torch.rand(1, 16, 16, 4)})
    >>> d["image"].shape, d["lr"].shape
    (torch.Size([1, 16, 16, 4]), torch.Size([1, 8, 8, 4]))
    """

    backend = KSpaceTruncate.backend

    def __init__(
        self,
        keys: KeysCollection,
        output_keys: KeysCollection | None = None,
        allow_missing_keys: bool = False,
        **kwargs,
    ) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        prob = kwargs.get("prob", 1.0)
        RandomizableTransform.__init__(self, prob)
        self.output_keys = _output_keys(self.keys, output_keys)
        if prob < 1 and self.output_keys != self.keys:
            raise MrsrError(
                f"prob={prob:g} with output_keys={list(self.output_keys)} would store untouched HR images as LR "
                "images of the skipped samples: use prob=1, or degrade in place (no output_keys) with grid='same'."
            )
        self.truncate = RandKSpaceTruncate(**kwargs)

    def set_random_state(self, seed: int | None = None, state: np.random.RandomState | None = None):
        super().set_random_state(seed, state)
        self.truncate.set_random_state(seed, state)
        return self

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict[Hashable, torch.Tensor]:
        d = dict(data)
        self.truncate.randomize()
        for key, out_key in self.key_iterator(d, self.output_keys):
            d[out_key] = self.truncate(d[key], randomize=False)
        return d

    def inverse(self, data: Mapping[Hashable, torch.Tensor]) -> dict[Hashable, torch.Tensor]:
        return _invert_output_keys(self, self.truncate, data)


KSpaceTruncateD = KSpaceTruncateDict = KSpaceTruncated
RandKSpaceTruncateD = RandKSpaceTruncateDict = RandKSpaceTruncated
