"""Building blocks shared by the mrsr networks (2D, channel-first tensors ``(B, C, H, W)``).

Everything here is plain torch, TorchScript-scriptable, runs under ``torch.autocast`` (bf16 on CPU,
fp16/bf16 on GPU) and accepts ``channels_last`` inputs.

Contents:

- validation helpers: :func:`check_spatial_dims`, :func:`check_scale`;
- tensor helpers: :func:`centre_channel`, :func:`pad_to_multiple`;
- :class:`ResidualBlock`: conv-PReLU-conv with a local skip (EDSR/DURN style);
- :class:`ChannelAttention`: CBAM-style channel attention (average- and max-pooled descriptors
  through one shared MLP), used by MSRN's attention option, WASA and ICONet;
- :class:`SecondOrderChannelAttention`: covariance-pooled channel attention (SAN's SOCA);
- :class:`UpProjection` / :class:`DownProjection`: DBPN's back-projection units (DURN's up and
  down blocks);
- :class:`SubpixelUpsampler`: conv + PixelShuffle in x2 / x3 stages, ICNR initialised.

Other helpers append their own shared blocks at the end of this file, in clearly headed sections.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "check_spatial_dims",
    "check_scale",
    "check_positive",
    "centre_channel",
    "pad_to_multiple",
    "conv2d",
    "ResidualBlock",
    "ChannelAttention",
    "SecondOrderChannelAttention",
    "projection_geometry",
    "UpProjection",
    "DownProjection",
    "icnr_",
    "SubpixelUpsampler",
]


# --- validation and tensor helpers ---


def check_spatial_dims(spatial_dims: int, name: str = "this network") -> None:
    """Raise a clear ``ValueError`` unless ``spatial_dims == 2`` (the only case mrsr supports).

    >>> check_spatial_dims(2)
    """
    if spatial_dims != 2:
        raise ValueError(
            f"{name} supports spatial_dims=2 only (2D slices, or 2.5D with neighbouring slices as channels); "
            f"got spatial_dims={spatial_dims}."
        )


def check_scale(scale: int, allowed: tuple[int, ...] = (2, 3, 4), name: str = "this network") -> int:
    """Return ``int(scale)`` if it is one of ``allowed``, else raise a clear ``ValueError``.

    >>> check_scale(4)
    4
    """
    if isinstance(scale, bool) or int(scale) != scale or int(scale) not in allowed:
        raise ValueError(f"{name} supports scale in {list(allowed)}; got scale={scale!r}.")
    return int(scale)


def check_positive(value: int, what: str, name: str = "this network") -> int:
    """Return ``int(value)`` if it is a positive integer, else raise a clear ``ValueError``."""
    if isinstance(value, bool) or int(value) != value or int(value) < 1:
        raise ValueError(f"{name}: {what} must be a positive integer; got {value!r}.")
    return int(value)


INTERP_MODES = ("cubic", "linear", "nearest", "sinc", "sinc_reflect")


def check_interp_mode(mode: str, name: str = "this network") -> str:
    """Return ``mode`` if :func:`~mrsr.transforms.resample.upsample_aligned` knows it, else raise ``ValueError``."""
    if mode not in INTERP_MODES:
        raise ValueError(f"{name}: interp_mode must be one of {', '.join(INTERP_MODES)}; got {mode!r}.")
    return mode


def check_residual(global_residual: bool | str | None, name: str = "this network") -> str:
    """The interpolation of an optional global image residual: ``""`` (none), ``"cubic"`` or ``"sinc"``.

    ``True`` means ``"cubic"``; ``"sinc"`` is the zero-filled k-space interpolation (the zerofill
    baseline), the exact inverse grid of the k-space degradation; ``"sinc_reflect"`` the same on
    the mirrored signal, which does not ring across a patch's edges in training (see
    :func:`~mrsr.transforms.resample.interp_matrix`).
    """
    if global_residual is None or global_residual is False:
        return ""
    if global_residual is True:
        return "cubic"
    if global_residual in ("cubic", "sinc", "sinc_reflect"):
        return str(global_residual)
    raise ValueError(
        f"{name}: global_residual must be False, True, 'cubic', 'sinc' or 'sinc_reflect'; got {global_residual!r}."
    )


def centre_channel(x: torch.Tensor) -> torch.Tensor:
    """The centre channel ``C // 2`` of ``x`` (B, C, H, W), kept as (B, 1, H, W).

    With 2.5D input (2k+1 neighbouring slices as channels) this is the slice being super-resolved.

    >>> centre_channel(torch.arange(3.0).view(1, 3, 1, 1)).flatten().tolist()
    [1.0]
    """
    c = x.shape[1] // 2
    return x[:, c : c + 1]


def pad_to_multiple(x: torch.Tensor, multiple: int, mode: str = "reflect") -> torch.Tensor:
    """Pad the two last axes of ``x`` at their end (bottom/right) up to a multiple of ``multiple``.

    Padding only at the end keeps the sample grid's origin, so ``y[..., :H, :W]`` crops back.
    ``"reflect"`` mirrors repeatedly when the padding is longer than the image (a 26-pixel image
    padded to 256) and falls back to replication for single-pixel axes; ``"replicate"`` and
    ``"constant"`` (zeros) are passed to ``F.pad``.

    Args:
        x: (B, C, H, W) tensor.
        multiple: the padded sizes are the smallest multiples of this that are >= H and >= W.
        mode: ``"reflect"``, ``"replicate"`` or ``"constant"``.

    Returns:
        (B, C, H', W') tensor with ``H' % multiple == 0`` and ``W' % multiple == 0``.

    >>> pad_to_multiple(torch.rand(1, 1, 13, 17), 8).shape
    torch.Size([1, 1, 16, 24])
    """
    ph = (multiple - x.shape[-2] % multiple) % multiple
    pw = (multiple - x.shape[-1] % multiple) % multiple
    if ph == 0 and pw == 0:
        return x
    if mode == "constant":
        return F.pad(x, [0, pw, 0, ph])
    if mode == "replicate":
        return F.pad(x, [0, pw, 0, ph], mode="replicate")
    if mode != "reflect":
        raise ValueError("pad_to_multiple: mode must be 'reflect', 'replicate' or 'constant'; got " + mode)
    if ph > 0 and x.shape[-2] == 1:
        x = F.pad(x, [0, 0, 0, ph], mode="replicate")
        ph = 0
    if pw > 0 and x.shape[-1] == 1:
        x = F.pad(x, [0, pw, 0, 0], mode="replicate")
        pw = 0
    while ph > 0 or pw > 0:
        sh = min(ph, x.shape[-2] - 1)
        sw = min(pw, x.shape[-1] - 1)
        x = F.pad(x, [0, sw, 0, sh], mode="reflect")
        ph -= sh
        pw -= sw
    return x


def conv2d(in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1, bias: bool = True) -> nn.Conv2d:
    """A 2D convolution with 'same' padding ``kernel_size // 2`` (odd kernels keep the size at stride 1)."""
    return nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=kernel_size // 2, bias=bias)


