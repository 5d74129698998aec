"""WASA: CNN + Haar wavelet + attention super-resolution network for MR slices."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

from mrsr.networks import NetworkSpec, register
from mrsr.networks.blocks import (
    ResidualWaveletAttentionBlock,
    SelfAttention2d,
    SubpixelUpsampler,
    centre_channel,
    check_interp_mode,
    check_positive,
    check_scale,
    check_spatial_dims,
    conv2d,
)
from mrsr.transforms.resample import upsample_aligned

__all__ = ["WASA"]


class WASA(nn.Module):
    """WASA: residual wavelet attention blocks, global self-attention and sub-pixel upsampling.

    The network of a blog post ("基于卷积神经网络与小波变换的医学图像超分辨率算法复现", a
    reproduction of a CNN + wavelet + self-attention medical SR method, PyTorch code included;
    its PSNR/SSIM and efficiency tables are the blog's claims, not measurements of ours). It builds
    on the residual wavelet attention network idea (Liu et al., Neurocomputing 2021, the blog's
    reference [2]) and SAGAN's self-attention (Zhang et al., ICML 2019).

    Data flow, for an LR input ``x`` (B, C_in, h, w)::

        f0 = head(x)                                 3x3 conv C_in -> F
        f  = RWAB_n(... RWAB_1(f0))                  residual wavelet attention blocks (F -> F)
        f  = SelfAttention(f) + f0                   global self-attention, long skip
        y  = tail(Upsampler(f))                      sub-pixel x2/x3 stages, 3x3 conv F -> C_out
        x_up = upsample_aligned(x, scale)            cubic, on the degradation's sample grid
        out = y + skip(x_up) [+ centre(x_up)]        the blog's conv skip branch (+ identity residual)

    RWAB (:class:`~mrsr.networks.blocks.ResidualWaveletAttentionBlock`): Haar DWT -> 3x3 conv ->
    ReLU -> 3x3 conv (4F channels, half resolution) -> channel attention -> inverse DWT -> 3x3 conv,
    plus the block input. Skip branch: 5x5 conv C_in -> S, 3x3 conv S -> S, 3x3 conv S -> C_out,
    no activations (the blog's), on the upsampled input.

    Sizes (one input and output channel): the blog's defaults (64 features, 16 RWABs, skip width
    64, reduction 16) give 19,802,131 parameters at x2, 19,986,771 at x3 and 19,949,843 at x4 (the
    blog's table claims 18.3 M for its RGB version). The "small" preset (16 features, 4 RWABs, skip
    width 16, reduction 4) has 326,023 / 337,623 / 335,303 and takes a few hundredths of a second
    per training step on one 64 x 64 HR patch on one CPU core.

    Choices made where the blog is silent, or changed for MR:

    - Input channels 1 (2D) or 2k+1 (2.5D neighbouring slices); the centre channel
      ``in_channels // 2`` is the slice super-resolved. The blog's network is RGB.
    - The blog's skip input, ``F.interpolate(bicubic, align_corners=False)``, is replaced by
      :func:`~mrsr.transforms.resample.upsample_aligned` (Keys cubic, output pixel j sampled at LR
      coordinate j/s), the geometry of the k-space degradation; all input channels are upsampled.
    - ``global_residual=True`` (default) adds the aligned cubic upsampling of the centre channel
      (repeated over ``out_channels``) to the output: the blog's skip branch is a purely linear
      conv stack that would have to learn the identity from a random start; with the identity
      added it learns a correction, the convention of every mrsr network.
    - Odd sizes: each RWAB pads its input by reflection at the bottom/right to even sizes before
      the DWT and crops after the inverse DWT (padding at the end keeps the sample grid).
    - Channel attention: :class:`~mrsr.networks.blocks.ChannelAttention`, CBAM form
      ``sigmoid(MLP(avg) + MLP(max))`` on the 4F subband channels, reduction 16 (seed) by default
      (the blog's code applies the sigmoid to each path and sums, a weight in (0, 2); we keep the
      standard form). The small preset uses reduction 4 (16 hidden units): with 16 its 4 hidden
      ReLU units are too easily all dead at initialisation.
    - Self-attention: softmax scaled by ``1/sqrt(F/8)`` (the blog's text has the scale, its code
      not). It is :class:`~mrsr.networks.blocks.SelfAttention2d`: keys and values are taken from
      the feature map average-pooled to at most ``attn_kv_size`` x ``attn_kv_size`` (64 x 64 by
      default) positions, the queries at every pixel, in chunks of ``attn_chunk_size`` queries,
      through ``scaled_dot_product_attention`` with fused-kernel-friendly padding. Why: the blog's
      attention holds an (hw) x (hw) matrix, quadratic in the slice size (below); training
      patches (LR up to 64 x 64) still get the blog's exact global attention, while whole slices
      get a global attention to 4096 regional summaries at a cost linear in the pixel count.
      ``attn_kv_size=None`` restores exact attention (quadratic time, memory still bounded by the
      chunks and the fused kernels).
    - ``gamma`` starts at 0 (seed), so the attention's query/key/value convs receive zero gradient
      until the first optimiser step has moved ``gamma``.
    - Upsampler: :class:`~mrsr.networks.blocks.SubpixelUpsampler` (x2, x3, x4 = two x2 stages as
      the blog's x4), ICNR initialised; the blog has no x3 (one x3 pixel-shuffle stage here).
    - The loss (seed: L1 + 0.1 VGG-19 perceptual) is the trainer's business, not the network's.

    Attention memory (batch 1, F = 64, fp32), LR slice of 256 x 256 (N = 65,536 pixels) and
    512 x 512 (N = 262,144):

    - the blog's (explicit ``bmm`` + softmax): the N x N energy matrix alone is 16 GiB at 256 x 256 and
      256 GiB at 512 x 512 (twice that with the softmax output): not runnable.
    - here, computed: the N x F tensors (query padded to F, output) of 16 MiB each at 256 x 256
      and 64 MiB each at 512 x 512, the pooled keys/values (4096 x 64, 1 MiB each) and the scores
      of one chunk: 4096 x 4096 x 4 B = 64 MiB if the math kernel is used, a few MiB per thread
      with the fused kernels.
    - here, measured on a 2-core CPU (growth of the peak resident memory over an eval forward of
      the attention block alone: q/k/v, scores and output, not the 16 / 64 MiB input; torch
      2.13): 59 MiB at 256 x 256 and 212 MiB at 512 x 512 with the flash kernel PyTorch picks
      (0.6 s / 3.5 s); 352 / 343 MiB when the math kernel is forced (chunked scores). Exact
      attention (``attn_kv_size=None``) at 256 x 256: 91 MiB with the flash kernel, but 17.8 s.

    Args:
        spatial_dims: must be 2.
        in_channels: input channels (1 for 2D, 2k+1 for 2.5D).
        out_channels: output channels.
        scale: upsampling factor: 2, 3 or 4.
        features: feature channels F (seed: 64).
        num_blocks: number of RWABs (seed: 16).
        reduction: channel-attention bottleneck ratio in the RWABs (seed: 16).
        skip_features: width S of the skip branch's convs (seed: the feature width, 64).
        attn_kv_size: largest side of the self-attention's key/value grid; None for exact attention.
        attn_chunk_size: queries per attention call.
        global_residual: add the aligned upsampling of the centre channel to the output.
        interp_mode: the upsampling of the skip branch and the global residual: "cubic" (the blog's
            bicubic, on the degradation's grid), "sinc"/"sinc_reflect" (zero-filled k-space; see
            :func:`~mrsr.transforms.resample.interp_matrix`), "linear" or "nearest".

    Shapes:
        input (B, in_channels, h, w), values in [0, 1], any h, w (odd too);
        output (B, out_channels, scale*h, scale*w).

    >>> net = WASA(**WASA.PRESETS["small"], scale=3)
    >>> net(torch.rand(2, 1, 13, 17)).shape
    torch.Size([2, 1, 39, 51])
    """

    PRESETS: dict[str, dict[str, Any]] = {
        "default": {"features": 64, "num_blocks": 16, "skip_features": 64, "reduction": 16},
        # seconds per CPU step on a 64x64 HR patch
        "small": {"features": 16, "num_blocks": 4, "skip_features": 16, "reduction": 4},
    }

    batch_pixels = 65536  # LR pixels per forward pass on a CPU (mrsr.inference.resolve_slice_batch)

    def __init__(
        self,
        spatial_dims: int = 2,
        in_channels: int = 1,
        out_channels: int = 1,
        scale: int = 2,
        features: int = 64,
        num_blocks: int = 16,
        reduction: int = 16,
        skip_features: int = 64,
        attn_kv_size: int | None = 64,
        attn_chunk_size: int = 4096,
        global_residual: bool = True,
        interp_mode: str = "cubic",
    ) -> None:
        super().__init__()
        check_spatial_dims(spatial_dims, "WASA")
        self.scale = check_scale(scale, (2, 3, 4), "WASA")
        in_channels = check_positive(in_channels, "in_channels", "WASA")
        out_channels = check_positive(out_channels, "out_channels", "WASA")
        features = check_positive(features, "features", "WASA")
        num_blocks = check_positive(num_blocks, "num_blocks", "WASA")
        reduction = check_positive(reduction, "reduction", "WASA")
        skip_features = check_positive(skip_features, "skip_features", "WASA")
        attn_chunk_size = check_positive(attn_chunk_size, "attn_chunk_size", "WASA")
        if attn_kv_size is not None:
            attn_kv_size = check_positive(attn_kv_size, "attn_kv_size", "WASA")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.global_residual = bool(global_residual)
        self.interp_mode = check_interp_mode(interp_mode, "WASA")

        self.head = conv2d(in_channels, features, 3)
        self.body = nn.Sequential(*[ResidualWaveletAttentionBlock(features, reduction) for _ in range(num_blocks)])
        self.attention = SelfAttention2d(features, 8, attn_kv_size, attn_chunk_size)
        self.upsample = SubpixelUpsampler(2, features, self.scale)
        self.tail = conv2d(features, out_channels, 3)
        self.skip = nn.Sequential(
            conv2d(in_channels, skip_features, 5),
            conv2d(skip_features, skip_features, 3),
            conv2d(skip_features, out_channels, 3),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Super-resolve ``x`` (B, in_channels, h, w) to (B, out_channels, scale*h, scale*w)."""
        x_up = upsample_aligned(x, self.scale, self.interp_mode)
        f0 = self.head(x)
        f = self.attention(self.body(f0)) + f0
        out = self.tail(self.upsample(f)) + self.skip(x_up)
        if self.global_residual:
            centre = centre_channel(x_up)
            out = out + centre.expand(-1, self.out_channels, -1, -1).to(out.dtype)
        return out


register(
    NetworkSpec(
        "wasa",
        WASA,
        loss="l1_perceptual",
        bundle="wasa",
        display_name="WASA",
        title="WASA, CNN + Haar wavelet + attention SR network",
        references=(
            "Liu et al., Residual wavelet attention network for medical image super-resolution, Neurocomputing, 2021",
            "Zhang, Goodfellow, Metaxas, Odena, Self-Attention Generative Adversarial Networks, ICML 2019",
        ),
    )
)
