"""Tests of mrsr.networks.wasa (WASA) and its blocks (Haar DWT/IWT, RWAB, bounded self-attention); the contract of
every SR network: test_contract.py."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from mrsr.networks.blocks import (
    HaarDWT,
    HaarIWT,
    ResidualWaveletAttentionBlock,
    SelfAttention2d,
    centre_channel,
)
from mrsr.networks.wasa import WASA
from mrsr.transforms.resample import upsample_aligned

SCALES = [2, 3, 4]
CHANNELS = [1, 3]

pytestmark = pytest.mark.usefixtures("one_thread")


def make(scale: int = 2, in_channels: int = 1, **kwargs) -> WASA:
    return WASA(**{**WASA.PRESETS["small"], **kwargs}, scale=scale, in_channels=in_channels)


# --- blocks ---


def test_haar_matches_seed_and_inverts():
    torch.manual_seed(0)
    x = torch.rand(2, 3, 6, 8)
    # the seed's DWT, written out
    x01, x02 = x[:, :, 0::2, :] / 2, x[:, :, 1::2, :] / 2
    x1, x2, x3, x4 = x01[:, :, :, 0::2], x02[:, :, :, 0::2], x01[:, :, :, 1::2], x02[:, :, :, 1::2]
    seed = torch.cat((x1 + x2 + x3 + x4, -x1 - x2 + x3 + x4, -x1 + x2 - x3 + x4, x1 - x2 - x3 + x4), 1)
    y = HaarDWT()(x)
    torch.testing.assert_close(y, seed)
    torch.testing.assert_close(HaarIWT()(y), x)
    # orthonormal: energy preserved
    torch.testing.assert_close(y.pow(2).sum(), x.pow(2).sum())
    assert not list(HaarDWT().parameters()) and not list(HaarIWT().parameters())
    with pytest.raises(ValueError):
        HaarDWT()(torch.rand(1, 1, 5, 6))


@pytest.mark.parametrize("size", [(13, 17), (1, 1), (2, 5)])
def test_rwab_any_size(size):
    y = ResidualWaveletAttentionBlock(8)(torch.rand(2, 8, *size))
    assert y.shape == (2, 8, *size)


def _naive_attention(m: SelfAttention2d, x: torch.Tensor, kv: torch.Tensor) -> torch.Tensor:
    b, c, h, w = x.shape
    q = m.query(x).flatten(2).transpose(1, 2)
    k = m.key(kv).flatten(2)
    v = m.value(kv).flatten(2)
    a = torch.softmax(q @ k * m.softmax_scale, dim=-1)
    return x + m.gamma * (v @ a.transpose(1, 2)).view(b, c, h, w)


def test_self_attention_exact_pooled_and_chunked():
    torch.manual_seed(0)
    x = torch.rand(2, 16, 9, 11)
    m = SelfAttention2d(16, kv_size=None, chunk_size=7)
    with torch.no_grad():
        m.gamma.fill_(0.7)
        torch.testing.assert_close(m(x), _naive_attention(m, x, x))  # exact, chunked
        m.kv_size = 4  # keys/values from the map pooled to 4 x 4
        torch.testing.assert_close(m(x), _naive_attention(m, x, F.adaptive_avg_pool2d(x, [4, 4])))
        m.kv_size, m.chunk_size = 64, 4096  # maps up to 64 x 64: exact, one call
        torch.testing.assert_close(m(x), _naive_attention(m, x, x))
    with pytest.raises(ValueError):
        SelfAttention2d(16, chunk_size=0)


# --- the network ---


def test_default_parameter_count():
    with torch.device("meta"):
        net = WASA(scale=2)
    assert sum(p.numel() for p in net.parameters()) == 19_802_131


@pytest.mark.parametrize(
    "kwargs",
    [{"spatial_dims": 3}, {"scale": 8}, {"scale": 1}, {"scale": 2.5}, {"in_channels": 0}, {"features": 0}],
)
def test_invalid_arguments(kwargs):
    with pytest.raises(ValueError):
        WASA(**{"scale": 2, **kwargs})


def test_global_residual_is_aligned_cubic_of_centre_channel():
    """With the learned tail and skip branch silenced the output is upsample_aligned(centre channel)."""
    net = make(3, 3).eval()
    with torch.no_grad():
        for conv in (net.tail, net.skip[-1]):
            conv.weight.zero_()
            conv.bias.zero_()
        x = torch.rand(1, 3, 7, 9)
        torch.testing.assert_close(net(x), upsample_aligned(centre_channel(x), 3))


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("in_channels", CHANNELS)
def test_attention_learns_from_the_second_step(scale, in_channels):
    """gamma starts at 0 (SAGAN), so the attention's q/k/v convs get an exactly zero gradient on the first
    backward and a non-zero one after one optimiser step has moved gamma."""
    torch.manual_seed(0)
    net = make(scale, in_channels).train()
    x = torch.rand(2, in_channels, 13, 17)
    target = torch.rand(2, 1, 13 * scale, 17 * scale)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    prefixes = ("attention.query.", "attention.key.", "attention.value.")
    qkv = [p for n, p in net.named_parameters() if n.startswith(prefixes)]

    def qkv_gradient() -> list[float]:
        opt.zero_grad(set_to_none=True)
        (net(x) - target).abs().mean().backward()
        return [float(p.grad.abs().sum()) for p in qkv]

    assert len(qkv) == 6
    assert qkv_gradient() == [0.0] * 6
    opt.step()
    assert all(g > 0 for g in qkv_gradient())


def _with_active_attention(net: WASA) -> WASA:
    """gamma != 0, so the export exercises the attention path too (test_contract.py sets it for every check)."""
    with torch.no_grad():
        net.attention.gamma.fill_(0.5)
    return net


def test_torchscript_pooled_chunked_attention(sr_checks):
    """A map larger than the key/value grid, several query chunks: the scripted module agrees."""
    net = _with_active_attention(make(2, 1, attn_kv_size=4, attn_chunk_size=50))
    sr_checks.check_torchscript(net, 1, size=(13, 17))


@pytest.mark.parametrize("mode", ["sinc", "sinc_reflect"])
def test_interp_mode_sets_the_skip_and_residual_upsampling(mode):
    """With the tail and the skip's last conv zeroed, the output is the centre channel upsampled in that mode."""
    net = WASA(**WASA.PRESETS["small"], in_channels=3, scale=2, interp_mode=mode).eval()
    with torch.no_grad():
        for conv in (net.tail, net.skip[-1]):
            conv.weight.zero_()
            conv.bias.zero_()
        x = torch.rand(1, 3, 9, 10)
        torch.testing.assert_close(net(x), upsample_aligned(x[:, 1:2], 2, mode))
    with pytest.raises(ValueError, match="interp_mode"):
        WASA(scale=2, interp_mode="lanczos")
