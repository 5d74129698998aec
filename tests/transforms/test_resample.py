"""Interpolation on the degradation's sample grid."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mrsr.transforms import SliceProfileDegrade, interp_matrix, resize_axis, thick_interp, upsample_aligned


@pytest.mark.parametrize("mode", ["cubic", "linear", "nearest"])
@pytest.mark.parametrize("n_in, n_out", [(8, 16), (5, 15), (85, 256), (7, 7)])
def test_rows_sum_to_one_and_grid_points_are_exact(mode, n_in, n_out):
    w = interp_matrix(n_in, n_out, mode, dtype=torch.float64)
    torch.testing.assert_close(w.sum(1), torch.ones(n_out, dtype=torch.float64))
    if n_out % n_in == 0:
        s = n_out // n_in
        torch.testing.assert_close(w[::s], torch.eye(n_in, dtype=torch.float64))  # output j*s is input j


def test_cubic_reproduces_a_ramp_away_from_the_edges():
    x = torch.arange(20, dtype=torch.float64)
    y = resize_axis(x, 60, 0)
    j = torch.arange(60, dtype=torch.float64)
    torch.testing.assert_close(y[3:-6], (j / 3)[3:-6])


def test_align_corners_false_would_be_shifted():
    """Why we do not use F.interpolate: it samples half an LR pixel off the degradation's grid."""
    x = torch.arange(16, dtype=torch.float32).reshape(1, 1, 4, 4)
    ours = upsample_aligned(x, 2, "linear")
    torch.testing.assert_close(ours[..., ::2, ::2], x)
    theirs = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
    assert not torch.allclose(theirs[..., ::2, ::2], x)


def test_torchscript_autocast_and_channels_last():
    x = torch.rand(2, 3, 7, 9)
    scripted = torch.jit.script(upsample_aligned)
    torch.testing.assert_close(scripted(x, 3), upsample_aligned(x, 3))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert upsample_aligned(x, 2).dtype == torch.bfloat16
    y = upsample_aligned(x.to(memory_format=torch.channels_last), 2)
    torch.testing.assert_close(y, upsample_aligned(x, 2))


def test_bad_mode():
    with pytest.raises(ValueError, match="Unknown interpolation mode"):
        interp_matrix(4, 8, "lanczos")


def numpy_zero_fill(x: np.ndarray, n_out: int, split_nyquist: bool) -> np.ndarray:
    """Independent reference: pad the full complex spectrum of ``x`` (last axis, n samples) to ``n_out > n``.

    An even n's Nyquist bin goes to both +n/2 and -n/2, at full weight (the pseudo-inverse of the k-space
    truncation) or, with ``split_nyquist``, half on each (which passes through the samples)."""
    n = x.shape[-1]
    spec, k = np.fft.fft(x, axis=-1), np.rint(np.fft.fftfreq(n) * n)
    out, k_out = np.zeros(x.shape[:-1] + (n_out,), complex), np.rint(np.fft.fftfreq(n_out) * n_out)
    for i, freq in enumerate(k):
        if n % 2 == 0 and freq == -n / 2:
            for target in (n / 2, -n / 2):
                out[..., k_out == target] += spec[..., i : i + 1] * (0.5 if split_nyquist else 1.0)
        else:
            out[..., k_out == freq] += spec[..., i : i + 1]
    return np.fft.ifft(out, axis=-1).real * n_out / n


@pytest.mark.parametrize("n_in,n_out", [(8, 16), (7, 14), (9, 27), (10, 40), (6, 6)])
def test_sinc_is_the_zero_filled_kspace_interpolation(n_in, n_out):
    """The "sinc" matrix equals zero-padding k-space (the zerofill baseline, the truncation's pseudo-inverse)."""
    from mrsr.transforms import fourier_resize

    x = torch.rand(3, n_in, dtype=torch.float64)
    expected = fourier_resize(x, [n_out], [1])
    torch.testing.assert_close(x @ interp_matrix(n_in, n_out, "sinc", dtype=torch.float64).t(), expected)


@pytest.mark.parametrize("n_in, n_out", [(8, 16), (6, 7), (10, 25), (64, 256)])
def test_sinc_matches_an_independent_zero_fill_with_the_full_nyquist_pair(n_in, n_out):
    x = torch.rand(3, n_in, dtype=torch.float64)
    got = x @ interp_matrix(n_in, n_out, "sinc", dtype=torch.float64).t()
    np.testing.assert_allclose(got.numpy(), numpy_zero_fill(x.numpy(), n_out, split_nyquist=False), atol=1e-12)


# (factor, LR in-plane size of the real T1's degraded crop): one even (Nyquist) and one odd axis each
SINC_CASES = [(2, (128, 126)), (3, (126, 128)), (4, (128, 124)), (2.5, (126, 128)), (2.5, (125, 127))]


