"""MSRN: multi-scale residual network (Li et al., ECCV 2018), for MR slices."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from mrsr.networks import NetworkSpec, register
from mrsr.networks.blocks import (
    ChannelAttention,
    SecondOrderChannelAttention,
    SubpixelUpsampler,
    centre_channel,
    check_positive,
    check_residual,
    check_scale,
    check_spatial_dims,
    conv2d,
)
from mrsr.transforms.resample import upsample_aligned

__all__ = ["MSRB", "MSRN"]


class MSRB(nn.Module):
    """Multi-scale residual block.

    ``S1 = ReLU(conv3(x))``, ``P1 = ReLU(conv5(x))`` (C -> C each);
    ``S2 = ReLU(conv3([S1, P1]))``, ``P2 = ReLU(conv5([P1, S1]))`` (2C -> 2C each);
    output ``conv1x1([S2, P2]) + x`` (4C -> C).

    Args:
        channels: feature channels C.

    Shapes:
        (B, C, H, W) -> (B, C, H, W).
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv3_1 = conv2d(channels, channels, 3)
        self.conv5_1 = conv2d(channels, channels, 5)
        self.conv3_2 = conv2d(2 * channels, 2 * channels, 3)
        self.conv5_2 = conv2d(2 * channels, 2 * channels, 5)
        self.bottleneck = conv2d(4 * channels, channels, 1)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s1 = self.act(self.conv3_1(x))
        p1 = self.act(self.conv5_1(x))
        s2 = self.act(self.conv3_2(torch.cat([s1, p1], dim=1)))
        p2 = self.act(self.conv5_2(torch.cat([p1, s1], dim=1)))
        return self.bottleneck(torch.cat([s2, p2], dim=1)) + x


