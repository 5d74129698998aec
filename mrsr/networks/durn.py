"""DURN: dual U-Net residual network (cardiac MR super-resolution)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from mrsr.networks import NetworkSpec, register
from mrsr.networks.blocks import (
    DownProjection,
    ResidualBlock,
    SubpixelUpsampler,
    UpProjection,
    centre_channel,
    check_positive,
    check_residual,
    check_scale,
    check_spatial_dims,
    conv2d,
    zero_init_,
)
from mrsr.transforms.resample import upsample_aligned

__all__ = ["URN", "DURN"]


class _UpLevel(nn.Module):
    """One step of the up branch: residual block then up-projection (resolution x2)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.res = ResidualBlock(channels)
        self.up = UpProjection(channels, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(self.res(x))


class _DownLevel(nn.Module):
    """One step of the down branch: residual block, down-projection (resolution /2), then the U-Net
    join with the up branch's feature of the same resolution (concatenation, 1x1 conv 2C -> C)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.res = ResidualBlock(channels)
        self.down = DownProjection(channels, 2)
        self.join = conv2d(2 * channels, channels, 1)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.join(torch.cat([self.down(self.res(x)), skip], dim=1))


class URN(nn.Module):
    """U-Net residual network: the building unit of :class:`DURN`.

    Up branch: ``num_levels`` x [residual block, up-projection], each doubling the feature
    resolution (h -> 2h -> 4h for two levels). Down branch: ``num_levels`` x [residual block,
    down-projection, join], back to h; each join concatenates the down feature with the up
    branch's feature of the same resolution (the URN input for the last one) and reduces
    2C -> C with a 1x1 conv. The features after each up step and each down step are returned
    so that a following URN can add them to its own (the "dual" connection).

    Args:
        channels: feature channels C.
        num_levels: number of doubling steps.

    Shapes:
        (B, C, h, w) -> (B, C, h, w); the up features are (B, C, 2^i h, 2^i w), i = 1..L, the
        down features (B, C, 2^i h, 2^i w), i = L-1..0.
    """

    def __init__(self, channels: int, num_levels: int) -> None:
        super().__init__()
        self.num_levels = num_levels
        self.up_levels = nn.ModuleList([_UpLevel(channels) for _ in range(num_levels)])
        self.down_levels = nn.ModuleList([_DownLevel(channels) for _ in range(num_levels)])

    def forward(
        self,
        x: torch.Tensor,
        prior_up: list[torch.Tensor] | None = None,
        prior_down: list[torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
        """Run the URN; ``prior_up`` / ``prior_down`` (a previous URN's features) are added per position.

        Returns:
            (output, up features, down features).
        """
        skips: list[torch.Tensor] = [x]
        ups: list[torch.Tensor] = []
        h = x
        for i, level in enumerate(self.up_levels):
            h = level(h)
            if prior_up is not None:
                h = h + prior_up[i]
            ups.append(h)
            skips.append(h)
        downs: list[torch.Tensor] = []
        for j, level in enumerate(self.down_levels):
            h = level(h, skips[self.num_levels - 1 - j])
            if prior_down is not None:
                h = h + prior_down[j]
            downs.append(h)
        return h, ups, downs


class DURN(nn.Module):
    """DURN, the dual U-Net residual network for MR super-resolution.

    "Dual U-Net residual networks for cardiac magnetic resonance images super-resolution"
    ``F_shallow = H_initial(LR)`` (one 3x3 conv); ``F_deep`` = two :class:`URN` in
    sequence, the second adding the first's up- and down-branch features at every position
    (the dual connection); ``H_up(F_deep + F_shallow)`` (sub-pixel upsampler); ``SR = H_rec(.)``
    (one 3x3 conv). Residual blocks are conv-PReLU-conv with a local skip; the up and down blocks
    are DBPN's up- and down-projection units (deconv/conv, error feedback).

    With the default sizes (64 features, 2 levels, 2 URNs) the network has 4.31 M parameters at
    x2 (the paper gives no count).

    Choices made where the paper is silent:

    - Levels: ``num_levels=2`` doubling steps per URN (features at h, 2h, 4h), 64 channels
      throughout. The paper's "H x W x 8 -> H x W x 64" is read as channel counts of a figure and
      not reproduced; constant width keeps the dual additions shape-compatible.
    - Up/down blocks: DBPN geometry for x2 (6x6 kernels, stride 2, padding 2), a per-channel
      PReLU after every (de)convolution, as DBPN.
    - U-Net join: concatenation of the down feature with the same-resolution up feature, 1x1 conv
      back to C (no activation); the last join uses the URN's input.
    - Dual connection: the first URN's feature after each up step and each down step (after the
      join) is added to the second URN's at the same position, before it is passed on.
    - Upsampler ``H_up``: :class:`~mrsr.networks.blocks.SubpixelUpsampler` (PixelShuffle,
      x2/x3 stages, ICNR initialised), no activation; ``H_rec`` a 3x3 conv C -> out_channels.
    - ``num_urns`` generalises "dual" (2, the paper) to a chain: URN k adds URN k-1's features.
    - No global image residual (the paper has F_deep + F_shallow only). ``global_residual=True``
      adds a cubic interpolation of the centre channel on the degradation's grid
      (:func:`~mrsr.transforms.resample.upsample_aligned`): an mrsr option, off by default.
    - Cost: the feature maps at 4h x 4w x 64 dominate memory and FLOPs (see benchmarks/networks.py).

    Args:
        spatial_dims: must be 2.
        in_channels: input channels (1 for 2D, 2k+1 for 2.5D; the centre channel
            ``in_channels // 2`` is the slice super-resolved).
        out_channels: output channels.
        scale: upsampling factor, 2, 3 or 4.
        features: feature channels C (64).
        num_levels: doubling steps per URN (2).
        num_urns: URNs in the chain (2: dual).
        global_residual: add an aligned interpolation of the centre channel to the output: ``True`` or
            ``"cubic"`` (Keys cubic), ``"sinc"`` (zero-filled k-space, the zerofill baseline),
            ``"sinc_reflect"`` (the same, mirrored at the edges: the choice for training on patches),
            ``False``: none.
        zero_init_residual: with a global residual, start the reconstruction conv at zero, so the
            network starts as that interpolation (initialisation is not in the paper).

    Shapes:
        input (B, in_channels, h, w), values in [0, 1], any h, w;
        output (B, out_channels, scale*h, scale*w).

    >>> net = DURN(**DURN.PRESETS["small"], scale=3)
    >>> net(torch.rand(2, 1, 13, 17)).shape
    torch.Size([2, 1, 39, 51])
    """

    PRESETS: dict[str, dict[str, Any]] = {
        "default": {"features": 64, "num_levels": 2, "num_urns": 2},
        # seconds per CPU step on a 64x64 HR patch (see benchmarks/networks.py)
        "small": {"features": 16, "num_levels": 2, "num_urns": 2},
    }

    batch_pixels = 16384  # LR pixels per forward pass on a CPU (mrsr.inference.resolve_slice_batch)
    prefers_channels_last = True  # faster in channels_last on a CPU (benchmarks/inference_variants.py)

    def __init__(
        self,
        spatial_dims: int = 2,
        in_channels: int = 1,
        out_channels: int = 1,
        scale: int = 2,
        features: int = 64,
        num_levels: int = 2,
        num_urns: int = 2,
        global_residual: bool | str = False,
        zero_init_residual: bool = False,
    ) -> None:
        super().__init__()
        check_spatial_dims(spatial_dims, "DURN")
        self.scale = check_scale(scale, (2, 3, 4), "DURN")
        in_channels = check_positive(in_channels, "in_channels", "DURN")
        out_channels = check_positive(out_channels, "out_channels", "DURN")
        features = check_positive(features, "features", "DURN")
        num_levels = check_positive(num_levels, "num_levels", "DURN")
        num_urns = check_positive(num_urns, "num_urns", "DURN")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.residual_mode = check_residual(global_residual, "DURN")

        self.initial = conv2d(in_channels, features, 3)
        self.urns = nn.ModuleList([URN(features, num_levels) for _ in range(num_urns)])
        self.upsample = SubpixelUpsampler(2, features, self.scale)
        self.reconstruct = conv2d(features, out_channels, 3)
        if zero_init_residual:
            if not self.residual_mode:
                raise ValueError("DURN: zero_init_residual needs a global_residual (else the output starts at 0).")
            zero_init_(self.reconstruct)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Super-resolve ``x`` (B, in_channels, h, w) to (B, out_channels, scale*h, scale*w)."""
        shallow = self.initial(x)
        h = shallow
        ups: list[torch.Tensor] | None = None
        downs: list[torch.Tensor] | None = None
        for urn in self.urns:
            h, new_ups, new_downs = urn(h, ups, downs)
            ups, downs = new_ups, new_downs
        out = self.reconstruct(self.upsample(h + shallow))
        if self.residual_mode != "":
            out = out + upsample_aligned(centre_channel(x), self.scale, self.residual_mode).to(out.dtype)
        return out


register(
    NetworkSpec(
        "durn",
        DURN,
        bundle="durn",
        display_name="DURN",
        title="DURN, dual U-Net residual network",
        references=(
            "Dual U-Net residual networks for cardiac magnetic resonance images super-resolution",
        ),
    )
)
