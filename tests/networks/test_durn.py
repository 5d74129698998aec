"""Tests of mrsr.networks.durn (DURN) on its small preset."""

from __future__ import annotations

import pytest
import torch

from mrsr.networks import get_network
from mrsr.networks.durn import DURN, URN

CASES = [(s, c) for s in (2, 3, 4) for c in (1, 3)]
IDS = [f"x{s}-c{c}" for s, c in CASES]


def small(scale: int, in_channels: int, **kwargs) -> DURN:
    return DURN(**DURN.PRESETS["small"], scale=scale, in_channels=in_channels, **kwargs)


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


@pytest.mark.slow
def test_default_preset_trains_one_step(sr_checks):
    torch.manual_seed(0)
    sr_checks.check_default_preset_step(get_network("durn", preset="default", scale=2, in_channels=3), 3, 2)


@pytest.mark.slow
@pytest.mark.parametrize("scale", [2, 4])
def test_overfit_beats_cubic_interpolation(sr_checks, real_slice_pair, scale):
    """Longer overfit on the real slice: the small preset fits it better than aligned cubic interpolation."""
    lr, hr = real_slice_pair(scale)
    torch.manual_seed(0)
    cubic, net_l1 = sr_checks.check_beats_cubic(small(scale, 1), lr, hr, scale, steps=200)
    assert net_l1 < cubic, f"network L1 {net_l1:.4f} vs cubic {cubic:.4f}"


def test_zero_init_residual_starts_at_the_interpolation():
    from mrsr.transforms.resample import upsample_aligned

    net = DURN(**DURN.PRESETS["small"], scale=2, global_residual="sinc_reflect", zero_init_residual=True).eval()
    x = torch.rand(2, 1, 12, 10)
    torch.testing.assert_close(net(x), upsample_aligned(x, 2, "sinc_reflect"))
    with pytest.raises(ValueError, match="needs a global_residual"):
        DURN(**DURN.PRESETS["small"], zero_init_residual=True)
