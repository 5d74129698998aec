"""MedGAN (Armanious et al., 2019): the CasNet generator and the PatchGAN discriminator."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from mrsr.networks import NetworkSpec, register
from mrsr.networks.blocks import (
    centre_channel,
    check_interp_mode,
    check_positive,
    check_scale,
    check_spatial_dims,
    pad_to_multiple,
    zero_init_,
)
from mrsr.transforms.resample import upsample_aligned

__all__ = ["UBlock", "CasNet", "PatchDiscriminator"]


class UBlock(nn.Module):
    """One U-block of CasNet: the pix2pix U-Net encoder-decoder with skip connections.

    Encoder: ``num_levels`` 4x4 convs with stride 2, channels ``min(features * 2^i, max_features)``
    (64-128-256-512-512-512-512-512 for 8 levels), LeakyReLU(0.2) before every conv but the
    first, batch norm after every conv but the first and the innermost. Decoder: the mirror, 4x4
    transposed convs with stride 2, ReLU before each, batch norm after each but the outermost,
    concatenating the encoder feature of the same resolution (U-Net skip); the outermost ends in
    Tanh (or nothing, ``final_tanh=False``). Convs followed by batch norm have no bias. Isola et
    al., "Image-to-Image Translation with Conditional Adversarial Networks", CVPR 2017.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        features: channels of the first level.
        num_levels: encoder depth; H and W must be multiples of ``2 ** num_levels``.
        max_features: channel cap.
        dropout: dropout after the batch norm of the three decoder levels above the innermost
            one, where their channels reached the cap (pix2pix's placement and 0.5; 0 here).
        final_tanh: end with Tanh.

    Shapes:
        (B, in_channels, H, W) -> (B, out_channels, H, W).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        features: int = 64,
        num_levels: int = 8,
        max_features: int = 512,
        dropout: float = 0.0,
        final_tanh: bool = True,
    ) -> None:
        super().__init__()
        chans = [min(features * 2**i, max_features) for i in range(num_levels)]
        downs: list[nn.Module] = []
        for i in range(num_levels):
            c_in = in_channels if i == 0 else chans[i - 1]
            layers: list[nn.Module] = []
            if i > 0:
                layers.append(nn.LeakyReLU(0.2))
            use_norm = 0 < i < num_levels - 1
            layers.append(nn.Conv2d(c_in, chans[i], 4, stride=2, padding=1, bias=not use_norm))
            if use_norm:
                layers.append(nn.BatchNorm2d(chans[i]))
            downs.append(nn.Sequential(*layers))
        ups: list[nn.Module] = []
        for i in range(num_levels - 1, -1, -1):  # innermost first
            c_in = chans[i] if i == num_levels - 1 else 2 * chans[i]
            layers = [nn.ReLU()]
            if i == 0:
                layers.append(nn.ConvTranspose2d(c_in, out_channels, 4, stride=2, padding=1, bias=True))
                if final_tanh:
                    layers.append(nn.Tanh())
            else:
                layers.append(nn.ConvTranspose2d(c_in, chans[i - 1], 4, stride=2, padding=1, bias=False))
                layers.append(nn.BatchNorm2d(chans[i - 1]))
                if dropout > 0 and 1 <= num_levels - 1 - i <= 3 and chans[i] == max_features:
                    layers.append(nn.Dropout(dropout))
            ups.append(nn.Sequential(*layers))
        self.downs = nn.ModuleList(downs)
        self.ups = nn.ModuleList(ups)
        self.num_levels = num_levels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips: list[torch.Tensor] = []
        h = x
        for down in self.downs:
            h = down(h)
            skips.append(h)
        for j, up in enumerate(self.ups):
            if j > 0:
                h = torch.cat([h, skips[self.num_levels - 1 - j]], dim=1)
            h = up(h)
        return h


