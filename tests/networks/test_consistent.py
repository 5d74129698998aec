"""DataConsistent: any SR network's output gets its input's k-space band, exactly, and inference hints pass through."""

from __future__ import annotations

import pytest
import torch

from mrsr.bundle import load_bundle_network
from mrsr.inference import DATA_CONSISTENCY_KEY, super_resolve
from mrsr.networks import DataConsistent, get_network
from mrsr.transforms import KSpaceTruncate, RobustNormalize, fourier_resize


@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize("size", [(20, 20), (21, 17)])
def test_wrapped_network_is_exact(scale, size):
    net = DataConsistent(get_network("msrn", preset="small", scale=scale, in_channels=3)).eval()
    x = torch.rand(2, 3, *size)
    with torch.no_grad():
        y = net(x)
    assert y.shape == (2, 1, scale * size[0], scale * size[1])
    back = fourier_resize(y, size, (2, 3)).abs()
    assert float((back - x[:, 1:2]).abs().max() / x[:, 1:2].abs().max()) < 1e-5


def test_hints_of_the_wrapped_network_are_kept():
    inner = get_network("casnet", preset="small", scale=2)
    net = DataConsistent(inner)
    assert net.input_multiple == inner.input_multiple and net.batch_pixels == inner.batch_pixels


def test_super_resolve_with_consistency_on_real_slices(t1_volume):
    hr = RobustNormalize()(t1_volume)[..., 28:34]
    lr = KSpaceTruncate(2, axes=(0, 1))(hr)
    net, channels = load_bundle_network("msrn", 2)
    plain = super_resolve(lr, net, 2, in_channels=channels)
    consistent = super_resolve(lr, net, 2, in_channels=channels, data_consistency=True, roi_size=(24, 24))
    assert plain.meta[DATA_CONSISTENCY_KEY] is False and consistent.meta[DATA_CONSISTENCY_KEY] is True
    back = fourier_resize(consistent.as_tensor(), lr.shape[1:3], (1, 2)).abs()
    assert float((back - lr.as_tensor()).abs().max() / lr.abs().max()) < 1e-5  # whole slices, even after tiling
    wrapped = super_resolve(lr, DataConsistent(net), 2, in_channels=channels)
    whole = super_resolve(lr, net, 2, in_channels=channels, data_consistency=True)
    assert torch.allclose(wrapped, whole, atol=1e-5)