def zero_init_(*convs: nn.Conv2d) -> None:
    """Zero the weights and biases of ``convs``: a residual branch ending in them starts as the identity.

    Used for the image-residual heads of networks with a global interpolation skip, so a network
    starts as that interpolation and learns corrections (the gradient still reaches the zeroed
    convs, and through them everything else after the first step).
    """
    for conv in convs:
        nn.init.zeros_(conv.weight)
        if conv.bias is not None:
            nn.init.zeros_(conv.bias)


# --- residual and attention blocks ---


def _hidden(channels: int, reduction: int) -> int:
    """Bottleneck width of an attention MLP: ``channels // reduction``, but at least ``min(channels, 4)``.

    A 1-unit ReLU bottleneck (16 channels, reduction 16) dies easily and then passes no gradient.
    """
    return max(channels // max(1, reduction), min(channels, 4))


class ResidualBlock(nn.Module):
    """Residual block ``x + res_scale * conv(PReLU(conv(x)))`` (3x3 convs, C -> C channels).

    The residual block of DURN (conv-PReLU-conv with a local skip). The PReLU slope is
    per channel, initialised to 0.25 (He et al.'s default).

    Args:
        channels: number of feature channels C.
        kernel_size: convolution kernel size (odd).
        res_scale: multiplier of the residual branch (EDSR uses 0.1 for very wide networks).

    Shapes:
        (B, C, H, W) -> (B, C, H, W).

    >>> ResidualBlock(8)(torch.rand(2, 8, 5, 7)).shape
    torch.Size([2, 8, 5, 7])
    """

    def __init__(self, channels: int, kernel_size: int = 3, res_scale: float = 1.0) -> None:
        super().__init__()
        self.conv1 = conv2d(channels, channels, kernel_size)
        self.act = nn.PReLU(channels, init=0.25)
        self.conv2 = conv2d(channels, channels, kernel_size)
        self.res_scale = float(res_scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(self.act(self.conv1(x))) * self.res_scale


class ChannelAttention(nn.Module):
    """Channel attention with average- and max-pooled descriptors through one shared MLP (CBAM).

    ``w = sigmoid(MLP(avgpool(x)) + MLP(maxpool(x)))``, output ``x * w``. The MLP is
    1x1 conv C -> C // reduction -> ReLU -> 1x1 conv back to C, with biases; the bottleneck is
    at least ``min(C, 4)`` wide (a 1-unit ReLU bottleneck dies and passes no gradient). Woo et al.,
    "CBAM: Convolutional Block Attention Module", ECCV 2018 (channel part); the WASA blog's RWAB
    uses the same form.

    Args:
        channels: number of channels C.
        reduction: MLP bottleneck ratio.

    Shapes:
        (B, C, H, W) -> (B, C, H, W).

    >>> ChannelAttention(32)(torch.rand(2, 32, 5, 7)).shape
    torch.Size([2, 32, 5, 7])
    """

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        hidden = _hidden(channels, reduction)
        self.mlp = nn.Sequential(nn.Conv2d(channels, hidden, 1), nn.ReLU(), nn.Conv2d(hidden, channels, 1))

    def weights(self, x: torch.Tensor) -> torch.Tensor:
        """The attention weights (B, C, 1, 1) in (0, 1)."""
        avg = x.mean(dim=(2, 3), keepdim=True)
        mx = x.amax(dim=(2, 3), keepdim=True)
        return torch.sigmoid(self.mlp(avg) + self.mlp(mx))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weights(x)


class SecondOrderChannelAttention(nn.Module):
    """Channel attention on second-order (covariance) statistics: SAN's SOCA.

    The channel covariance (C x C, over all H*W positions) is normalised by its trace, its matrix
    square root is approximated by Newton-Schulz iterations, the row means give one descriptor
    per channel, and a 1x1-conv MLP with a sigmoid turns them into weights. Dai et al.,
    "Second-order Attention Network for Single Image Super-Resolution", CVPR 2019. Cost
    O(C^2 H W + iterations * C^3) per image: linear in the number of pixels.

    Args:
        channels: number of channels C.
        reduction: MLP bottleneck ratio.
        iterations: Newton-Schulz iterations (SAN uses 5).
        eps: added to the trace before normalising (constant inputs give a zero covariance).

    Shapes:
        (B, C, H, W) -> (B, C, H, W).

    >>> SecondOrderChannelAttention(16)(torch.rand(2, 16, 5, 7)).shape
    torch.Size([2, 16, 5, 7])
    """

    def __init__(self, channels: int, reduction: int = 16, iterations: int = 5, eps: float = 1e-5) -> None:
        super().__init__()
        hidden = _hidden(channels, reduction)
        self.mlp = nn.Sequential(nn.Conv2d(channels, hidden, 1), nn.ReLU(), nn.Conv2d(hidden, channels, 1))
        self.iterations = int(iterations)
        self.eps = float(eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c = x.shape[0], x.shape[1]
        feats = x.reshape(b, c, -1)
        feats = feats - feats.mean(dim=-1, keepdim=True)
        cov = torch.matmul(feats, feats.transpose(1, 2)) / feats.shape[-1]
        eye = torch.eye(c, device=x.device, dtype=cov.dtype).expand(b, c, c)
        trace = (cov * eye).sum(dim=(1, 2)).view(b, 1, 1) + self.eps
        y = cov / trace
        z = eye
        for _ in range(self.iterations):
            t = 0.5 * (3.0 * eye - torch.matmul(z, y))
            y = torch.matmul(y, t)
            z = torch.matmul(t, z)
        root = y * torch.sqrt(trace)
        desc = root.mean(dim=-1).view(b, c, 1, 1).to(x.dtype)
        return x * torch.sigmoid(self.mlp(desc))


# --- DBPN back-projection units ---


def projection_geometry(scale: int) -> tuple[int, int, int]:
    """(kernel, stride, padding) of a back-projection (de)convolution for an integer ``scale``.

    ``kernel = scale + 4``, ``stride = scale``, ``padding = 2``: DBPN's (6, 2, 2) for x2, (8, 4, 2) for
    x4 and (12, 8, 2) for x8, extended to any factor. The deconvolution then maps n -> scale * n
    and the convolution scale * n -> n exactly, for every n.

    >>> projection_geometry(2), projection_geometry(3)
    ((6, 2, 2), (7, 3, 2))
    """
    if scale < 2:
        raise ValueError(f"Back-projection units need scale >= 2; got {scale}.")
    return scale + 4, scale, 2


class UpProjection(nn.Module):
    """DBPN up-projection unit: the up block of DURN's up branch.

    ``H0 = deconv(L)``; ``L0 = conv(H0)``; ``H1 = deconv(L0 - L)``; output ``H0 + H1``, each
    (de)convolution followed by a per-channel PReLU. Haris et al., "Deep Back-Projection Networks
    for Super-Resolution", CVPR 2018 (kernel geometry in :func:`projection_geometry`).

    Args:
        channels: number of feature channels C.
        scale: resolution factor of the unit (2 in DURN).

    Shapes:
        (B, C, h, w) -> (B, C, scale*h, scale*w), any h, w.

    >>> UpProjection(8)(torch.rand(1, 8, 5, 7)).shape
    torch.Size([1, 8, 10, 14])
    """

    def __init__(self, channels: int, scale: int = 2) -> None:
        super().__init__()
        k, s, p = projection_geometry(scale)
        self.up1 = nn.ConvTranspose2d(channels, channels, k, stride=s, padding=p)
        self.act1 = nn.PReLU(channels, init=0.25)
        self.down = nn.Conv2d(channels, channels, k, stride=s, padding=p)
        self.act2 = nn.PReLU(channels, init=0.25)
        self.up2 = nn.ConvTranspose2d(channels, channels, k, stride=s, padding=p)
        self.act3 = nn.PReLU(channels, init=0.25)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h0 = self.act1(self.up1(x))
        l0 = self.act2(self.down(h0))
        h1 = self.act3(self.up2(l0 - x))
        return h0 + h1


class DownProjection(nn.Module):
    """DBPN down-projection unit: the down block of DURN's down branch.

    ``L0 = conv(H)``; ``H0 = deconv(L0)``; ``L1 = conv(H0 - H)``; output ``L0 + L1``, each
    (de)convolution followed by a per-channel PReLU (Haris et al., CVPR 2018).

    Args:
        channels: number of feature channels C.
        scale: resolution factor of the unit (2 in DURN).

    Shapes:
        (B, C, H, W) -> (B, C, H/scale, W/scale); H and W must be multiples of ``scale``
        (a ``ValueError`` otherwise; DURN only feeds it what an :class:`UpProjection` produced).

    >>> DownProjection(8)(torch.rand(1, 8, 10, 14)).shape
    torch.Size([1, 8, 5, 7])
    """

    def __init__(self, channels: int, scale: int = 2) -> None:
        super().__init__()
        k, s, p = projection_geometry(scale)
        self.scale = s
        self.down1 = nn.Conv2d(channels, channels, k, stride=s, padding=p)
        self.act1 = nn.PReLU(channels, init=0.25)
        self.up = nn.ConvTranspose2d(channels, channels, k, stride=s, padding=p)
        self.act2 = nn.PReLU(channels, init=0.25)
        self.down2 = nn.Conv2d(channels, channels, k, stride=s, padding=p)
        self.act3 = nn.PReLU(channels, init=0.25)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2] % self.scale != 0 or x.shape[-1] % self.scale != 0:
            raise ValueError("DownProjection needs spatial sizes that are multiples of its scale.")
        l0 = self.act1(self.down1(x))
        h0 = self.act2(self.up(l0))
        l1 = self.act3(self.down2(h0 - x))
        return l0 + l1


# --- sub-pixel upsampling ---


def icnr_(weight: torch.Tensor, bias: torch.Tensor | None, scale: int) -> None:
    """ICNR initialisation, in place, of a conv feeding ``PixelShuffle(scale)``.

    The r*r output channels that PixelShuffle interleaves into one channel get identical weights
    (and biases), so the freshly initialised upsampler is a nearest-neighbour upsampler of a
    normally initialised conv: no checkerboard at the start of training. Aitken et al.,
    "Checkerboard artifact free sub-pixel convolution", arXiv:1707.02937.

    Args:
        weight: (C_out * scale**2, C_in, k, k) conv weight.
        bias: (C_out * scale**2,) conv bias or None.
        scale: the PixelShuffle factor.
    """
    r2 = scale * scale
    out_ch = weight.shape[0] // r2
    proto = nn.Conv2d(weight.shape[1], out_ch, (weight.shape[2], weight.shape[3]), bias=bias is not None)
    with torch.no_grad():
        weight.copy_(proto.weight.repeat_interleave(r2, dim=0))
        if bias is not None and proto.bias is not None:
            bias.copy_(proto.bias.repeat_interleave(r2, dim=0))


def _factorise_scale(scale: int) -> list[int]:
    """Split ``scale`` into x2 and x3 stages (8 -> [2, 2, 2]); any other prime stays one stage."""
    stages: list[int] = []
    rest = scale
    for f in (2, 3):
        while rest % f == 0:
            stages.append(f)
            rest //= f
    if rest > 1:
        stages.append(rest)
    return stages


class SubpixelUpsampler(nn.Module):
    """Sub-pixel convolution upsampler: [3x3 conv C -> C*r*r, PixelShuffle(r)] per stage.

    Powers of two use x2 stages (x4 = two, x8 = three), x3 one x3 stage (EDSR/MSRN layout; Shi et
    al., "Real-Time Single Image and Video Super-Resolution Using an Efficient Sub-Pixel
    Convolutional Neural Network", CVPR 2016). The convs are ICNR initialised (:func:`icnr_`).
    No activation between stages, as in EDSR and MSRN. ``scale=1`` is the identity (or one 3x3
    conv when ``out_channels`` differs from ``channels``).

    Args:
        spatial_dims: must be 2.
        channels: input channels C (kept through the stages).
        scale: integer upsampling factor (2, 3, 4, 8, ...).
        out_channels: channels of the output; the last stage's conv produces
            ``out_channels * r * r`` channels. ``None``: C.
        kernel_size: kernel size of the stage convs.
        icnr: ICNR-initialise the stage convs.

    Shapes:
        (B, C, h, w) -> (B, out_channels or C, scale*h, scale*w).

    >>> SubpixelUpsampler(2, 16, 4)(torch.rand(1, 16, 5, 7)).shape
    torch.Size([1, 16, 20, 28])
    """

    def __init__(
        self,
        spatial_dims: int = 2,
        channels: int = 64,
        scale: int = 2,
        out_channels: int | None = None,
        kernel_size: int = 3,
        icnr: bool = True,
    ) -> None:
        super().__init__()
        check_spatial_dims(spatial_dims, "SubpixelUpsampler")
        scale = check_positive(scale, "scale", "SubpixelUpsampler")
        out_ch = channels if out_channels is None else int(out_channels)
        self.scale = scale
        layers: list[nn.Module] = []
        stages = _factorise_scale(scale)
        for i, r in enumerate(stages):
            stage_out = out_ch if i == len(stages) - 1 else channels
            conv = conv2d(channels, stage_out * r * r, kernel_size)
            if icnr:
                icnr_(conv.weight, conv.bias, r)
            layers += [conv, nn.PixelShuffle(r)]
        if not stages and out_ch != channels:
            layers.append(conv2d(channels, out_ch, kernel_size))
        self.body = nn.Sequential(*layers) if layers else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


# --- wavelet and attention blocks ---
# Haar wavelet transforms, WASA's residual wavelet attention block, a bounded-memory global
# self-attention (WASA) and depth-wise large-kernel spatial attention (ICONet's RSCFL blocks).

__all__ += [
    "HaarDWT",
    "HaarIWT",
    "ResidualWaveletAttentionBlock",
    "SelfAttention2d",
    "LargeKernelAttention",
]


class HaarDWT(nn.Module):
    """One level of the 2D Haar discrete wavelet transform; orthonormal and parameter-free.

    With ``a = x[2i, 2j]``, ``b = x[2i+1, 2j]``, ``c = x[2i, 2j+1]``, ``d = x[2i+1, 2j+1]`` the
    subbands are ``LL = (a+b+c+d)/2``, ``HL = (-a-b+c+d)/2``, ``LH = (-a+b-c+d)/2`` and
    ``HH = (a-b-c+d)/2`` (the WASA blog's DWT), concatenated subband-major along the channels:
    output channel ``k * C + c`` is subband ``k`` (LL, HL, LH, HH) of input channel ``c``.
    :class:`HaarIWT` inverts it exactly. Pad odd sizes first (e.g. :func:`pad_to_multiple` with
    ``multiple=2``).

    Shapes:
        (B, C, H, W), H and W even -> (B, 4C, H/2, W/2).

    >>> HaarDWT()(torch.rand(2, 3, 6, 8)).shape
    torch.Size([2, 12, 3, 4])
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        if h % 2 != 0 or w % 2 != 0:
            raise ValueError("HaarDWT needs even spatial sizes; got " + str(h) + "x" + str(w) + " (pad first).")
        # pixel_unshuffle channel c*4 + 2*i + j holds x[2y+i, 2x+j]
        y = F.pixel_unshuffle(x, 2).reshape(b, c, 4, h // 2, w // 2)
        p00, p01, p10, p11 = y[:, :, 0], y[:, :, 1], y[:, :, 2], y[:, :, 3]
        ll = (p00 + p10 + p01 + p11) * 0.5
        hl = (p01 + p11 - p00 - p10) * 0.5
        lh = (p10 + p11 - p00 - p01) * 0.5
        hh = (p00 + p11 - p10 - p01) * 0.5
        return torch.cat([ll, hl, lh, hh], dim=1)


class HaarIWT(nn.Module):
    """Inverse of :class:`HaarDWT` (exact, parameter-free).

    Shapes:
        (B, 4C, h, w), subband-major [LL, HL, LH, HH] -> (B, C, 2h, 2w).

    >>> x = torch.rand(1, 2, 4, 6)
    >>> torch.allclose(HaarIWT()(HaarDWT()(x)), x, atol=1e-6)
    True
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c4, h, w = x.shape
        if c4 % 4 != 0:
            raise ValueError("HaarIWT needs a multiple of 4 channels; got " + str(c4) + ".")
        c = c4 // 4
        ll, hl, lh, hh = x[:, :c], x[:, c : 2 * c], x[:, 2 * c : 3 * c], x[:, 3 * c :]
        p00 = (ll - hl - lh + hh) * 0.5
        p10 = (ll - hl + lh - hh) * 0.5
        p01 = (ll + hl - lh - hh) * 0.5
        p11 = (ll + hl + lh + hh) * 0.5
        y = torch.stack([p00, p01, p10, p11], dim=2).reshape(b, c * 4, h, w)
        return F.pixel_shuffle(y, 2)


class ResidualWaveletAttentionBlock(nn.Module):
    """Residual wavelet attention block (RWAB) of WASA.

    ``x + conv3(IWT(CA(conv2(ReLU(conv1(DWT(x)))))))``: the 3x3 convs ``conv1``/``conv2`` work on the
    four Haar subbands (4C -> 4C channels, half resolution), :class:`ChannelAttention` re-weights
    the 4C subband channels, the inverse transform returns to full resolution and a 3x3 conv
    (C -> C) precedes the local skip. Odd sizes are padded by reflection at the bottom/right to
    the next even size before the DWT and cropped after the IWT, so any H, W work.

    Args:
        channels: feature channels C.
        reduction: bottleneck ratio of the channel attention's MLP (on 4C channels).

    Shapes:
        (B, C, H, W) -> (B, C, H, W), any H, W.

    >>> ResidualWaveletAttentionBlock(8)(torch.rand(2, 8, 5, 7)).shape
    torch.Size([2, 8, 5, 7])
    """

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        self.dwt = HaarDWT()
        self.conv1 = conv2d(4 * channels, 4 * channels, 3)
        self.act = nn.ReLU()
        self.conv2 = conv2d(4 * channels, 4 * channels, 3)
        self.attention = ChannelAttention(4 * channels, reduction)
        self.iwt = HaarIWT()
        self.conv3 = conv2d(channels, channels, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2], x.shape[-1]
        y = self.dwt(pad_to_multiple(x, 2, "reflect"))
        y = self.attention(self.conv2(self.act(self.conv1(y))))
        y = self.iwt(y)[:, :, :h, :w]
        return x + self.conv3(y)


class SelfAttention2d(nn.Module):
    """Global (non-local) self-attention over the pixels of a feature map, bounded in memory.

    The SAGAN-style block of the WASA seed: query and key 1x1 convs C -> C/``qk_reduction``,
    value 1x1 conv C -> C, ``out = x + gamma * softmax(q k^T / sqrt(C_qk)) v`` with the learnable
    scalar ``gamma`` initialised to 0 (the block starts as the identity; Zhang et al., "Self-Attention
    Generative Adversarial Networks", ICML 2019). Two changes keep it usable on whole slices:

    - Keys and values come from the feature map average-pooled to at most ``kv_size`` x ``kv_size``
      positions (spatial-reduction attention, as PVT: Wang et al., "Pyramid Vision Transformer",
      ICCV 2021). Every pixel still attends to the whole image, but to at most ``kv_size**2``
      regional summaries, so cost and memory grow linearly with the number of pixels. Maps no
      larger than ``kv_size`` per side (training patches) get the exact attention of the blog's network.
      ``kv_size=None`` (or 0) keeps every key: exact, quadratic cost.
    - The product runs through :func:`torch.nn.functional.scaled_dot_product_attention`, with the
      queries and keys zero-padded from C/``qk_reduction`` to C channels (scores unchanged, the
      scale set explicitly): PyTorch's fused kernels (flash attention on CPU, flash /
      memory-efficient on CUDA) need equal query, key and value widths, and otherwise fall back to
      the math kernel that materialises the whole score matrix. The queries go through in chunks
      of ``chunk_size``, so even the math kernel holds at most ``chunk_size x kv_size**2`` scores.

    Note: with ``gamma == 0`` the query, key and value convs get exactly zero gradient; they start
    learning once an optimiser step has moved ``gamma`` away from 0.

    Args:
        channels: feature channels C.
        qk_reduction: query/key width is ``max(1, C // qk_reduction)`` (seed: 8).
        kv_size: side of the largest key/value grid; None or 0 for no pooling.
        chunk_size: number of queries per attention call.

    Shapes:
        (B, C, H, W) -> (B, C, H, W), any H, W.

    >>> SelfAttention2d(16)(torch.rand(2, 16, 5, 7)).shape
    torch.Size([2, 16, 5, 7])
    """

    def __init__(self, channels: int, qk_reduction: int = 8, kv_size: int | None = 64, chunk_size: int = 4096) -> None:
        super().__init__()
        qk = max(1, channels // max(1, qk_reduction))
        self.query = nn.Conv2d(channels, qk, 1)
        self.key = nn.Conv2d(channels, qk, 1)
        self.value = nn.Conv2d(channels, channels, 1)
        self.gamma = nn.Parameter(torch.zeros(1))
        self.qk_channels = qk
        self.kv_size = 0 if kv_size is None else int(kv_size)
        if self.kv_size < 0:
            raise ValueError("SelfAttention2d: kv_size must be None, 0 or positive; got " + str(kv_size) + ".")
        self.chunk_size = int(chunk_size)
        if self.chunk_size < 1:
            raise ValueError("SelfAttention2d: chunk_size must be positive; got " + str(chunk_size) + ".")
        self.softmax_scale = float(qk) ** -0.5

    def attend(self, x: torch.Tensor) -> torch.Tensor:
        """The attention output ``softmax(q k^T / sqrt(C_qk)) v`` (B, C, H, W), before gamma and skip."""
        b, c, h, w = x.shape
        src = x
        if self.kv_size > 0 and (h > self.kv_size or w > self.kv_size):
            src = F.adaptive_avg_pool2d(x, [min(h, self.kv_size), min(w, self.kv_size)])
        q = self.query(x).flatten(2).transpose(1, 2).unsqueeze(1)  # (B, 1, N, C_qk)
        k = self.key(src).flatten(2).transpose(1, 2).unsqueeze(1)  # (B, 1, M, C_qk)
        v = self.value(src).flatten(2).transpose(1, 2).unsqueeze(1).contiguous()  # (B, 1, M, C)
        pad = v.shape[-1] - self.qk_channels
        if pad > 0:
            q = F.pad(q, [0, pad])
            k = F.pad(k, [0, pad])
        else:
            q = q.contiguous()
            k = k.contiguous()
        n = q.shape[2]
        if n <= self.chunk_size:
            out = F.scaled_dot_product_attention(q, k, v, scale=self.softmax_scale)
        else:
            parts: list[torch.Tensor] = []
            for start in range(0, n, self.chunk_size):
                qs = q[:, :, start : start + self.chunk_size]
                parts.append(F.scaled_dot_product_attention(qs, k, v, scale=self.softmax_scale))
            out = torch.cat(parts, dim=2)
        return out.squeeze(1).transpose(1, 2).reshape(b, c, h, w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.gamma * self.attend(x)


class LargeKernelAttention(nn.Module):
    """Depth-wise large-kernel spatial attention (LKA): ``x * pw(dw_dilated(dw_local(x)))``.

    A ``kernel_size`` x ``kernel_size`` depth-wise convolution decomposed into a local depth-wise
    conv (``2 * dilation - 1``), a dilated depth-wise conv (``kernel_size // dilation`` rounded to
    odd, dilation ``dilation``) and a 1x1 conv; the result gates the input element-wise. Spatial
    relations over a ~``kernel_size``-pixel window at a cost linear in the number of pixels. Guo et
    al., "Visual Attention Network", Computational Visual Media 2023 (default 21 = 5 + 7 dilated 3).

    Args:
        channels: feature channels C.
        kernel_size: size of the decomposed large kernel.
        dilation: dilation of the second depth-wise conv.

    Shapes:
        (B, C, H, W) -> (B, C, H, W), any H, W.

    >>> LargeKernelAttention(8)(torch.rand(2, 8, 5, 7)).shape
    torch.Size([2, 8, 5, 7])
    """

    def __init__(self, channels: int, kernel_size: int = 21, dilation: int = 3) -> None:
        super().__init__()
        if dilation < 1 or kernel_size < 3:
            raise ValueError("LargeKernelAttention: need kernel_size >= 3 and dilation >= 1.")
        k_local = 2 * dilation - 1
        k_dil = max(1, kernel_size // dilation)
        if k_dil % 2 == 0:
            k_dil += 1
        self.local = nn.Conv2d(channels, channels, k_local, padding=k_local // 2, groups=channels)
        self.dilated = nn.Conv2d(
            channels, channels, k_dil, padding=(k_dil // 2) * dilation, dilation=dilation, groups=channels
        )
        self.pointwise = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.pointwise(self.dilated(self.local(x)))
