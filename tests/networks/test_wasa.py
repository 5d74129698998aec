"""Tests of mrsr.networks.wasa (WASA) and its blocks (Haar DWT/IWT, RWAB, bounded self-attention)."""

from __future__ import annotations

import inspect

import pytest
import torch
import torch.nn.functional as F

from mrsr.networks import get_network
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


@pytest.fixture(autouse=True)
def _one_thread():
    """Run on one intra-op thread: these workloads are tiny, and on a loaded 2-core machine OpenMP
    oversubscription slows them down 10-100x."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


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


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("in_channels", CHANNELS)
def test_output_shape(sr_checks, scale, in_channels):
    sr_checks.check_output_shape(make(scale, in_channels), in_channels, 1, scale)


@pytest.mark.parametrize("size", [(16, 16), (1, 1), (3, 5)])
def test_output_shape_other_sizes(sr_checks, size):
    sr_checks.check_output_shape(make(3, 3), 3, 1, 3, size=size)


def test_out_channels():
    net = WASA(**WASA.PRESETS["small"], scale=2, in_channels=3, out_channels=2).eval()
    with torch.no_grad():
        assert net(torch.rand(1, 3, 5, 6)).shape == (1, 2, 10, 12)


def test_registry_and_presets():
    net = get_network("wasa", preset="small", scale=2)
    assert isinstance(net, WASA)
    assert set(WASA.PRESETS) >= {"default", "small"}
    signature = inspect.signature(WASA)
    for key, value in WASA.PRESETS["default"].items():  # "default" is the constructor's defaults
        assert signature.parameters[key].default == value
    for preset in WASA.PRESETS.values():  # presets hold size parameters only
        assert not {"scale", "in_channels", "out_channels", "spatial_dims"} & set(preset)
    assert sum(p.numel() for p in WASA(scale=2).parameters()) == 19_802_131


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
def test_gradients(scale, in_channels):
    """Every parameter gets a gradient. gamma starts at 0, so the attention's q/k/v convs get an
    exactly zero gradient on the first backward and a non-zero one after one optimiser step."""
    torch.manual_seed(0)
    net = make(scale, in_channels).train()
    x = torch.rand(2, in_channels, 13, 17)
    target = torch.rand(2, 1, 13 * scale, 17 * scale)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)

    def backward() -> dict[str, torch.Tensor]:
        opt.zero_grad(set_to_none=True)
        (net(x) - target).abs().mean().backward()
        grads = {n: p.grad for n, p in net.named_parameters()}
        assert all(g is not None for g in grads.values()), [n for n, g in grads.items() if g is None]
        return grads

    grads = backward()
    qkv = {n for n in grads if n.startswith(("attention.query.", "attention.key.", "attention.value."))}
    assert len(qkv) == 6
    assert all(float(grads[n].abs().sum()) == 0.0 for n in qkv)
    zero = [n for n, g in grads.items() if n not in qkv and not bool(g.abs().sum() > 0)]
    assert not zero, f"all-zero gradient: {zero}"
    opt.step()
    assert float(net.attention.gamma.detach().abs()) > 0
    grads = backward()
    zero = [n for n, g in grads.items() if not bool(g.abs().sum() > 0)]
    assert not zero, f"all-zero gradient after one step: {zero}"


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("in_channels", CHANNELS)
def test_eval_determinism(sr_checks, scale, in_channels):
    sr_checks.check_eval_determinism(make(scale, in_channels), in_channels)


def _with_active_attention(net: WASA) -> WASA:
    """gamma != 0, so the exports and precision checks exercise the attention path too."""
    with torch.no_grad():
        net.attention.gamma.fill_(0.5)
    return net


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("in_channels", CHANNELS)
def test_torchscript(sr_checks, scale, in_channels):
    sr_checks.check_torchscript(_with_active_attention(make(scale, in_channels)), in_channels)


def test_torchscript_pooled_chunked_attention(sr_checks):
    """A map larger than the key/value grid, several query chunks: the scripted module agrees."""
    net = _with_active_attention(make(2, 1, attn_kv_size=4, attn_chunk_size=50))
    sr_checks.check_torchscript(net, 1, size=(13, 17))


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("in_channels", CHANNELS)
def test_state_dict_round_trip(sr_checks, scale, in_channels):
    sr_checks.check_state_dict_round_trip(lambda: _with_active_attention(make(scale, in_channels)), in_channels)


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("in_channels", CHANNELS)
def test_bf16_autocast(sr_checks, scale, in_channels):
    sr_checks.check_bf16_autocast(_with_active_attention(make(scale, in_channels)), in_channels, 1, scale)


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("in_channels", CHANNELS)
def test_channels_last(sr_checks, scale, in_channels):
    sr_checks.check_channels_last(_with_active_attention(make(scale, in_channels)), in_channels)


OVERFIT_CASES = [
    (2, 0),
    (3, 0),
    (4, 0),
    (2, 1),
    pytest.param(3, 1, marks=pytest.mark.slow),
    pytest.param(4, 1, marks=pytest.mark.slow),
]


@pytest.mark.parametrize("scale,k", OVERFIT_CASES)
def test_overfit_real_slice(sr_checks, real_slice_pair, scale, k):
    """60 Adam steps on one real k-space-truncated T1 slice (2D, or 2.5D with k neighbours each side):
    the L1 loss falls by at least half and ends below the aligned cubic interpolation's."""
    lr_img, hr = real_slice_pair(scale, k)
    torch.manual_seed(0)
    net = make(scale, 2 * k + 1)
    first, last = sr_checks.check_overfit(net, lr_img, hr, steps=60, lr=2e-3)
    cubic = float((upsample_aligned(lr_img[:, k : k + 1], scale) - hr).abs().mean())
    assert last <= 0.5 * first, (first, last)
    assert last < cubic, (last, cubic)


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
