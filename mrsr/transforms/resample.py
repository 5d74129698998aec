"""Interpolation on the sample grid of the k-space degradation.

The degradation (see ``mrsr.transforms.kspace``) places LR sample ``m`` at HR position ``m * N / n``
(``m * s`` for a factor ``s`` that divides the matrix), not at the centre of an HR block. Every
interpolation in mrsr (baselines, the global residual of the networks) therefore samples the LR
signal at LR coordinate ``j * n / N`` for output sample ``j``. ``F.interpolate(...,
align_corners=False)`` samples at ``(j + 0.5) * n / N - 0.5`` instead, half an LR pixel off.

All functions here are plain torch, TorchScript-compatible and device/dtype agnostic.
"""

from __future__ import annotations

import torch

__all__ = ["interp_matrix", "resize_axis", "upsample_aligned", "thick_interp_matrix", "thick_interp"]


def _keys_cubic(x: torch.Tensor, a: float = -0.5) -> torch.Tensor:
    """Keys' cubic convolution kernel (a = -0.5, as MATLAB's imresize and most SR baselines)."""
    x = x.abs()
    near = ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
    far = ((a * x - 5.0 * a) * x + 8.0 * a) * x - 4.0 * a
    return torch.where(x <= 1.0, near, torch.where(x < 2.0, far, torch.zeros_like(x)))


def _periodic_sinc(t: torch.Tensor, n: int, split_nyquist: bool = False) -> torch.Tensor:
    """Kernel of band-limited interpolation of ``n`` periodic samples, at offsets ``t`` in (-n, n).

    Odd n: ``sin(pi t) / (n sin(pi t / n))``. An even n has a Nyquist bin, and two kernels:

    - ``split_nyquist=False``: the bin's value at full weight on both +n/2 and -n/2, which is
      zero-filling k-space (:func:`mrsr.transforms.kspace.fourier_resize`), the pseudo-inverse of the
      k-space truncation: ``(sin(pi t) cot(pi t / n) + cos(pi t)) / n``. Truncating its output gives
      the samples back; its value at the samples themselves carries the Nyquist component twice.
    - ``split_nyquist=True``: half of it on each, which passes through the samples:
      ``sin(pi t) cot(pi t / n) / n`` (the ``sinc_reflect`` global residual of the trained networks and
      the thick-slice ``zerofill``, which keep it).
    """
    zero = t.abs() < 1e-9
    safe = torch.where(zero, torch.ones_like(t), t)
    num = torch.sin(torch.pi * safe)
    den = float(n) * torch.sin(torch.pi * safe / float(n))
    if n % 2 == 1:
        return torch.where(zero, torch.ones_like(t), num / den)
    kernel = num * torch.cos(torch.pi * safe / float(n)) / den
    if split_nyquist:
        return torch.where(zero, torch.ones_like(t), kernel)
    kernel = kernel + torch.cos(torch.pi * safe) / float(n)
    return torch.where(zero, torch.full_like(t, 1.0 + 1.0 / float(n)), kernel)


def _sinc_matrix(coord: torch.Tensor, n: int, split_nyquist: bool = False) -> torch.Tensor:
    """(len(coord), n) float64: band-limited interpolation of ``n`` periodic samples at ``coord``."""
    taps = torch.arange(n, device=coord.device, dtype=torch.float64)
    return _periodic_sinc(coord[:, None] - taps[None], n, split_nyquist)


def _reflected_sinc(n_in: int, n_out: int, device: torch.device | None) -> torch.Tensor:
    """Periodic sinc of the signal mirrored by ``min(n_in - 1, 16)`` samples at each end, cropped.

    The mirror removes the jump between the two ends that the periodic sinc would ring across: on
    a patch or a slice whose edges differ this stays local, on a whole slice it is as good as
    zero-filling k-space. An even padded length's Nyquist bin is split half and half (the kernel the
    trained networks' global residual was trained with: unchanged, so is their output).
    """
    pad = min(n_in - 1, 16)
    n_pad = n_in + 2 * pad
    coord = torch.arange(n_out, device=device, dtype=torch.float64) * (float(n_in) / float(n_out)) + float(pad)
    padded = _sinc_matrix(coord, n_pad, True)
    # fold the mirrored taps back onto the samples they copy: index -k -> k, n-1+k -> n-1-k
    src = torch.arange(n_pad, device=device) - pad
    src = torch.where(src < 0, -src, src)
    src = torch.where(src > n_in - 1, 2 * (n_in - 1) - src, src)
    weights = torch.zeros(n_out, n_in, device=device, dtype=torch.float64)
    return weights.index_add_(1, src, padded)


