"""Tests of mrsr.networks.medgan: the CasNet generator's blocks, options and sizes (the contract of every SR network:
test_contract.py) and the PatchDiscriminator."""

from __future__ import annotations

import pytest
import torch

from mrsr.networks import get_network
from mrsr.networks.medgan import CasNet, PatchDiscriminator, UBlock


def small(scale: int, in_channels: int, **kwargs) -> CasNet:
    return CasNet(**CasNet.PRESETS["small"], scale=scale, in_channels=in_channels, **kwargs)


def small_d(**kwargs) -> PatchDiscriminator:
    return PatchDiscriminator(**PatchDiscriminator.PRESETS["small"], **kwargs)


# --- CasNet ---


def test_scale_one_takes_hr_grid_input(sr_checks):
    """scale=1: the input is already on the HR grid (zero-filled or interpolated LR)."""
    sr_checks.check_output_shape(small(1, 1), 1, 1, 1, size=(26, 34))
    sr_checks.check_torchscript(small(1, 1), 1, size=(26, 34))


def test_output_in_unit_range_with_tanh():
    net = small(2, 1).eval()
    with torch.no_grad():
        y = net(torch.rand(2, 1, 13, 17) * 3.0)
    assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0


@pytest.mark.parametrize("channels", [1, 3])
def test_global_residual_starts_at_the_interpolation_and_learns(sr_checks, channels):
    from mrsr.transforms.resample import upsample_aligned

    net = small(2, channels, interp_mode="sinc_reflect", global_residual=True).eval()
    x = torch.rand(2, channels, 20, 18)
    centre = upsample_aligned(x[:, channels // 2 : channels // 2 + 1], 2, "sinc_reflect")
    torch.testing.assert_close(net(x), centre)  # the last conv starts at zero
    assert not isinstance(net.blocks[-1].ups[-1][-1], torch.nn.Tanh)  # a correction is not bounded
    net.train()
    net(x).square().mean().backward()
    assert net.blocks[-1].ups[-1][1].weight.grad.abs().sum() > 0
    sr_checks.check_torchscript(small(2, channels, global_residual=True), channels)


def test_padding_longer_than_the_image():
    """A 5x7 LR at x2 (10x14) padded to the U-blocks' multiple of 64 by repeated reflection."""
    net = CasNet(features=4, num_levels=6, max_features=16, num_blocks=1, scale=2).eval()
    with torch.no_grad():
        y = net(torch.rand(1, 1, 5, 7))
    assert y.shape == (1, 1, 10, 14) and torch.isfinite(y).all()


def test_cascade_wiring():
    net = small(2, 3, out_channels=1)
    assert len(net.blocks) == CasNet.PRESETS["small"]["num_blocks"]
    assert net.blocks[0].downs[0][0].in_channels == 3
    assert all(b.downs[0][0].in_channels == 1 for b in net.blocks[1:])


def test_ublock_channels_follow_the_paper():
    with torch.device("meta"):
        block = UBlock(1, 1)
    chans = [
        seq[-1].num_features if isinstance(seq[-1], torch.nn.BatchNorm2d) else seq[-1].out_channels
        for seq in block.downs
    ]
    assert chans == [64, 128, 256, 512, 512, 512, 512, 512]


def test_default_parameter_count():
    """Six pix2pix-size U-blocks: 6 x 54.4 M."""
    with torch.device("meta"):
        net = get_network("casnet", preset="default")
    assert len(net.blocks) == 6
    assert sum(p.numel() for p in net.blocks[0].parameters()) == 54_408_385
    assert sum(p.numel() for p in net.parameters()) == 326_450_310


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"spatial_dims": 3}, "spatial_dims=2"),
        ({"scale": 5}, "scale"),
        ({"interp_mode": "lanczos"}, "interp_mode"),
        ({"pad_mode": "circular"}, "pad_mode"),
        ({"dropout": 1.0}, "dropout"),
    ],
)
def test_invalid_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CasNet(**kwargs)


# --- PatchDiscriminator ---


def test_discriminator_patch_grid():
    d = small_d().eval()
    with torch.no_grad():
        assert d(torch.rand(1, 1, 256, 256), torch.rand(1, 1, 256, 256)).shape == (1, 1, 30, 30)
        assert d(torch.rand(2, 2, 26, 34)).shape == (2, 1, 1, 2)


def test_discriminator_receptive_field_is_70():
    d = small_d().eval()
    x = torch.rand(1, 2, 128, 128, requires_grad=True)
    out = d(x)
    out[0, 0, out.shape[2] // 2, out.shape[3] // 2].backward()
    rows = torch.nonzero(x.grad.abs().sum(dim=(0, 1, 3)))
    cols = torch.nonzero(x.grad.abs().sum(dim=(0, 1, 2)))
    assert int(rows.max() - rows.min()) + 1 == 70
    assert int(cols.max() - cols.min()) + 1 == 70


def test_discriminator_condition_and_features():
    d = small_d().eval()
    img, cond = torch.rand(2, 1, 64, 64), torch.rand(2, 1, 64, 64)
    with torch.no_grad():
        logits = d(img, cond)
        torch.testing.assert_close(d(torch.cat([img, cond], 1)), logits)
        feats = d.features(img, cond)
        logits2, feats2 = d.forward_with_features(img, cond)
    assert [f.shape[1] for f in feats] == [16, 32, 64, 128]
    torch.testing.assert_close(logits2, logits)
    for a, b in zip(feats, feats2):
        torch.testing.assert_close(a, b)
    with pytest.raises(ValueError, match="channels"):
        d(img)


def test_discriminator_is_spectrally_normalised():
    d = small_d()
    for conv in [layer[0] for layer in d.hidden] + [d.head]:
        w = conv.weight.detach().reshape(conv.weight.shape[0], -1)
        assert abs(float(torch.linalg.matrix_norm(w, ord=2)) - 1.0) < 0.05
    plain = small_d(spectral=False)
    assert not any("parametrizations" in n for n, _ in plain.named_parameters())


def test_discriminator_gradients_bf16_trace_state_dict():
    torch.manual_seed(0)
    d = small_d()
    x = torch.rand(2, 2, 48, 40)
    d(x).mean().backward()
    assert all(p.grad is not None and bool(p.grad.abs().sum() > 0) for p in d.parameters())
    d.eval()
    with torch.no_grad():
        ref = d(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y = d(x)
        assert torch.isfinite(y).all() and (y.float() - ref).abs().mean() < 0.05 * ref.abs().mean() + 1e-2
        traced = torch.jit.trace(d, x)
        torch.testing.assert_close(traced(x), ref)
        torch.manual_seed(5)
        other = small_d().eval()
        other.load_state_dict(d.state_dict())
        torch.testing.assert_close(other(x), ref)
        cl = d.to(memory_format=torch.channels_last)(x.contiguous(memory_format=torch.channels_last))
        torch.testing.assert_close(cl, ref, rtol=1e-4, atol=1e-5)


def test_discriminator_default_size():
    with torch.device("meta"):
        d = get_network("patch_discriminator", preset="default")
    assert sum(p.numel() for p in d.parameters()) == 2_763_713
    with pytest.raises(ValueError, match="spatial_dims=2"):
        PatchDiscriminator(spatial_dims=3)


@pytest.mark.slow
def test_discriminator_default_forward_features():
    d = get_network("patch_discriminator", preset="default").eval()
    with torch.no_grad():
        logits, feats = d.forward_with_features(torch.rand(1, 1, 256, 256), torch.rand(1, 1, 256, 256))
    assert logits.shape == (1, 1, 30, 30)
    assert [f.shape[1] for f in feats] == [64, 128, 256, 512]
