"""Tests of mrsr.networks.msrn (MSRN): its blocks, options and sizes (the contract of every SR network:
test_contract.py)."""

from __future__ import annotations

import pytest
import torch

from mrsr.networks import get_network
from mrsr.networks.msrn import MSRB, MSRN


def small(scale: int, in_channels: int, **kwargs) -> MSRN:
    return MSRN(**MSRN.PRESETS["small"], scale=scale, in_channels=in_channels, **kwargs)


def test_attention_option(sr_checks):
    """The multi-scale attention option (first- and second-order channel attention) works end to end."""
    net = small(2, 3, attention=True)
    assert sum(p.numel() for p in net.parameters()) > sum(p.numel() for p in small(2, 3).parameters())
    sr_checks.check_output_shape(net, 3, 1, 2)
    sr_checks.check_gradients(small(2, 3, attention=True), 3)
    sr_checks.check_torchscript(net, 3)
    sr_checks.check_bf16_autocast(net, 3, 1, 2)


@pytest.mark.parametrize("mode", [True, "cubic", "sinc", "sinc_reflect"])
def test_global_residual_option(mode):
    """With global_residual the output is the aligned interpolation of the centre channel plus the net's."""
    from mrsr.networks.blocks import check_residual
    from mrsr.transforms.resample import upsample_aligned

    torch.manual_seed(0)
    plain = small(2, 3).eval()
    res = small(2, 3, global_residual=mode).eval()
    res.load_state_dict(plain.state_dict())
    x = torch.rand(1, 3, 9, 11)
    with torch.no_grad():
        torch.testing.assert_close(res(x), plain(x) + upsample_aligned(x[:, 1:2], 2, check_residual(mode)))
    with pytest.raises(ValueError, match="global_residual"):
        small(2, 3, global_residual="bilinear")


def test_msrb_is_residual():
    block = MSRB(8)
    x = torch.rand(1, 8, 6, 7)
    with torch.no_grad():
        for p in block.bottleneck.parameters():
            p.zero_()
        torch.testing.assert_close(block(x), x)


@pytest.mark.parametrize(
    "scale,in_channels,expected",
    [(2, 1, 5_928_001), (3, 1, 6_112_641), (4, 1, 6_075_713), (2, 3, 5_930_307), (4, 3, 6_078_019)],
)
def test_default_parameter_count(scale, in_channels, expected):
    """Paper size: the reference implementation's 5,930K / 6,114K / 6,078K with RGB (x2 / x3 / x4)."""
    with torch.device("meta"):
        net = get_network("msrn", preset="default", scale=scale, in_channels=in_channels, out_channels=in_channels)
    assert sum(p.numel() for p in net.parameters()) == expected


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"spatial_dims": 3}, "spatial_dims=2"),
        ({"scale": 8}, "scale"),
        ({"scale": 2.5}, "scale"),
        ({"in_channels": 0}, "in_channels"),
        ({"num_blocks": 0}, "num_blocks"),
    ],
)
def test_invalid_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MSRN(**kwargs)
