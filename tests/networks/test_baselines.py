"""The interpolation baselines as modules."""

from __future__ import annotations

import pytest
import torch

from mrsr.networks.baselines import Bicubic, ZeroFill
from mrsr.transforms import KSpaceTruncate, kspace_consistency
from tests.transforms.test_kspace import ROUND_TRIP_CASES  # (factor, HR size): one even LR axis, one odd


@pytest.mark.parametrize("cls", [ZeroFill, Bicubic])
@pytest.mark.parametrize("scale", [2, 3, 4, 2.5])
def test_shapes_and_centre_channel(cls, scale):
    x = torch.rand(2, 3, 13, 17)
    y = cls(in_channels=3, scale=scale)(x)
    assert y.shape == (2, 1, round(13 * scale), round(17 * scale))
    only_centre = x.clone()
    only_centre[:, [0, 2]] = 0
    torch.testing.assert_close(cls(scale=scale)(only_centre), y)


@pytest.mark.parametrize("cls", [ZeroFill, Bicubic])
def test_constant_stays_constant(cls):
    y = cls(scale=3)(torch.full((1, 1, 8, 9), 0.7))
    torch.testing.assert_close(y, torch.full_like(y, 0.7), atol=1e-5, rtol=0)


def test_per_axis_scale():
    assert ZeroFill(scale=(128 / 43, 2.0))(torch.rand(1, 1, 43, 10)).shape == (1, 1, 128, 20)


def test_bad_arguments():
    with pytest.raises(ValueError, match="spatial_dims"):
        Bicubic(spatial_dims=3)
    with pytest.raises(ValueError, match="scale"):
        ZeroFill(scale=0.5)


def real_lr(t1_volume, factor, hr_size):
    """The real T1 cropped to ``hr_size`` in-plane (8 slices), degraded: (8, 1, h, w) float32 LR slices."""
    hr = t1_volume.as_tensor()[:, : hr_size[0], : hr_size[1], 27:35]
    lr = KSpaceTruncate(factor, axes=(0, 1))(hr).movedim(-1, 0)  # the magnitude, as a scanner's
    assert {lr.shape[2] % 2, lr.shape[3] % 2} == {0, 1}
    return lr


def zerofill(lr, hr_size):
    return ZeroFill(scale=(hr_size[0] / lr.shape[2], hr_size[1] / lr.shape[3]))(lr)


@pytest.mark.parametrize("factor, hr_size", ROUND_TRIP_CASES)
def test_degrading_zerofill_returns_its_input(t1_volume, factor, hr_size):
    """Issue 29: KSpaceTruncate(zerofill(lr)) == lr to float32 precision, at odd and even LR and HR sizes, as a
    data-consistent network's output does (before, the LR's Nyquist row and column came back at half)."""
    lr = real_lr(t1_volume, factor, hr_size)
    up = zerofill(lr, hr_size)
    assert up.shape[2:] == hr_size
    back = KSpaceTruncate(factor, axes=(0, 1), magnitude=False)(up[:, 0]).unsqueeze(1)  # slices as channels
    assert float((back - lr).abs().max() / lr.abs().max()) < 2e-6


@pytest.mark.parametrize("factor, hr_size", ROUND_TRIP_CASES)
def test_zerofill_is_data_consistency_applied_to_zeros(t1_volume, factor, hr_size):
    lr = real_lr(t1_volume, factor, hr_size)
    consistent = kspace_consistency(torch.zeros(lr.shape[0], 1, *hr_size), lr, (2, 3))
    up = zerofill(lr, hr_size)
    assert float((up - consistent).abs().max() / lr.abs().max()) < 2e-6


def test_zerofill_adds_the_nyquist_component_at_the_lr_samples(t1_volume):
    """The price of the right inverse: at an even LR size, the output at HR position m*s is the LR sample plus
    the LR's Nyquist component along that axis (its projection on (-1)^m), not the sample itself; along an odd
    axis it passes through the samples."""
    lr = real_lr(t1_volume, 2, (128, 126)).double()  # LR 64 (even) x 63 (odd)
    at_samples = zerofill(lr, (128, 126))[..., ::2, ::2].double()
    sign = torch.tensor([(-1.0) ** m for m in range(64)], dtype=torch.float64)[:, None]
    nyquist = sign * (sign * lr).sum(2, keepdim=True) / 64  # the component of each column along (-1)^m
    assert float(nyquist.abs().max() / lr.abs().max()) > 1e-3  # the real LR image has one
    torch.testing.assert_close(at_samples, lr + nyquist, atol=1e-5 * float(lr.abs().max()), rtol=0)
