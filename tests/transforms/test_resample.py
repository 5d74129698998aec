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


@pytest.mark.parametrize("n_in,n_out", [(8, 16), (7, 14), (9, 27), (10, 40), (6, 6)])
def test_sinc_is_the_zero_filled_kspace_interpolation(n_in, n_out):
    """The "sinc" matrix equals zero-padding k-space (the zerofill baseline, Nyquist bin split evenly)."""
    from mrsr.transforms import fourier_resize

    x = torch.rand(3, n_in, dtype=torch.float64)
    expected = fourier_resize(x, [n_out], [1])
    torch.testing.assert_close(x @ interp_matrix(n_in, n_out, "sinc", dtype=torch.float64).t(), expected)


def test_sinc_reflect_equals_sinc_of_the_mirrored_signal():
    """``sinc_reflect`` is the zero-filled interpolation of the signal mirrored by 16 samples, cropped:
    exact on a slice, and free of the ringing a periodic sinc makes across a patch's two ends."""
    from mrsr.transforms import fourier_resize

    x = torch.linspace(0, 1, 40, dtype=torch.float64)[None]  # a ramp: its ends jump by 1 periodically
    mirrored = torch.cat([x[:, 1:17].flip(1), x, x[:, -17:-1].flip(1)], dim=1)
    expected = fourier_resize(mirrored, [144], [1])[:, 32 : 32 + 80]
    got = x @ interp_matrix(40, 80, "sinc_reflect", dtype=torch.float64).t()
    torch.testing.assert_close(got, expected)
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
