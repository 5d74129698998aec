"""A wrapper that makes any SR network consistent with its input's measured k-space band.

The wrapped network's output keeps only what lies outside the LR image's k-space band; the band
itself is the input's (:func:`mrsr.transforms.consistency.kspace_consistency`): truncating the output
in k-space returns the input exactly. This is the data-consistency step of unrolled MR
reconstruction networks, applied once at the end.
"""

from __future__ import annotations

import torch
from torch import nn

from mrsr.transforms.consistency import kspace_consistency

__all__ = ["DataConsistent"]


class DataConsistent(nn.Module):
    """Wrap an SR network so its output is data-consistent with the centre channel of its input.

    Exact for whole slices: the degradation is a global k-space truncation, so on tiles of a slice
    the replaced band is only approximately the tile's own (``mrsr.inference.super_resolve`` with
    ``data_consistency=True`` applies it to whole slices after tiling).

    Args:
        network: maps (B, C, h, w) to (B, 1, H, W) with H >= h, W >= w.
        window: the k-space taper of the degradation (``"none"``, ``"hamming"``, ``"tukey"``).
        alpha: Tukey taper fraction.

    Shapes:
        (B, C, h, w) -> (B, 1, H, W); the output's k-space truncation to (h, w) is the centre channel
        ``x[:, C // 2]``.

    >>> from mrsr.networks.baselines import Bicubic
    >>> DataConsistent(Bicubic(scale=2))(torch.rand(2, 3, 6, 5)).shape
    torch.Size([2, 1, 12, 10])
    """

    def __init__(self, network: nn.Module, window: str = "none", alpha: float = 0.5) -> None:
        super().__init__()
        self.network, self.window, self.alpha = network, window, alpha
        # inference hints of the wrapped network (mrsr.inference reads them)
        for hint in ("batch_pixels", "prefers_channels_last", "input_multiple"):
            if hasattr(network, hint):
                setattr(self, hint, getattr(network, hint))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        centre = x.shape[1] // 2
        y = self.network(x).float()
        return kspace_consistency(y, x[:, centre : centre + 1].float(), (2, 3), self.window, self.alpha)
