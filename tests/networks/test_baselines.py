"""The interpolation baselines as modules."""

from __future__ import annotations

import pytest
import torch

from mrsr.networks.baselines import Bicubic, ZeroFill


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
