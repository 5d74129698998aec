"""Tests of mrsr.networks.blocks (the shared building blocks)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from mrsr.networks.blocks import (
    ChannelAttention,
    DownProjection,
    ResidualBlock,
    SecondOrderChannelAttention,
    SubpixelUpsampler,
    UpProjection,
    centre_channel,
    check_scale,
    check_spatial_dims,
    pad_to_multiple,
    projection_geometry,
)


def _script_same(module: torch.nn.Module, x: torch.Tensor) -> None:
    import warnings

    module.eval()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.testing.assert_close(torch.jit.script(module)(x), module(x))


# --- helpers ---


def test_check_spatial_dims_and_scale():
    check_spatial_dims(2)
    with pytest.raises(ValueError, match="spatial_dims=2"):
        check_spatial_dims(3, "X")
    assert check_scale(3) == 3
    for bad in (1, 5, 2.5, True, "2"):
        with pytest.raises((ValueError, TypeError)):
            check_scale(bad)


def test_centre_channel():
    x = torch.arange(5.0).view(1, 5, 1, 1).expand(2, 5, 3, 4)
    assert torch.equal(centre_channel(x), torch.full((2, 1, 3, 4), 2.0))
    assert centre_channel(torch.rand(1, 1, 3, 3)).shape == (1, 1, 3, 3)


@pytest.mark.parametrize("mode", ["reflect", "replicate", "constant"])
@pytest.mark.parametrize("size,multiple", [((13, 17), 8), ((26, 34), 256), ((1, 5), 4), ((16, 16), 16)])
def test_pad_to_multiple(mode, size, multiple):
    x = torch.rand(2, 3, *size)
    y = pad_to_multiple(x, multiple, mode)
    assert y.shape[-2] % multiple == 0 and y.shape[-1] % multiple == 0
    assert y.shape[-2] - size[0] < multiple and y.shape[-1] - size[1] < multiple
    assert torch.equal(y[..., : size[0], : size[1]], x)


def test_pad_to_multiple_reflect_matches_torch_for_short_pads():
    x = torch.rand(1, 2, 13, 17)
    torch.testing.assert_close(pad_to_multiple(x, 8), F.pad(x, [0, 7, 0, 3], mode="reflect"))


def test_pad_to_multiple_long_reflection_stays_in_range():
    x = torch.rand(1, 1, 5, 6)
    y = pad_to_multiple(x, 64)
    assert float(y.min()) >= float(x.min()) and float(y.max()) <= float(x.max())
    # first reflection is exact
    torch.testing.assert_close(y[..., 5:9, :6], x.flip(-2)[..., 1:5, :])


# --- residual and attention blocks ---


def test_residual_block():
    block = ResidualBlock(8)
    x = torch.rand(2, 8, 5, 7)
    assert block(x).shape == x.shape
    with torch.no_grad():
        block.conv2.weight.zero_()
        block.conv2.bias.zero_()
    torch.testing.assert_close(block(x), x)
    _script_same(ResidualBlock(8), x)


@pytest.mark.parametrize("channels,reduction", [(64, 16), (16, 16), (3, 16), (1, 4)])
def test_channel_attention(channels, reduction):
    att = ChannelAttention(channels, reduction)
    x = torch.rand(2, channels, 5, 7)
    w = att.weights(x)
    assert w.shape == (2, channels, 1, 1)
    assert bool(((w > 0) & (w < 1)).all())
    torch.testing.assert_close(att(x), x * w)
    _script_same(att, x)


def test_channel_attention_uses_avg_and_max():
    att = ChannelAttention(8, 2)
    x = torch.zeros(1, 8, 4, 4)
    x2 = x.clone()
    x2[..., 0, 0] = 16.0  # same max change, different mean: both pools feed the MLP
    x3 = torch.full_like(x, 1.0)
    assert not torch.allclose(att.weights(x2), att.weights(x3))


def test_second_order_channel_attention():
    att = SecondOrderChannelAttention(16, 4)
    x = torch.rand(2, 16, 6, 5)
    y = att(x)
    assert y.shape == x.shape and torch.isfinite(y).all()
    assert torch.isfinite(att(torch.ones(1, 16, 4, 4))).all()  # zero covariance
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.isfinite(att(x)).all()
    _script_same(att, x)


def test_second_order_root_is_matrix_square_root():
    """The Newton-Schulz iterations approximate the square root of the covariance."""
    torch.manual_seed(0)
    att = SecondOrderChannelAttention(6, 1, iterations=20)
    x = torch.randn(1, 6, 16, 16)
    f = x.reshape(1, 6, -1)
    f = f - f.mean(-1, keepdim=True)
    cov = f @ f.transpose(1, 2) / f.shape[-1]
    evals, evecs = torch.linalg.eigh(cov[0].double())
    root = (evecs * evals.clamp_min(0).sqrt()) @ evecs.T
    captured = {}
    att.mlp[0].register_forward_hook(lambda m, i, o: captured.setdefault("desc", i[0]))
    att(x)
    torch.testing.assert_close(captured["desc"].flatten().double(), root.mean(-1), rtol=1e-3, atol=1e-4)


# --- back-projection ---


@pytest.mark.parametrize("scale", [2, 3, 4, 8])
@pytest.mark.parametrize("size", [(1, 1), (5, 7), (13, 17)])
def test_projection_units_map_sizes_exactly(scale, size):
    up, down = UpProjection(4, scale), DownProjection(4, scale)
    x = torch.rand(1, 4, *size)
    h = up(x)
    assert h.shape == (1, 4, scale * size[0], scale * size[1])
    assert down(h).shape == x.shape


def test_projection_geometry():
    assert projection_geometry(2) == (6, 2, 2)
    assert projection_geometry(4) == (8, 4, 2)
    assert projection_geometry(8) == (12, 8, 2)
    with pytest.raises(ValueError):
        projection_geometry(1)


def test_down_projection_rejects_non_multiples():
    with pytest.raises(ValueError, match="multiples"):
        DownProjection(4, 2)(torch.rand(1, 4, 9, 8))


def test_projection_units_script_and_grad():
    x = torch.rand(1, 4, 5, 7)
    _script_same(UpProjection(4), x)
    _script_same(DownProjection(4), torch.rand(1, 4, 10, 14))
    up = UpProjection(4)
    up(x).mean().backward()
    assert all(p.grad is not None and bool(p.grad.abs().sum() > 0) for p in up.parameters())


# --- sub-pixel upsampler ---


@pytest.mark.parametrize("scale,stages", [(1, 0), (2, 1), (3, 1), (4, 2), (8, 3), (6, 2)])
@pytest.mark.parametrize("out_channels", [None, 1])
def test_subpixel_upsampler_shapes(scale, stages, out_channels):
    up = SubpixelUpsampler(2, 8, scale, out_channels)
    x = torch.rand(2, 8, 5, 7)
    y = up(x)
    assert y.shape == (2, out_channels or 8, scale * 5, scale * 7)
    assert sum(isinstance(m, torch.nn.PixelShuffle) for m in up.modules()) == stages
    _script_same(up, x)


@pytest.mark.parametrize("scale,last", [(2, 2), (3, 3), (4, 2)])
def test_subpixel_upsampler_icnr_starts_as_nearest(scale, last):
    """ICNR: at initialisation each stage is nearest-neighbour upsampling of a conv, so every r x r
    block of the output (r the last stage's factor) is constant."""
    up = SubpixelUpsampler(2, 4, scale)
    with torch.no_grad():
        y = up(torch.rand(1, 4, 6, 5))
    blocks = y.unfold(2, last, last).unfold(3, last, last)  # (1, C, H/r, W/r, r, r)
    torch.testing.assert_close(blocks, blocks[..., :1, :1].expand_as(blocks))
    plain = SubpixelUpsampler(2, 4, scale, icnr=False)
    with torch.no_grad():
        yp = plain(torch.rand(1, 4, 6, 5)).unfold(2, last, last).unfold(3, last, last)
    assert not torch.allclose(yp, yp[..., :1, :1].expand_as(yp))


def test_subpixel_upsampler_validation():
    with pytest.raises(ValueError, match="spatial_dims=2"):
        SubpixelUpsampler(3, 8, 2)
    with pytest.raises(ValueError, match="scale"):
        SubpixelUpsampler(2, 8, 0)
