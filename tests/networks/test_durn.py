"""Tests of mrsr.networks.durn (DURN): its blocks, options and sizes (the contract of every SR network:
test_contract.py)."""

from __future__ import annotations

import pytest
import torch

from mrsr.networks import get_network
from mrsr.networks.durn import DURN, URN


def small(scale: int, in_channels: int, **kwargs) -> DURN:
    return DURN(**DURN.PRESETS["small"], scale=scale, in_channels=in_channels, **kwargs)


def test_urn_feature_pyramid():
    """A URN returns its input resolution and the up/down features at 2^i times it."""
    urn = URN(8, num_levels=2)
    x = torch.rand(1, 8, 5, 7)
    y, ups, downs = urn(x)
    assert y.shape == x.shape
    assert [tuple(u.shape[-2:]) for u in ups] == [(10, 14), (20, 28)]
    assert [tuple(d.shape[-2:]) for d in downs] == [(10, 14), (5, 7)]


def test_dual_connection_is_used():
    """The second URN's output depends on the first URN's up-branch features (the dual connection)."""
    torch.manual_seed(0)
    net = small(2, 1).eval()
    x = torch.rand(1, 1, 9, 9)
    first, second = net.urns[0], net.urns[1]
    with torch.no_grad():
        h = net.initial(x)
        y1, ups, downs = first(h)
        with_prior = second(y1, ups, downs)[0]
        without = second(y1)[0]
    assert not torch.allclose(with_prior, without)
    assert len(net.urns) == 2


@pytest.mark.parametrize("mode", [True, "cubic", "sinc", "sinc_reflect"])
def test_global_residual_option(mode):
    """With global_residual the output is the aligned interpolation of the centre channel plus the net's."""
    from mrsr.networks.blocks import check_residual
    from mrsr.transforms.resample import upsample_aligned

    torch.manual_seed(0)
    plain = small(3, 3).eval()
    res = small(3, 3, global_residual=mode).eval()
    res.load_state_dict(plain.state_dict())
    x = torch.rand(1, 3, 7, 8)
    with torch.no_grad():
        torch.testing.assert_close(res(x), plain(x) + upsample_aligned(x[:, 1:2], 3, check_residual(mode)))
    with pytest.raises(ValueError, match="global_residual"):
        small(3, 3, global_residual="bilinear")


@pytest.mark.parametrize("scale,expected", [(2, 4_315_329), (3, 4_499_969), (4, 4_463_041)])
def test_default_parameter_count(scale, expected):
    with torch.device("meta"):
        net = get_network("durn", preset="default", scale=scale)
    assert sum(p.numel() for p in net.parameters()) == expected


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"spatial_dims": 3}, "spatial_dims=2"),
        ({"scale": 1}, "scale"),
        ({"scale": 8}, "scale"),
        ({"features": 0}, "features"),
        ({"num_levels": 0}, "num_levels"),
    ],
)
def test_invalid_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DURN(**kwargs)


def test_zero_init_residual_starts_at_the_interpolation():
    from mrsr.transforms.resample import upsample_aligned

    net = DURN(**DURN.PRESETS["small"], scale=2, global_residual="sinc_reflect", zero_init_residual=True).eval()
    x = torch.rand(2, 1, 12, 10)
    torch.testing.assert_close(net(x), upsample_aligned(x, 2, "sinc_reflect"))
    with pytest.raises(ValueError, match="needs a global_residual"):
        DURN(**DURN.PRESETS["small"], zero_init_residual=True)
