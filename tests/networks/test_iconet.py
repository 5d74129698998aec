"""Tests of mrsr.networks.iconet (ICONet) and its blocks (RSCFL, SR-Rec fusion, large-kernel attention); the contract
of every SR network: test_contract.py."""

from __future__ import annotations

import io

import pytest
import torch

from mrsr.networks.blocks import LargeKernelAttention, centre_channel
from mrsr.networks.iconet import ICONet, RSCFLBlock, SRRecFusion
from mrsr.transforms.resample import upsample_aligned

SCALES = [2, 4, 8]
CHANNELS = [1, 3]

pytestmark = pytest.mark.usefixtures("one_thread")


def make(scale: int = 2, in_channels: int = 1, **kwargs) -> ICONet:
    return ICONet(**{**ICONet.PRESETS["small"], **kwargs}, scale=scale, in_channels=in_channels)


# --- blocks ---


@pytest.mark.parametrize("size", [(13, 17), (1, 1), (2, 5)])
def test_blocks_any_size(size):
    x = torch.rand(2, 16, *size)
    assert LargeKernelAttention(16)(x).shape == x.shape
    assert RSCFLBlock(16)(x).shape == x.shape
    assert SRRecFusion(16)(x, torch.rand_like(x)).shape == x.shape


def test_large_kernel_receptive_field():
    """The decomposed 21-pixel kernel reaches 10+ pixels away (the spatial branch is not local)."""
    torch.manual_seed(0)
    m = LargeKernelAttention(4)
    x = torch.zeros(1, 4, 31, 31, requires_grad=True)
    m.pointwise(m.dilated(m.local(x)))[0, :, 15, 15].sum().backward()
    rows = x.grad[0].abs().sum(dim=(0, 2)).nonzero().flatten()
    assert int(rows.min()) <= 15 - 10 and int(rows.max()) >= 15 + 10


def test_fusion_weights_are_adaptive_and_normalised():
    torch.manual_seed(0)
    fusion = SRRecFusion(8)
    a, b = torch.rand(2, 8, 5, 7), torch.rand(2, 8, 5, 7)
    w = fusion.weights(a, b)
    assert w.shape == (2, 2, 8, 5, 7)
    torch.testing.assert_close(w.sum(dim=1), torch.ones(2, 8, 5, 7))
    assert float(w.detach().std()) > 0  # varies over pixels/channels: not a fixed sum


# --- the network ---


@pytest.mark.parametrize("scale", SCALES)
def test_forward_stages_and_targets(scale):
    net = make(scale, 3, out_channels=2).eval()
    x = torch.rand(2, 3, 13, 17)
    with torch.no_grad():
        out = net.forward_stages(x)
        final = net(x)
    stages = {2: 1, 4: 2, 8: 3}[scale]
    assert len(out["sr"]) == len(out["rec"]) == stages
    for t in range(1, stages + 1):
        assert out["sr"][t - 1].shape == (2, 2, 13 * 2**t, 17 * 2**t)
        assert out["rec"][t - 1].shape == (2, 2, 13 * 2 ** (t - 1), 17 * 2 ** (t - 1))
    assert torch.equal(out["sr"][-1], final)
    hr = torch.rand(2, 2, 13 * scale, 17 * scale)
    targets = ICONet.stage_targets(hr, scale)
    assert [t.shape for t in targets["sr"]] == [t.shape for t in out["sr"]]
    assert [t.shape for t in targets["rec"]] == [t.shape for t in out["rec"]]
    assert torch.equal(targets["sr"][-1], hr)
    # the LR target is the k-space degradation of the HR image (docs/CONVENTIONS.md), not its decimation
    from mrsr.transforms.kspace import fourier_resize

    torch.testing.assert_close(targets["rec"][0], fourier_resize(hr, [13, 17], [-2, -1]).abs())
    assert ICONet.stage_factors(scale) == {
        "sr": [scale >> t for t in range(1, stages + 1)],
        "rec": [scale >> t for t in range(stages)],
    }
    with pytest.raises(ValueError):
        ICONet.stage_targets(torch.rand(1, 1, 10, 12), 4)


def test_default_parameter_count():
    with torch.device("meta"):
        net = ICONet(scale=4)
    assert sum(p.numel() for p in net.parameters()) == 1_623_108


@pytest.mark.parametrize(
    "kwargs", [{"spatial_dims": 3}, {"scale": 3}, {"scale": 16}, {"scale": 1}, {"in_channels": 0}, {"num_blocks": 0}]
)
def test_invalid_arguments(kwargs):
    with pytest.raises(ValueError):
        ICONet(**{"scale": 2, **kwargs})


@pytest.mark.parametrize("mode", ["cubic", "sinc", "sinc_reflect"])
def test_global_residual_is_the_aligned_interpolation_of_centre_channel(mode):
    """With every image tail silenced, each stage passes upsample_aligned(x2, interp_mode) of the centre channel on."""
    net = make(4, 3, interp_mode=mode).eval()
    with torch.no_grad():
        for stage in net.stages:
            for conv in (stage.rec_tail, stage.sr_tail):
                conv.weight.zero_()
                conv.bias.zero_()
        x = torch.rand(1, 3, 7, 9)
        expected = upsample_aligned(upsample_aligned(centre_channel(x), 2, mode), 2, mode)
        torch.testing.assert_close(net(x), expected)
    with pytest.raises(ValueError, match="interp_mode"):
        make(2, 1, interp_mode="area")


def test_multi_stage_loss_gradients():
    """The multi-stage loss (every stage's SR and reconstruction) reaches every parameter."""
    torch.manual_seed(0)
    net = make(8, 3).train()
    x = torch.rand(2, 3, 5, 6)
    targets = ICONet.stage_targets(torch.rand(2, 1, 40, 48), 8)
    out = net.forward_stages(x)
    loss = sum((a - b).abs().mean() for key in ("sr", "rec") for a, b in zip(out[key], targets[key]))
    loss.backward()
    bad = [n for n, p in net.named_parameters() if p.grad is None or not bool(p.grad.abs().sum() > 0)]
    assert not bad, bad


def test_torchscript_forward_stages():
    """The scripted module keeps ``forward_stages`` (the multi-stage training outputs)."""
    net = make(4, 1).eval()
    x = torch.rand(1, 1, 13, 17)
    scripted = torch.jit.script(net)
    buf = io.BytesIO()
    torch.jit.save(scripted, buf)
    buf.seek(0)
    loaded = torch.jit.load(buf)
    with torch.no_grad():
        ref = net.forward_stages(x)
        got = loaded.forward_stages(x)
    for key in ("sr", "rec"):
        for a, b in zip(got[key], ref[key]):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("scale", SCALES)
def test_zero_init_residual_starts_at_the_interpolation(scale):
    from mrsr.transforms.resample import upsample_aligned

    net = ICONet(**ICONet.PRESETS["small"], scale=scale, interp_mode="sinc_reflect", zero_init_residual=True).eval()
    x = torch.rand(2, 1, 12, 10)
    expected = x
    for _ in range(net.num_stages):
        expected = upsample_aligned(expected, 2, "sinc_reflect")
    torch.testing.assert_close(net(x), expected)
    net.train()
    net.forward_stages(x)["sr"][-1].square().mean().backward()
    assert all(bool(s.sr_tail.weight.grad.abs().sum() > 0) for s in net.stages)