class MSRN(nn.Module):
    """MSRN, the multi-scale residual network for single-image super-resolution.

    Li, Fang, Mei, Zhang, "Multi-scale Residual Network for Image Super-Resolution", ECCV 2018.
    Shallow 3x3 conv -> ``num_blocks`` multi-scale residual blocks (:class:`MSRB`:
    parallel 3x3 and 5x5 convs, cross-concatenated into a second 3x3/5x5 pair, 1x1 bottleneck,
    local skip) -> hierarchical feature fusion (concatenation of the shallow feature and every
    MSRB output, 1x1 conv, 3x3 conv) -> sub-pixel upsampler -> 3x3 reconstruction conv.

    With the default sizes (64 features, 8 MSRBs) and one input/output channel the network has
    5,928,001 parameters at x2 (6,112,641 at x3, 6,075,713 at x4). With RGB in/out, the paper's
    setting, the same code gives 5,930,307 / 6,114,947 / 6,078,019: the "about 6 M" of the paper
    and, to the parameter, the 5,930K / 6,114K / 6,078K that later lightweight-SR comparisons list
    for the reference implementation. The only difference to it is the 1-channel head and tail.

    Choices made where the paper is silent, or changed for MR:

    - Input channels 1 (2D) or 2k+1 (2.5D, neighbouring slices); the paper's RGB mean shift
      (``sub_mean``/``add_mean``) is dropped: inputs are MR intensities in [0, 1].
    - Hierarchical fusion: 1x1 conv over ``(num_blocks + 1) * C`` channels (the shallow feature
      included, as in the reference code) followed by a 3x3 conv, no activation.
    - Upsampler: :class:`~mrsr.networks.blocks.SubpixelUpsampler` (x2/x3 stages, x4 = two x2
      stages, as the paper), ICNR initialised; no activation.
    - No global image residual (the paper has none). ``global_residual=True`` adds a cubic
      interpolation of the centre channel on the degradation's grid
      (:func:`~mrsr.transforms.resample.upsample_aligned`): an mrsr option, off by default.
    - Attention (``attention=True``, off by default; a later variant sketches it, the ECCV paper has
      none): a first-order channel attention (average + max pooled, shared MLP) re-weights each
      MSRB output before the concatenation, and a second-order (covariance-pooled, SAN-style)
      channel attention re-weights the concatenated hierarchical features before the 1x1 fusion.

    Args:
        spatial_dims: must be 2.
        in_channels: input channels (1 for 2D, 2k+1 for 2.5D; the centre channel
            ``in_channels // 2`` is the slice super-resolved).
        out_channels: output channels.
        scale: upsampling factor, 2, 3 or 4.
        features: feature channels C (paper: 64).
        num_blocks: number of MSRBs (paper: 8).
        attention: enable the multi-scale attention option.
        global_residual: add an aligned interpolation of the centre channel to the output: ``True`` or
            ``"cubic"`` (Keys cubic), ``"sinc"`` (zero-filled k-space, the zerofill baseline),
            ``"sinc_reflect"`` (the same, mirrored at the edges: the choice for training on patches),
            ``False``: none.

    Shapes:
        input (B, in_channels, h, w), values in [0, 1], any h, w;
        output (B, out_channels, scale*h, scale*w).

    >>> net = MSRN(**MSRN.PRESETS["small"], scale=3)
    >>> net(torch.rand(2, 1, 13, 17)).shape
    torch.Size([2, 1, 39, 51])
    """

    PRESETS: dict[str, dict[str, Any]] = {
        "default": {"features": 64, "num_blocks": 8},
        # seconds per CPU step on a 64x64 HR patch (see benchmarks/networks.py)
        "small": {"features": 16, "num_blocks": 3},
    }

    prefers_channels_last = True  # faster in channels_last on a CPU (benchmarks/inference_variants.py)

    def __init__(
        self,
        spatial_dims: int = 2,
        in_channels: int = 1,
        out_channels: int = 1,
        scale: int = 2,
        features: int = 64,
        num_blocks: int = 8,
        attention: bool = False,
        global_residual: bool | str = False,
    ) -> None:
        super().__init__()
        check_spatial_dims(spatial_dims, "MSRN")
        self.scale = check_scale(scale, (2, 3, 4), "MSRN")
        in_channels = check_positive(in_channels, "in_channels", "MSRN")
        out_channels = check_positive(out_channels, "out_channels", "MSRN")
        features = check_positive(features, "features", "MSRN")
        num_blocks = check_positive(num_blocks, "num_blocks", "MSRN")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.residual_mode = check_residual(global_residual, "MSRN")
        self.use_attention = bool(attention)

        self.head = conv2d(in_channels, features, 3)
        self.blocks = nn.ModuleList([MSRB(features) for _ in range(num_blocks)])
        # per-scale (per-MSRB) first-order attention; identities when off (keeps TorchScript simple)
        self.scale_attention = nn.ModuleList(
            [ChannelAttention(features) if attention else nn.Identity() for _ in range(num_blocks)]
        )
        fused = features * (num_blocks + 1)
        self.fusion_attention = SecondOrderChannelAttention(fused) if attention else nn.Identity()
        self.fusion = nn.Sequential(conv2d(fused, features, 1), conv2d(features, features, 3))
        self.upsample = SubpixelUpsampler(2, features, self.scale)
        self.tail = conv2d(features, out_channels, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Super-resolve ``x`` (B, in_channels, h, w) to (B, out_channels, scale*h, scale*w)."""
        h = self.head(x)
        feats = [h]
        for block, att in zip(self.blocks, self.scale_attention):
            h = block(h)
            feats.append(att(h))
        f = self.fusion(self.fusion_attention(torch.cat(feats, dim=1)))
        out = self.tail(self.upsample(f))
        if self.residual_mode != "":
            out = out + upsample_aligned(centre_channel(x), self.scale, self.residual_mode).to(out.dtype)
        return out


register(
    NetworkSpec(
        "msrn",
        MSRN,
        bundle="msrn",
        display_name="MSRN",
        title="MSRN, multi-scale residual network",
        references=(
            "Li, Fang, Mei, Zhang, Multi-scale Residual Network for Image Super-Resolution, ECCV 2018",
        ),
    )
)
