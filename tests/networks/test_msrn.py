"""Tests of mrsr.networks.msrn (MSRN) on its small preset."""

from __future__ import annotations

import pytest
import torch

from mrsr.networks import get_network
from mrsr.networks.msrn import MSRB, MSRN

CASES = [(s, c) for s in (2, 3, 4) for c in (1, 3)]
IDS = [f"x{s}-c{c}" for s, c in CASES]


def small(scale: int, in_channels: int, **kwargs) -> MSRN:
    return MSRN(**MSRN.PRESETS["small"], scale=scale, in_channels=in_channels, **kwargs)


@pytest.mark.parametrize("scale,channels", CASES, ids=IDS)
def test_output_shape(sr_checks, scale, channels):
    sr_checks.check_output_shape(small(scale, channels), channels, 1, scale)
    sr_checks.check_output_shape(small(scale, channels, out_channels=2), channels, 2, scale, size=(8, 9))


@pytest.mark.parametrize("scale,channels", CASES, ids=IDS)
def test_gradients_reach_every_parameter(sr_checks, scale, channels):
    sr_checks.check_gradients(small(scale, channels), channels)


@pytest.mark.parametrize("scale,channels", CASES, ids=IDS)
def test_eval_determinism(sr_checks, scale, channels):
    sr_checks.check_eval_determinism(small(scale, channels), channels)


@pytest.mark.parametrize("scale,channels", CASES, ids=IDS)
def test_torchscript(sr_checks, scale, channels):
    sr_checks.check_torchscript(small(scale, channels), channels)


@pytest.mark.parametrize("scale,channels", CASES, ids=IDS)
def test_state_dict_round_trip(sr_checks, scale, channels):
    sr_checks.check_state_dict_round_trip(lambda: small(scale, channels), channels)


@pytest.mark.parametrize("scale,channels", CASES, ids=IDS)
def test_bf16_autocast(sr_checks, scale, channels):
    sr_checks.check_bf16_autocast(small(scale, channels), channels, 1, scale)


@pytest.mark.parametrize("scale,channels", CASES, ids=IDS)
def test_channels_last(sr_checks, scale, channels):
    sr_checks.check_channels_last(small(scale, channels), channels)


@pytest.mark.parametrize("scale,channels", CASES, ids=IDS)
def test_overfit_real_slice(sr_checks, real_slice_pair, scale, channels):
    lr, hr = real_slice_pair(scale, k=channels // 2)
    torch.manual_seed(0)
    first, last = sr_checks.check_overfit(small(scale, channels), lr, hr, steps=40)
    assert last <= 0.5 * first, f"L1 {first:.4f} -> {last:.4f}"


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


def test_default_preset_matches_constructor_defaults():
    with torch.device("meta"):
        a, b = MSRN(), get_network("msrn", preset="default")
    assert [p.shape for p in a.parameters()] == [p.shape for p in b.parameters()]


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


@pytest.mark.slow
def test_default_preset_trains_one_step(sr_checks):
    torch.manual_seed(0)
    sr_checks.check_default_preset_step(get_network("msrn", preset="default", scale=2, in_channels=3), 3, 2)


@pytest.mark.slow
@pytest.mark.parametrize("scale", [2, 4])
def test_overfit_beats_cubic_interpolation(sr_checks, real_slice_pair, scale):
    """Longer overfit on the real slice: the small preset fits it better than aligned cubic interpolation."""
    lr, hr = real_slice_pair(scale)
    torch.manual_seed(0)
    cubic, net_l1 = sr_checks.check_beats_cubic(small(scale, 1), lr, hr, scale, steps=200)
    assert net_l1 < cubic, f"network L1 {net_l1:.4f} vs cubic {cubic:.4f}"
