"""Interpolation baselines that run through the same inference path as the networks.

Both sample the LR slice where the k-space degradation put it (LR sample ``m`` at HR position
``m * N / n``, see docs/CONVENTIONS.md), so they are not handicapped by a half-pixel shift.
"""

from __future__ import annotations

import torch
from torch import nn

from mrsr.errors import MrsrError
from mrsr.transforms.kspace import fourier_resize
from mrsr.transforms.resample import resize_axis

__all__ = ["BASELINES", "ZeroFill", "Bicubic", "get_baseline", "is_baseline", "is_trained_network"]


def is_trained_network(predictor: object) -> bool:
    """A trained network, not an interpolation baseline: a module with parameters."""
    return isinstance(predictor, nn.Module) and any(True for _ in predictor.parameters())


class _Interpolation(nn.Module):
    """Shared interface: (B, C, h, w) -> (B, 1, round(s*h), round(s*w)), centre channel only."""

    def __init__(
        self,
        spatial_dims: int = 2,
        in_channels: int = 1,
        out_channels: int = 1,
        scale: float | tuple[float, float] = 2.0,
    ) -> None:
        super().__init__()
        if spatial_dims != 2:
            raise MrsrError(f"{type(self).__name__} works on 2D slices (spatial_dims=2), got {spatial_dims}.")
        if out_channels != 1:
            raise MrsrError(f"{type(self).__name__} produces one channel, got out_channels={out_channels}.")
        scales = (scale, scale) if isinstance(scale, (int, float)) else tuple(scale)
        if len(scales) != 2 or not all(s >= 1 for s in scales):
            raise MrsrError(f"scale must be >= 1 (one value or one per in-plane axis), got {scale}.")
        self.in_channels, self.scales = in_channels, (float(scales[0]), float(scales[1]))

    def output_size(self, h: int, w: int) -> tuple[int, int]:
        return int(round(h * self.scales[0])), int(round(w * self.scales[1]))

    def centre(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1] // 2
        return x[:, c : c + 1].float()


class ZeroFill(_Interpolation):
    """Sinc interpolation by zero-padding k-space: the pseudo-inverse of the degradation.

    Degrading the output again (:class:`~mrsr.transforms.KSpaceTruncate` by ``scale``) returns the
    input exactly, at odd and even sizes, as a data-consistent network's output does: zero-filling is
    data consistency (:func:`~mrsr.transforms.kspace_consistency`) applied to an image of zeros. On an
    even LR grid the degradation kept the mean of the HR bins ``±n/2`` as the LR's Nyquist bin;
    zero-filling gives both that value, the projection onto the kept band that the degradation
    implies. So at an even LR size the output does not pass exactly through the LR samples: at HR
    position ``m * scale`` it is the LR sample plus its Nyquist component again (half of that
    component would pass through them, but degrade back to half of it).

    Args:
        spatial_dims: must be 2.
        in_channels: channels of the input (the centre one is used).
        out_channels: must be 1.
        scale: upsampling factor (any value >= 1), or one per in-plane axis (e.g. 128 / 43 to land on
            a 128 matrix exactly).

    >>> ZeroFill(scale=2)(torch.rand(2, 1, 5, 6)).shape
    torch.Size([2, 1, 10, 12])
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fourier_resize(self.centre(x), self.output_size(x.shape[2], x.shape[3]), (2, 3))


class Bicubic(_Interpolation):
    """Cubic convolution (Keys, a = -0.5) sampled at the degradation's positions.

    Args:
        spatial_dims: must be 2.
        in_channels: channels of the input (the centre one is used).
        out_channels: must be 1.
        scale: upsampling factor (any value >= 1), or one per in-plane axis (e.g. 128 / 43 to land on
            a 128 matrix exactly).

    >>> Bicubic(scale=3)(torch.rand(1, 3, 4, 4)).shape
    torch.Size([1, 1, 12, 12])
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out_h, out_w = self.output_size(x.shape[2], x.shape[3])
        return resize_axis(resize_axis(self.centre(x), out_h, 2), out_w, 3)


#: the interpolation baselines by name, the one table mrsr reads: they need no weights and have nothing to adapt
BASELINES: dict[str, type[_Interpolation]] = {"zerofill": ZeroFill, "bicubic": Bicubic}


def is_baseline(name: str) -> bool:
    """Whether ``name`` (any case) is an interpolation baseline of :data:`BASELINES`."""
    return str(name).lower() in BASELINES


def get_baseline(name: str, scale: float | tuple[float, float], in_channels: int = 1) -> nn.Module:
    """An interpolation baseline by name (one of :data:`BASELINES`).

    >>> get_baseline("zerofill", 2)(torch.rand(1, 1, 4, 5)).shape
    torch.Size([1, 1, 8, 10])

    Raises:
        MrsrError: an unknown name.
    """
    if not is_baseline(name):
        raise MrsrError(f"Unknown baseline {name!r}; choose one of {', '.join(BASELINES)}.")
    return BASELINES[str(name).lower()](scale=scale, in_channels=in_channels)
