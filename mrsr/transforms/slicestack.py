"""Neighbouring slices as channels, for 2.5D networks."""

from __future__ import annotations

from collections.abc import Hashable, Mapping

import numpy as np
import torch
from monai.config import KeysCollection
from monai.transforms import MapTransform, Transform
from monai.utils import convert_to_dst_type, convert_to_tensor

__all__ = ["SliceStack", "SliceStackd", "SliceStackD", "SliceStackDict"]


class SliceStack(Transform):
    """Stack the ``k`` slices on either side of every slice as channels.

    A volume (1, H, W, D) becomes (2k+1, H, W, D) where channel ``c`` holds the volume shifted by
    ``c - k`` slices along ``axis`` (edge slices replicated), so channel ``k`` is the volume itself.
    A 2.5D network then runs slice by slice with MONAI's ``SliceInferer``: every (2k+1, H, W) input
    is a slice and its neighbours, and its output belongs to the centre slice.

    Args:
        k: neighbours on each side (0 leaves the volume as it is).
        axis: spatial axis along which slices are taken (0-based, channel excluded).

    >>> SliceStack(k=1, axis=2)(torch.arange(3.0).reshape(1, 1, 1, 3))[:, 0, 0].tolist()
    [[0.0, 0.0, 1.0], [0.0, 1.0, 2.0], [1.0, 2.0, 2.0]]
    """

    backend = [torch.Tensor, np.ndarray]

    def __init__(self, k: int = 1, axis: int = 2) -> None:
        if k < 0:
            raise ValueError(f"SliceStack needs k >= 0 neighbours, got {k}.")
        self.k, self.axis = int(k), int(axis)

    def __call__(self, img: torch.Tensor | np.ndarray) -> torch.Tensor | np.ndarray:
        """Stack ``img`` (1, *spatial) into (2k+1, *spatial)."""
        x = convert_to_tensor(img, track_meta=False)
        if x.shape[0] != 1:
            raise ValueError(f"SliceStack expects a single-channel image (1, ...), got shape {tuple(x.shape)}.")
        if not 0 <= self.axis < x.ndim - 1:
            raise ValueError(f"Slice axis {self.axis} does not exist in an image with {x.ndim - 1} spatial axes.")
        dim = self.axis + 1
        n = x.shape[dim]
        index = torch.arange(n, device=x.device)
        channels = [x.index_select(dim, (index + off).clamp(0, n - 1)) for off in range(-self.k, self.k + 1)]
        out = torch.cat(channels, dim=0)
        return convert_to_dst_type(out, img)[0]


class SliceStackd(MapTransform):
    """Dictionary version of :class:`SliceStack`."""

    backend = SliceStack.backend

    def __init__(self, keys: KeysCollection, k: int = 1, axis: int = 2, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.stack = SliceStack(k, axis)

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict[Hashable, torch.Tensor]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.stack(d[key])
        return d


SliceStackD = SliceStackDict = SliceStackd
