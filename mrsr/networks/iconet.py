"""ICONet: iterative collaboration network guided by a reconstruction prior, for MR slices."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

from mrsr.networks import NetworkSpec, register
from mrsr.networks.blocks import (
    ChannelAttention,
    LargeKernelAttention,
    SubpixelUpsampler,
    centre_channel,
    check_interp_mode,
    check_positive,
    check_scale,
    check_spatial_dims,
    conv2d,
    zero_init_,
)
from mrsr.transforms.kspace import fourier_resize
from mrsr.transforms.resample import upsample_aligned

__all__ = ["RSCFLBlock", "SRRecFusion", "ICONetStage", "ICONet"]


class RSCFLBlock(nn.Module):
    """Residual spatial-channel feature learning block: two branches inside a residual block.

    ``y = GELU(conv3x3(x))`` (local features); spatial branch ``s = LKA(y)`` (depth-wise large-kernel attention,
    :class:`~mrsr.networks.blocks.LargeKernelAttention`); channel branch ``c = CA(y)``
    (:class:`~mrsr.networks.blocks.ChannelAttention`); output ``x + conv1x1([s, c])``. Both
    branches cost O(C * H * W): linear in the number of pixels.

    Args:
        channels: feature channels C.
        kernel_size: large-kernel size of the spatial branch.
        reduction: bottleneck ratio of the channel attention.

    Shapes:
        (B, C, H, W) -> (B, C, H, W), any H, W.

    >>> RSCFLBlock(16)(torch.rand(2, 16, 5, 7)).shape
    torch.Size([2, 16, 5, 7])
    """

    def __init__(self, channels: int, kernel_size: int = 21, reduction: int = 16) -> None:
        super().__init__()
        self.proj_in = conv2d(channels, channels, 3)
        self.act = nn.GELU()
        self.spatial = LargeKernelAttention(channels, kernel_size)
        self.channel = ChannelAttention(channels, reduction)
        self.proj_out = nn.Conv2d(2 * channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.act(self.proj_in(x))
        return x + self.proj_out(torch.cat([self.spatial(y), self.channel(y)], dim=1))


class SRRecFusion(nn.Module):
    """SR-Rec fusion: adaptive, per-pixel and per-channel weighting of SR and reconstruction features.

    ``logits = conv1x1(GELU(conv3x3([f_sr, f_rec])))`` (2C -> C -> 2C) are split into two C-channel
    maps and normalised by a softmax across the two branches, giving weights ``a_sr + a_rec = 1``
    at every pixel and channel; output ``f_sr + conv3x3(a_sr * f_sr + a_rec * f_rec)``.

    Args:
        channels: feature channels C of both branches.

    Shapes:
        f_sr, f_rec (B, C, H, W) -> (B, C, H, W).

    >>> SRRecFusion(8)(torch.rand(2, 8, 5, 7), torch.rand(2, 8, 5, 7)).shape
    torch.Size([2, 8, 5, 7])
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.gate = nn.Sequential(conv2d(2 * channels, channels, 3), nn.GELU(), conv2d(channels, 2 * channels, 1))
        self.out = conv2d(channels, channels, 3)

    def weights(self, f_sr: torch.Tensor, f_rec: torch.Tensor) -> torch.Tensor:
        """Fusion weights (B, 2, C, H, W), softmax-normalised over dim 1 (SR, Rec)."""
        logits = self.gate(torch.cat([f_sr, f_rec], dim=1))
        b, c2, h, w = logits.shape
        return torch.softmax(logits.reshape(b, 2, c2 // 2, h, w), dim=1)

    def forward(self, f_sr: torch.Tensor, f_rec: torch.Tensor) -> torch.Tensor:
        a = self.weights(f_sr, f_rec)
        fused = a[:, 0] * f_sr + a[:, 1] * f_rec
        return f_sr + self.out(fused)


class _Body(nn.Module):
    """``num_blocks`` RSCFL blocks and a 3x3 conv with a long skip: ``x + conv(blocks(x))``."""

    def __init__(self, channels: int, num_blocks: int, kernel_size: int, reduction: int) -> None:
        super().__init__()
        self.blocks = nn.Sequential(*[RSCFLBlock(channels, kernel_size, reduction) for _ in range(num_blocks)])
        self.conv = conv2d(channels, channels, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(self.blocks(x))


class ICONetStage(nn.Module):
    """One x2 stage of :class:`ICONet`: reconstruction branch, SR branch, SR-Rec fusion, upsampling.

    Given SR features ``f_sr``, reconstruction features ``f_rec`` (both (B, C, H, W)) and the current
    image estimate ``img`` (B, C_out, H, W)::

        f_rec = RecBody(f_rec);  rec = img + conv3x3(f_rec)                 prior, grid H x W
        f_sr  = SRBody(f_sr);    f = SRRecFusion(f_sr, f_rec)
        f_up  = SubpixelUpsampler x2 (f)                                   (B, C, 2H, 2W)
        sr    = upsample_aligned(rec, 2) + conv3x3(f_up)                   SR, grid 2H x 2W

    Returns:
        ``(f_up, sr, rec)``.
    """

    def __init__(
        self,
        channels: int,
        out_channels: int,
        num_blocks: int,
        kernel_size: int,
        reduction: int,
        interp_mode: str = "cubic",
    ) -> None:
        super().__init__()
        self.interp_mode = interp_mode
        self.rec_body = _Body(channels, num_blocks, kernel_size, reduction)
        self.rec_tail = conv2d(channels, out_channels, 3)
        self.sr_body = _Body(channels, num_blocks, kernel_size, reduction)
        self.fusion = SRRecFusion(channels)
        self.upsample = SubpixelUpsampler(2, channels, 2)
        self.sr_tail = conv2d(channels, out_channels, 3)

    def forward(
        self, f_sr: torch.Tensor, f_rec: torch.Tensor, img: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        f_rec = self.rec_body(f_rec)
        rec = img + self.rec_tail(f_rec)
        f_up = self.upsample(self.fusion(self.sr_body(f_sr), f_rec))
        sr = upsample_aligned(rec, 2, self.interp_mode).to(f_up.dtype) + self.sr_tail(f_up)
        return f_up, sr, rec


class ICONet(nn.Module):
    """ICONet: iterative collaboration of a reconstruction branch and an SR branch, in x2 stages.

    Kui, Ji, Zou, Li, Dai, Chen, Vera, Ruan, "Iterative Collaboration Network Guided by
    Reconstruction Prior for Medical Image Super-Resolution", IEEE Transactions on Computational
    Imaging, 2025 (arXiv:2504.16958). The paper's code and layer tables are not public;
    this is built from its abstract: a reconstruction branch produces an artifact-free image as a
    prior (our LR inputs come from k-space truncation and carry Gibbs ringing), an SR branch
    upsamples guided by it, an SR-Rec fusion module fuses the two adaptively, RSCFL blocks learn
    spatial and channel relations at linear cost, and a multi-stage model upsamples by 2 per stage
    with both branches supervised at every stage.

    Data flow for an LR input ``x`` (B, C_in, h, w) and ``S = log2(scale)`` stages; stage t
    (1..S) works on the grid ``2**(t-1) * (h, w)``::

        f_sr = head_sr(x);  img_1 = centre channel of x (repeated to C_out)
        stage t:  f_rec = rec_head_t(x if t == 1 else f_sr)              SR -> Rec link
                  f_sr, sr_t, rec_t = ICONetStage_t(f_sr, f_rec, img_t)  Rec -> SR fusion
                  img_{t+1} = sr_t
        output: sr_S (B, C_out, scale*h, scale*w)

    Outputs of :meth:`forward_stages` (what the multi-stage loss needs):

    - ``"sr"``: ``[sr_1, ..., sr_S]``, ``sr_t`` of shape (B, C_out, 2**t h, 2**t w); target: the HR
      image resized to that grid. ``sr_S`` is the final output.
    - ``"rec"``: ``[rec_1, ..., rec_S]``, ``rec_t`` of shape (B, C_out, 2**(t-1) h, 2**(t-1) w): the
      artifact-free reconstruction at the *input* grid of stage t (``rec_1`` on the LR grid, the
      de-ringed LR slice). Target: the HR image as an acquisition on that grid measures it.
    - :meth:`stage_targets` returns these targets: the HR k-space truncated by ``scale / 2**t`` (SR)
      and ``scale / 2**(t-1)`` (Rec), the degradation of docs/CONVENTIONS.md, whose grid sample ``m`` lies at HR
      sample ``m * k``. (Decimating the HR instead aliases: trained towards it, the reconstruction
      branch adds aliasing to the image its stage upsamples, and the small preset then stays
      below the zerofill baseline.)
      The paper's loss: L1 of every stage's SR and of the reconstruction, summed
      (``loss = sum_t |sr_t - T_sr_t|_1 + lambda * sum_t |rec_t - T_rec_t|_1``; lambda = 1 unless
      the trainer says otherwise).

    Sizes (one input and output channel): the default preset (64 features, 4 RSCFL blocks per
    branch per stage, channel-attention reduction 4) has 793,730 parameters at x2, 1,623,108 at x4
    and 2,452,486 at x8; the "small" preset (32 features, 2 blocks, reduction 4) 148,002 / 304,612 /
    461,222, well under a second per training step on a 64 x 64 HR patch on one CPU core.

    Choices made where the paper is silent:

    - RSCFL block (:class:`RSCFLBlock`): 3x3 conv + GELU (local features), then a spatial branch (VAN's large-kernel
      attention: depth-wise 5x5, depth-wise 7x7 dilated 3, 1x1; a 21-pixel window) and a channel
      branch (CBAM channel attention, avg + max pooled shared MLP) in parallel, concatenated,
      1x1 conv, residual. No normalisation layers (SR convention). The channel attention's
      bottleneck keeps at least 8 hidden units (reduction 4: 16 units at 64 features, 8 at 32):
      with RCAN's usual 16 the 1-4 hidden ReLU units of a small net are often all dead at
      initialisation, and that attention then gets no gradient.
    - Each branch body per stage: ``num_blocks`` RSCFL blocks, a 3x3 conv and a long skip.
    - SR-Rec fusion (:class:`SRRecFusion`): softmax weights over the two branches for every pixel
      and channel, from a 3x3/1x1 conv pair on the concatenated features; residual to the SR
      features. Communication goes both ways: the prior's features enter the SR branch through the
      fusion at every stage (Rec -> SR), and the next stage's reconstruction branch starts from the
      upsampled, fused SR features (SR -> Rec, a 3x3 conv ``rec_head``).
    - Reconstruction output: image residual on the current estimate (the centre LR channel at stage
      1, the previous stage's SR afterwards), at the stage's input grid; target as above.
    - Upsampling: sub-pixel conv (x2, ICNR initialised) of the fused features; each stage's SR is
      its reconstruction upsampled by :func:`~mrsr.transforms.resample.upsample_aligned` (cubic,
      the degradation's sample grid) plus a 3x3 conv of the upsampled features. The global residual
      of the centre channel thus runs through the stages; no ``F.interpolate``.
    - Stages do not share weights. ``scale`` 2, 4, 8 (one, two, three stages).
    - Input channels 1 (2D) or 2k+1 (2.5D, the centre channel ``in_channels // 2`` super-resolved);
      the heads see every channel, the image residual only the centre one.

    Args:
        spatial_dims: must be 2.
        in_channels: input channels (1 for 2D, 2k+1 for 2.5D).
        out_channels: output channels.
        scale: upsampling factor: 2, 4 or 8.
        features: feature channels C of both branches.
        num_blocks: RSCFL blocks per branch per stage.
        kernel_size: large-kernel size of the RSCFL spatial branch.
        reduction: channel-attention bottleneck ratio.
        interp_mode: each stage's image upsampling: "cubic" (default), "sinc"/"sinc_reflect" (zero-filled
            k-space; see :func:`~mrsr.transforms.resample.interp_matrix`), "linear" or "nearest".
        zero_init_residual: start every stage's reconstruction and SR image heads at zero, so the
            network starts as its interpolation of the input (initialisation is not in the paper; the
            shipped bundle trains this way: from a random start the small preset stays below zerofill).

    Shapes:
        input (B, in_channels, h, w), values in [0, 1], any h, w (odd too);
        output (B, out_channels, scale*h, scale*w).

    >>> net = ICONet(**ICONet.PRESETS["small"], scale=4)
    >>> net(torch.rand(2, 1, 13, 17)).shape
    torch.Size([2, 1, 52, 68])
    >>> [tuple(t.shape[-2:]) for t in net.forward_stages(torch.rand(1, 1, 13, 17))["rec"]]
    [(13, 17), (26, 34)]
    """

    PRESETS: dict[str, dict[str, Any]] = {
        "default": {"features": 64, "num_blocks": 4, "reduction": 4},
        # well under a second per CPU step on a 64x64 HR patch
        "small": {"features": 32, "num_blocks": 2, "reduction": 4},
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
        num_blocks: int = 4,
        kernel_size: int = 21,
        reduction: int = 4,
        interp_mode: str = "cubic",
        zero_init_residual: bool = False,
    ) -> None:
        super().__init__()
        check_spatial_dims(spatial_dims, "ICONet")
        interp_mode = check_interp_mode(interp_mode, "ICONet")
        self.scale = check_scale(scale, (2, 4, 8), "ICONet")
        in_channels = check_positive(in_channels, "in_channels", "ICONet")
        out_channels = check_positive(out_channels, "out_channels", "ICONet")
        features = check_positive(features, "features", "ICONet")
        num_blocks = check_positive(num_blocks, "num_blocks", "ICONet")
        kernel_size = check_positive(kernel_size, "kernel_size", "ICONet")
        reduction = check_positive(reduction, "reduction", "ICONet")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.num_stages = self.scale.bit_length() - 1  # one x2 stage per factor of 2

        self.sr_head = conv2d(in_channels, features, 3)
        self.rec_heads = nn.ModuleList(
            [conv2d(in_channels if t == 0 else features, features, 3) for t in range(self.num_stages)]
        )
        self.stages = nn.ModuleList(
            [
                ICONetStage(features, out_channels, num_blocks, kernel_size, reduction, interp_mode)
                for _ in range(self.num_stages)
            ]
        )
        if zero_init_residual:
            zero_init_(*(conv for stage in self.stages for conv in (stage.rec_tail, stage.sr_tail)))

    def forward_stages(self, x: torch.Tensor) -> dict[str, list[torch.Tensor]]:
        """Every stage's outputs, for the multi-stage loss.

        Args:
            x: (B, in_channels, h, w) LR input.

        Returns:
            ``{"sr": [sr_1, ..., sr_S], "rec": [rec_1, ..., rec_S]}`` with ``sr_t`` (B, out_channels,
            2**t h, 2**t w) and ``rec_t`` (B, out_channels, 2**(t-1) h, 2**(t-1) w); ``sr_S`` is
            :meth:`forward`'s output. Targets: :meth:`stage_targets`.
        """
        img = centre_channel(x).expand(-1, self.out_channels, -1, -1)
        f_sr = self.sr_head(x)
        src = x
        srs: list[torch.Tensor] = []
        recs: list[torch.Tensor] = []
        for rec_head, stage in zip(self.rec_heads, self.stages):
            f_rec = rec_head(src)
            f_sr, sr, rec = stage(f_sr, f_rec, img)
            srs.append(sr)
            recs.append(rec)
            src = f_sr
            img = sr
        return {"sr": srs, "rec": recs}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Super-resolve ``x`` (B, in_channels, h, w) to (B, out_channels, scale*h, scale*w)."""
        return self.forward_stages(x)["sr"][-1]

    @staticmethod
    def stage_factors(scale: int) -> dict[str, list[int]]:
        """The grid of every stage output, as the factor f of the HR grid (1/f) it lies on.

        ``sr_t`` lies on the grid of factor ``scale // 2**t``, ``rec_t`` on ``scale // 2**(t-1)``.

        >>> ICONet.stage_factors(4)
        {'sr': [2, 1], 'rec': [4, 2]}
        """
        scale = check_scale(scale, (2, 4, 8), "ICONet.stage_factors")
        stages = scale.bit_length() - 1
        return {
            "sr": [scale >> t for t in range(1, stages + 1)],
            "rec": [scale >> (t - 1) for t in range(1, stages + 1)],
        }

    @staticmethod
    def stage_targets(hr: torch.Tensor, scale: int) -> dict[str, list[torch.Tensor]]:
        """The targets of :meth:`forward_stages`'s outputs, from the HR image.

        Args:
            hr: (B, C_out, scale*h, scale*w) HR image.
            scale: the network's scale (2, 4 or 8).

        Returns:
            ``{"sr": [...], "rec": [...]}`` matching :meth:`forward_stages`: the magnitude of ``hr`` k-space
            truncated (the degradation of docs/CONVENTIONS.md, :func:`~mrsr.transforms.kspace.fourier_resize`) by
            ``scale // 2**t`` for ``sr_t`` and by ``scale // 2**(t-1)`` for ``rec_t`` (t = 1..S): what
            an acquisition on that grid measures, free of aliasing (plain decimation would alias, and
            the reconstruction branch would learn to add aliasing to the image it upsamples).
            Exact when ``hr`` is a whole image; for a patch of a larger image this treats the patch
            as periodic (wrap-around ringing at its edges): training therefore takes the targets
            from the whole slice (:class:`mrsr.engines.data.PairedPatchDataset` ``target_grids``).

        >>> t = ICONet.stage_targets(torch.rand(1, 1, 52, 68), 4)
        >>> [tuple(a.shape[-2:]) for a in t["sr"]], [tuple(a.shape[-2:]) for a in t["rec"]]
        ([(26, 34), (52, 68)], [(13, 17), (26, 34)])
        """
        factors = ICONet.stage_factors(scale)
        if hr.shape[-2] % scale != 0 or hr.shape[-1] % scale != 0:
            raise ValueError(f"ICONet.stage_targets: HR size {tuple(hr.shape[-2:])} is not a multiple of {scale}.")
        h, w = hr.shape[-2], hr.shape[-1]

        def on_grid(factor: int) -> torch.Tensor:
            return hr if factor == 1 else fourier_resize(hr, [h // factor, w // factor], [-2, -1]).abs()

        return {kind: [on_grid(f) for f in fs] for kind, fs in factors.items()}


register(
    NetworkSpec(
        "iconet",
        ICONet,
        loss="multistage",
        stages=True,
        bundle="iconet",
        display_name="ICONet",
        title="ICONet, iterative collaboration network guided by a reconstruction prior",
        references=(
            "Kui, Ji, Zou, Li, Dai, Chen, Vera, Ruan, Iterative Collaboration Network Guided by Reconstruction "
            "Prior for Medical Image Super-Resolution, IEEE TCI 2025, arXiv:2504.16958",
        ),
    )
)