class CasNet(nn.Module):
    """CasNet, MedGAN's generator: a cascade of U-blocks refining the image on the HR grid.

    Armanious et al., "MedGAN: Medical image translation using GANs", Computerized Medical Imaging
    and Graphics 79, 2020 (arXiv:1806.06397). ``num_blocks`` :class:`UBlock` (6 in the
    paper) in sequence, each an 8-level encoder-decoder (64-128-256-512-512-512-512-512, batch
    norm, LeakyReLU/ReLU, skips) that translates the previous block's image.

    Interface: like every mrsr network, LR in, SR out. MedGAN translates images on one grid, so
    ``forward`` first interpolates the LR (B, C, h, w) to (B, C, s*h, s*w) with
    :func:`~mrsr.transforms.resample.upsample_aligned` (cubic, on the degradation's sample grid),
    then runs the cascade. ``scale=1`` takes input already on the HR grid (e.g. zero-filled LR).

    The default size has 326 M parameters (6 x 54.4 M; pix2pix's 8-level U-Net is 54.4 M), the
    "several hundred million" of MedGAN's full cascade; the paper gives no exact count.

    Choices made where the paper is silent, or changed for SR:

    - Intensities: the input in [0, 1] is mapped to [-1, 1] for the cascade and the output mapped
      back with ``(y + 1) / 2``; every U-block ends in Tanh (pix2pix/MedGAN), so intermediate
      images stay in the input's range. ``final_tanh=False`` makes the last block linear (output
      not bounded to [0, 1]).
    - Cascade channels: the first block maps ``in_channels`` (2.5D neighbours) to
      ``out_channels``, the later ones ``out_channels`` to ``out_channels``; no skip from the input
      to later blocks (MedGAN feeds each block only the previous output).
    - Any size: the HR-grid image is padded at its bottom/right to a multiple of
      ``2 ** num_levels`` (256 for the default; reflection, repeated when the pad is longer than
      the image, :func:`~mrsr.networks.blocks.pad_to_multiple`) and the output cropped back. Small
      images therefore cost as much as a 256x256 one with the default depth; use fewer levels
      (the small preset has 5) for small patches.
    - Dropout: 0 by default (pix2pix uses 0.5 as its noise source; MedGAN, like pix2pix, has no
      noise input). The innermost non-bottleneck levels use batch norm; the innermost encoder conv
      has none (as pix2pix), so a 1x1 bottleneck with batch size 1 trains.
    - Interpolation: cubic on the degradation's grid (``interp_mode``); "linear"/"nearest" are
      available. MedGAN's "zero-filled" alternative is ``scale=1`` on a zero-filled input.

    Args:
        spatial_dims: must be 2.
        in_channels: input channels (1 for 2D, 2k+1 for 2.5D).
        out_channels: output channels.
        scale: 1 (input on the HR grid), 2, 3 or 4.
        features: channels of the first U-block level (64).
        num_levels: encoder depth of each U-block (8).
        max_features: channel cap of the U-blocks (512).
        num_blocks: number of U-blocks in the cascade (6).
        dropout: decoder dropout of the innermost levels (0).
        final_tanh: end the last U-block with Tanh.
        interp_mode: interpolation to the HR grid: "cubic", "linear", "nearest", "sinc" (zero-filled
            k-space) or "sinc_reflect" (the same, mirrored at the edges; see
            :func:`~mrsr.transforms.resample.interp_matrix`).
        pad_mode: padding to a multiple of ``2 ** num_levels``: "reflect", "replicate", "constant".
        global_residual: add the interpolated centre channel to the output (not in MedGAN; our
            option for SR, as MSRN/DURN's): the cascade then learns a correction, its last block
            is linear (no Tanh), its last conv starts at zero (the network starts as the
            interpolation) and ``final_tanh`` is ignored.

    Shapes:
        input (B, in_channels, h, w), values in [0, 1], any h, w;
        output (B, out_channels, scale*h, scale*w).

    >>> net = CasNet(**CasNet.PRESETS["small"], scale=3)
    >>> net(torch.rand(2, 1, 13, 17)).shape
    torch.Size([2, 1, 39, 51])
    """

    PRESETS: dict[str, dict[str, Any]] = {
        "default": {"features": 64, "num_levels": 8, "max_features": 512, "num_blocks": 6},
        # seconds per CPU step on a 64x64 HR patch (see benchmarks/networks.py)
        "small": {"features": 16, "num_levels": 5, "max_features": 128, "num_blocks": 2},
    }

    batch_pixels = 65536  # LR pixels per forward pass on a CPU (mrsr.inference.resolve_slice_batch)

    def __init__(
        self,
        spatial_dims: int = 2,
        in_channels: int = 1,
        out_channels: int = 1,
        scale: int = 2,
        features: int = 64,
        num_levels: int = 8,
        max_features: int = 512,
        num_blocks: int = 6,
        dropout: float = 0.0,
        final_tanh: bool = True,
        interp_mode: str = "cubic",
        pad_mode: str = "reflect",
        global_residual: bool = False,
    ) -> None:
        super().__init__()
        check_spatial_dims(spatial_dims, "CasNet")
        self.scale = check_scale(scale, (1, 2, 3, 4), "CasNet")
        in_channels = check_positive(in_channels, "in_channels", "CasNet")
        out_channels = check_positive(out_channels, "out_channels", "CasNet")
        features = check_positive(features, "features", "CasNet")
        num_levels = check_positive(num_levels, "num_levels", "CasNet")
        max_features = check_positive(max_features, "max_features", "CasNet")
        num_blocks = check_positive(num_blocks, "num_blocks", "CasNet")
        interp_mode = check_interp_mode(interp_mode, "CasNet")
        if pad_mode not in ("reflect", "replicate", "constant"):
            raise ValueError(f"CasNet: pad_mode must be 'reflect', 'replicate' or 'constant'; got {pad_mode!r}.")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"CasNet: dropout must lie in [0, 1); got {dropout}.")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.interp_mode, self.pad_mode = interp_mode, pad_mode
        self.global_residual = bool(global_residual)
        self.multiple = 2**num_levels
        self.blocks = nn.ModuleList(
            [
                UBlock(
                    in_channels if i == 0 else out_channels,
                    out_channels,
                    features,
                    num_levels,
                    max_features,
                    dropout,
                    (final_tanh and not self.global_residual) or i < num_blocks - 1,
                )
                for i in range(num_blocks)
            ]
        )
        if self.global_residual:  # start exactly at the interpolation: the correction is 0
            zero_init_(self.blocks[-1].ups[-1][1])

    @property
    def input_multiple(self) -> int:
        """LR tile sides that are a multiple of this need no padding: the HR grid is padded to ``multiple``."""
        return max(1, self.multiple // math.gcd(self.multiple, self.scale))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Super-resolve ``x`` (B, in_channels, h, w) to (B, out_channels, scale*h, scale*w)."""
        if self.scale > 1:
            x = upsample_aligned(x, self.scale, self.interp_mode)
        height, width = x.shape[-2], x.shape[-1]
        h = pad_to_multiple(x * 2.0 - 1.0, self.multiple, self.pad_mode)
        for block in self.blocks:
            h = block(h)
        h = h[:, :, :height, :width]
        if self.global_residual:  # the cascade's [-1, 1]-scaled output is a correction of the interpolation
            return centre_channel(x) + 0.5 * h
        return (h + 1.0) * 0.5


class PatchDiscriminator(nn.Module):
    """PatchGAN discriminator with spectral normalisation: MedGAN's discriminator and feature extractor.

    pix2pix's 70x70 PatchGAN (``num_layers=3``): 4x4 convs, stride 2 for the first
    ``num_layers``, then two stride-1 convs, channels 64-128-256-512-1, LeakyReLU(0.2) between
    them; every conv spectrally normalised (Miyato et al., ICLR 2018), as MedGAN does for its
    discriminator. It returns one logit per (overlapping) 70x70 patch. The LeakyReLU outputs of
    the hidden layers are MedGAN's discriminator features for the perceptual loss
    (:meth:`features`). Armanious et al., MedGAN, CMIG 2020; Isola et al., pix2pix, CVPR 2017.

    Conditional use: the image (generated or real, on the HR grid) and the conditioning input (the
    LR interpolated to the HR grid) are concatenated along channels; ``in_channels`` counts both
    (2 for 1-channel images and a 1-channel condition). Pass the condition as the second argument
    or concatenate yourself.

    Choices made where the papers are silent:

    - No batch norm (pix2pix has it in layers 2-4): spectral normalisation replaces it, and
      batch statistics would make the perceptual features depend on the rest of the batch.
    - Features: the four hidden LeakyReLU outputs (64, 128, 256, 512 channels by default).
    - Output logits (no sigmoid): use a logits-based loss (BCE-with-logits, hinge or LSGAN).
    - Exported with ``torch.jit.trace`` (spectral normalisation's parametrisation is not
      scriptable); in eval mode the weights are fixed and tracing is exact.

    Args:
        spatial_dims: must be 2.
        in_channels: channels of the image plus the condition.
        features: channels of the first layer (64).
        num_layers: stride-2 layers (3 gives the 70x70 receptive field).
        max_features: channel cap (512).
        spectral: apply spectral normalisation.

    Shapes:
        input (B, in_channels, H, W) (or image (B, c1, H, W) and condition (B, c2, H, W) with
        c1 + c2 = in_channels), H, W >= 16 for the default; logits (B, 1, H', W') with
        H' = H / 8 - 2 for H a multiple of 8 (30x30 for 256x256).

    >>> d = PatchDiscriminator(**PatchDiscriminator.PRESETS["small"])
    >>> d(torch.rand(2, 1, 64, 64), torch.rand(2, 1, 64, 64)).shape
    torch.Size([2, 1, 6, 6])
    """

    PRESETS: dict[str, dict[str, Any]] = {
        "default": {"features": 64, "num_layers": 3, "max_features": 512},
        "small": {"features": 16, "num_layers": 3, "max_features": 128},
    }

    def __init__(
        self,
        spatial_dims: int = 2,
        in_channels: int = 2,
        features: int = 64,
        num_layers: int = 3,
        max_features: int = 512,
        spectral: bool = True,
    ) -> None:
        super().__init__()
        check_spatial_dims(spatial_dims, "PatchDiscriminator")
        in_channels = check_positive(in_channels, "in_channels", "PatchDiscriminator")
        features = check_positive(features, "features", "PatchDiscriminator")
        num_layers = check_positive(num_layers, "num_layers", "PatchDiscriminator")
        self.in_channels = in_channels

        def sn(conv: nn.Conv2d) -> nn.Module:
            return spectral_norm(conv) if spectral else conv

        chans = [min(features * 2**i, max_features) for i in range(num_layers + 1)]
        hidden: list[nn.Module] = []
        c_prev = in_channels
        for i, c in enumerate(chans):
            stride = 2 if i < num_layers else 1
            hidden.append(nn.Sequential(sn(nn.Conv2d(c_prev, c, 4, stride=stride, padding=1)), nn.LeakyReLU(0.2)))
            c_prev = c
        self.hidden = nn.ModuleList(hidden)
        self.head = sn(nn.Conv2d(c_prev, 1, 4, stride=1, padding=1))

    def _input(self, x: torch.Tensor, condition: torch.Tensor | None) -> torch.Tensor:
        if condition is not None:
            x = torch.cat([x, condition.to(x.dtype)], dim=1)
        if not torch.jit.is_tracing() and x.shape[1] != self.in_channels:
            raise ValueError(
                f"PatchDiscriminator expects {self.in_channels} channels (image + condition), got {x.shape[1]}."
            )
        return x

    def features(self, x: torch.Tensor, condition: torch.Tensor | None = None) -> list[torch.Tensor]:
        """The hidden-layer feature maps (after each LeakyReLU), for MedGAN's perceptual loss.

        Returns:
            ``num_layers + 1`` tensors, (B, chans[i], H_i, W_i).
        """
        h = self._input(x, condition)
        feats: list[torch.Tensor] = []
        for layer in self.hidden:
            h = layer(h)
            feats.append(h)
        return feats

    def forward_with_features(
        self, x: torch.Tensor, condition: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Logits and hidden features in one pass (the generator step needs both)."""
        feats = self.features(x, condition)
        return self.head(feats[-1]), feats

    def forward(self, x: torch.Tensor, condition: torch.Tensor | None = None) -> torch.Tensor:
        """Patch logits (B, 1, H', W') of ``x`` (concatenated with ``condition`` when given)."""
        return self.head(self.features(x, condition)[-1])


register(
    NetworkSpec(
        "casnet",
        CasNet,
        aliases=("medgan",),
        loss="medgan",
        discriminator="patch_discriminator",
        bundle="medgan",
        display_name="MedGAN",
        title="MedGAN's CasNet generator, trained with its conditional GAN",
        references=(
            "Armanious et al., MedGAN: Medical image translation using GANs, Computerized Medical Imaging and "
            "Graphics 79, 2020, arXiv:1806.06397",
        ),
    )
)
register(
    NetworkSpec(
        "patch_discriminator",
        PatchDiscriminator,
        aliases=("patchgan", "discriminator"),
        loss="none",
        super_resolution=False,
        display_name="PatchGAN",
        title="MedGAN's patch discriminator (spectrally normalised)",
        references=(
            "Isola, Zhu, Zhou, Efros, Image-to-Image Translation with Conditional Adversarial Networks, CVPR 2017",
        ),
    )
)