def interp_matrix(
    n_in: int, n_out: int, mode: str = "cubic", device: torch.device | None = None, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """Matrix ``W`` (n_out, n_in) with ``y = W @ x`` sampling ``x`` at coordinates ``j * n_in / n_out``.

    Edges are replicated (clamped taps), so a constant signal stays constant.

    Args:
        n_in: number of input samples.
        n_out: number of output samples.
        mode: ``"cubic"`` (Keys, a=-0.5), ``"linear"``, ``"nearest"`` or ``"sinc"``: the periodic sinc
            of zero-filling k-space (the ``zerofill`` baseline, the pseudo-inverse of the degradation:
            an even axis's Nyquist value goes to both ``±n/2``, so truncating the output returns the
            input; for ``n_out <= n_in`` the interpolant through the samples, the identity at equal
            sizes) or ``"sinc_reflect"``, the periodic sinc on the signal mirrored at both ends (no
            ringing across the jump between the ends; its Nyquist bin is split half and half, which
            passes through the samples, as the trained networks' global residual was trained).
        device: device of the matrix.
        dtype: dtype of the matrix.

    >>> interp_matrix(2, 4, "linear").tolist()
    [[1.0, 0.0], [0.5, 0.5], [0.0, 1.0], [0.0, 1.0]]
    """
    if n_in < 1 or n_out < 1:
        raise ValueError("interp_matrix needs positive sizes, got n_in=" + str(n_in) + ", n_out=" + str(n_out))
    coord = torch.arange(n_out, device=device, dtype=torch.float64) * (float(n_in) / float(n_out))
    if mode == "sinc":  # n_out <= n_in has one bin at ±n_in/2: the kernel through the samples
        return _sinc_matrix(coord, n_in, n_out <= n_in).to(dtype)
    if mode == "sinc_reflect":
        return _reflected_sinc(n_in, n_out, device).to(dtype)
    base = torch.floor(coord)
    frac = coord - base
    weights = torch.zeros(n_out, n_in, device=device, dtype=torch.float64)
    if mode == "nearest":
        idx = torch.clamp(torch.floor(coord + 0.5), 0, n_in - 1).long()
        weights.scatter_(1, idx[:, None], torch.ones_like(coord)[:, None])
        return weights.to(dtype)
    if mode == "linear":
        offsets = [0, 1]
    elif mode == "cubic":
        offsets = [-1, 0, 1, 2]
    else:
        raise ValueError(
            "Unknown interpolation mode " + mode + "; use 'cubic', 'linear', 'nearest', 'sinc' or 'sinc_reflect'."
        )
    for k in offsets:
        idx = torch.clamp(base + k, 0, n_in - 1).long()
        if mode == "linear":
            w = 1.0 - (frac - k).abs()
        else:
            w = _keys_cubic(frac - k)
        weights.scatter_add_(1, idx[:, None], w[:, None])
    return weights.to(dtype)


def resize_axis(x: torch.Tensor, size: int, dim: int, mode: str = "cubic") -> torch.Tensor:
    """Resample ``x`` along ``dim`` to ``size`` samples on the degradation's grid convention.

    Args:
        x: tensor of any shape, floating point.
        size: output length along ``dim``.
        dim: the axis to resample.
        mode: see :func:`interp_matrix`.

    Returns:
        ``x`` with ``x.shape[dim] == size``.
    """
    n_in = x.shape[dim]
    if n_in == size:
        return x
    w = interp_matrix(n_in, size, mode, device=x.device, dtype=x.dtype)
    moved = torch.movedim(x, dim, -1)
    return torch.movedim(torch.matmul(moved, w.t()), -1, dim)


def upsample_aligned(x: torch.Tensor, scale: int, mode: str = "cubic") -> torch.Tensor:
    """Upsample the two last axes of ``x`` (B, C, h, w) to (B, C, scale*h, scale*w).

    Output pixel ``j`` samples the input at ``j / scale``, matching the k-space degradation, so
    ``upsample_aligned(lr, s)`` overlays the HR image the LR was made from.

    Args:
        x: (B, C, h, w) tensor.
        scale: integer upsampling factor.
        mode: see :func:`interp_matrix`.

    Returns:
        (B, C, scale*h, scale*w) tensor.

    >>> upsample_aligned(torch.ones(1, 1, 3, 5), 2).shape
    torch.Size([1, 1, 6, 10])
    """
    h, w = x.shape[-2], x.shape[-1]
    wh = interp_matrix(h, h * scale, mode, device=x.device, dtype=x.dtype)
    ww = interp_matrix(w, w * scale, mode, device=x.device, dtype=x.dtype)
    return torch.matmul(torch.matmul(wh, x), ww.t())


def _bspline_matrix(coord: torch.Tensor, n: int) -> torch.Tensor:
    """(len(coord), n): the cubic B-spline basis at ``coord`` on ``n`` knots mirrored at both ends (-k -> k,
    n-1+k -> n-1-k), so that ``matrix @ coefficients`` evaluates the spline."""
    base = torch.floor(coord)
    weights = torch.zeros(coord.shape[0], n, device=coord.device, dtype=torch.float64)
    period = max(2 * n - 2, 1)
    for k in (-1, 0, 1, 2):
        t = (coord - base - k).abs()
        w = torch.where(t < 1, 2 / 3 - t**2 + t**3 / 2, torch.where(t < 2, (2 - t) ** 3 / 6, torch.zeros_like(t)))
        idx = torch.remainder(base + k, period)
        idx = torch.where(idx > n - 1, period - idx, idx).long()
        weights.scatter_add_(1, idx[:, None], w[:, None])
    return weights


def thick_interp_matrix(
    n: int, scale: int, mode: str = "cubic", device: torch.device | None = None, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """Matrix (scale*n, n) putting ``n`` thick-slice samples on the HR grid of the slice-profile geometry.

    HR sample ``j`` reads LR coordinate ``(j - (scale-1)/2) / scale`` (slice ``k`` is centred at HR
    ``scale*k + (scale-1)/2``); taps past either end read the edge sample (a constant stays constant).

    Args:
        n: number of thick slices.
        scale: integer factor.
        mode: ``"cubic"`` (Keys, a=-0.5), ``"linear"``, ``"bspline"`` (cubic B-spline interpolation: the
            samples are prefiltered to spline coefficients, mirrored at both ends as scipy's ``mode="mirror"``)
            or ``"zerofill"`` (the periodic sinc of zero-filling the axis's k-space, on the same shifted grid;
            an even ``n``'s Nyquist bin is split half and half, so the slab centres keep the LR samples).
        device: device of the matrix.
        dtype: dtype of the matrix.

    >>> thick_interp_matrix(2, 2, "linear").tolist()
    [[1.0, 0.0], [0.75, 0.25], [0.25, 0.75], [0.0, 1.0]]
    """
    coord = (torch.arange(scale * n, device=device, dtype=torch.float64) - (scale - 1) / 2) / scale
    if mode == "zerofill":
        return _sinc_matrix(coord, n, True).to(dtype)
    if mode == "bspline":
        at_samples = _bspline_matrix(torch.arange(n, device=device, dtype=torch.float64), n)
        return torch.linalg.solve(at_samples, _bspline_matrix(coord, n), left=False).to(dtype)
    base, weights = torch.floor(coord), torch.zeros(scale * n, n, device=device, dtype=torch.float64)
    offsets = {"cubic": (-1, 0, 1, 2), "linear": (0, 1)}.get(mode)
    if offsets is None:
        raise ValueError(f"Unknown interpolation mode {mode!r}; use 'cubic', 'linear', 'bspline' or 'zerofill'.")
    for k in offsets:
        idx = torch.clamp(base + k, 0, n - 1).long()
        t = coord - base - k
        w = _keys_cubic(t) if mode == "cubic" else (1.0 - t.abs()).clamp(min=0)
        weights.scatter_add_(1, idx[:, None], w[:, None])
    return weights.to(dtype)


def thick_interp(x: torch.Tensor, scale: int, dim: int = -2, mode: str = "cubic") -> torch.Tensor:
    """Interpolate ``x`` along ``dim`` from thick slices to the HR grid (:func:`thick_interp_matrix`).

    Args:
        x: floating tensor; ``x.shape[dim]`` thick slices.
        scale: integer factor.
        dim: the thick axis.
        mode: ``"cubic"``, ``"linear"``, ``"bspline"`` or ``"zerofill"``.

    Returns:
        ``x`` with ``scale`` times as many samples along ``dim``.
    """
    w = thick_interp_matrix(x.shape[dim], scale, mode, device=x.device, dtype=x.dtype)
    return torch.movedim(torch.matmul(w, torch.movedim(x, dim, -2)), -2, dim)