@pytest.mark.parametrize("factor, hr_size", SINC_CASES)
def test_sinc_upsampling_is_a_right_inverse_of_the_degradation(t1_volume, factor, hr_size):
    """``upsample_aligned``/``interp_matrix`` in "sinc" mode, then the degradation: the LR image back to
    float64 precision (issue 29), at odd and even LR sizes, integer and non-integer factors."""
    from mrsr.transforms import KSpaceTruncate, fourier_resize

    hr = t1_volume.as_tensor()[:, : hr_size[0], : hr_size[1], 27:35].double()
    lr = KSpaceTruncate(factor, axes=(0, 1))(hr).movedim(-1, 0)  # (8, 1, h, w), the magnitude
    h, w = lr.shape[-2:]
    assert {h % 2, w % 2} == {0, 1}
    if factor == int(factor):
        up = upsample_aligned(lr, int(factor), "sinc")
    else:
        up = resize_axis(resize_axis(lr, hr_size[0], 2, "sinc"), hr_size[1], 3, "sinc")
    back = fourier_resize(up, [h, w], (2, 3))
    assert float((back - lr).abs().max() / lr.abs().max()) < 1e-12


@pytest.mark.parametrize("n", [40, 41])
def test_sinc_reflect_equals_the_split_nyquist_sinc_of_the_mirrored_signal(n):
    """``sinc_reflect`` (the trained networks' global residual) is the zero-filled interpolation of the signal
    mirrored by 16 samples, cropped, with an even padded length's Nyquist bin split half and half (so it passes
    through the samples): exact on a slice, and free of the ringing a periodic sinc makes across a patch's
    two ends. It keeps that kernel; "sinc" gives the Nyquist bin full weight."""
    x = torch.linspace(0, 1, n, dtype=torch.float64)[None]  # a ramp: its ends jump by 1 periodically
    mirrored = torch.cat([x[:, 1:17].flip(1), x, x[:, -17:-1].flip(1)], dim=1)
    expected = numpy_zero_fill(mirrored.numpy(), 2 * (n + 32), split_nyquist=True)[:, 32 : 32 + 2 * n]
    w = interp_matrix(n, 2 * n, "sinc_reflect", dtype=torch.float64)
    got = x @ w.t()
    np.testing.assert_allclose(got.numpy(), expected, atol=1e-12)
    torch.testing.assert_close(w[::2], torch.eye(n, dtype=torch.float64))  # it interpolates the samples


def test_sinc_reflect_removes_the_ringing_across_the_ends():
    x = torch.linspace(0, 1, 40, dtype=torch.float64)[None]
    got = x @ interp_matrix(40, 80, "sinc_reflect", dtype=torch.float64).t()
    periodic = x @ interp_matrix(40, 80, "sinc", dtype=torch.float64).t()
    assert (got - torch.arange(80, dtype=torch.float64)[None] / 78).abs()[:, 4:-4].max() < 0.01  # samples j/2 of m/39
    assert (periodic[:, :4] - got[:, :4]).abs().max() > 0.05  # the periodic one rings at the ends


def test_thick_interp_constant_and_grid():
    """A constant stays constant; a linear ramp sampled at slab centres comes back on the HR grid."""
    assert torch.allclose(thick_interp(torch.ones(3, 5, 4), 3, dim=1), torch.ones(3, 15, 4))
    hr = torch.arange(24, dtype=torch.float64)[None, None, :, None].expand(1, 1, 24, 2)
    lr = SliceProfileDegrade(4, axis=0)(hr[0])[None]  # box means of a ramp sit on the slab centres
    up = thick_interp(lr, 4, dim=2, mode="linear")
    assert torch.allclose(up[0, 0, 2:-2], hr[0, 0, 2:-2])  # exact between the first and last centres


@pytest.mark.parametrize("n", [7, 8])
def test_thick_interp_zerofill_is_exact_for_band_limited_signals(n):
    """Samples at the slab centres of a periodic signal below the LR Nyquist come back exactly on the HR grid."""
    scale = 3
    j = torch.arange(scale * n, dtype=torch.float64)
    signal = lambda t: torch.cos(2 * torch.pi * 2 * t / (scale * n) + 0.3)  # noqa: E731
    lr = signal(scale * torch.arange(n, dtype=torch.float64) + (scale - 1) / 2)
    up = thick_interp(lr[None], scale, dim=1, mode="zerofill")[0]
    torch.testing.assert_close(up, signal(j))
    assert (thick_interp(lr[None], scale, dim=1, mode="cubic")[0] - signal(j)).abs().max() > 1e-3


def test_thick_interp_bspline_is_scipys_cubic_spline_on_the_thick_grid():
    """The B-spline mode equals scipy's prefiltered cubic spline (mirror boundary) at the slab centres' coordinates,
    interpolates (the HR samples at the slab centres are the LR samples) and keeps a constant constant."""
    ndimage = pytest.importorskip("scipy.ndimage")
    lr = torch.rand(11, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    up = thick_interp(lr[None], 3, dim=1, mode="bspline")[0]
    coord = (torch.arange(33, dtype=torch.float64) - 1) / 3
    expected = ndimage.map_coordinates(lr.numpy(), coord[None].numpy(), order=3, mode="mirror")
    np.testing.assert_allclose(up.numpy(), expected, atol=1e-10)
    torch.testing.assert_close(up[1::3], lr)
    assert torch.allclose(thick_interp(torch.ones(2, 5), 4, dim=1, mode="bspline"), torch.ones(2, 20))
