"""Neighbouring slices as channels, for 2.5D networks.

:func:`stack_neighbours` is the one implementation of the stacking, for whole volumes
(:class:`SliceStack`), training patches (:class:`mrsr.engines.data.PairedPatchDataset`) and
test-time adaptation (:mod:`mrsr.adapt`) alike: a 2.5D network sees the same neighbours (edges
replicated) wherever its input is made.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

import numpy as np
import torch
from monai.config import KeysCollection
from monai.transforms import MapTransform, Transform
from monai.utils import TransformBackends, convert_to_dst_type, convert_to_tensor

__all__ = ["stack_neighbours", "SliceStack", "SliceStackd", "SliceStackD", "SliceStackDict"]


def stack_neighbours(slices: torch.Tensor, k: int, index: Sequence[int] | torch.Tensor | None = None) -> torch.Tensor:
    """Slices ``index`` of ``slices`` with their ``k`` neighbours on each side as channels.

    Neighbours beyond the first or last slice are that edge slice repeated, so every centre slice
    gets 2k+1 channels. Only the requested slices are gathered: a batch of B slices costs B*(2k+1)
    slices of memory, not 2k+1 copies of the volume.

    Args:
        slices: (D, *S) slices along the first axis (a (D, h, w) volume slice-first, say).
        k: neighbours on each side (0: every slice alone, one channel).
        index: the centre slices (any order, repeats allowed); all D in order by default.

    Returns:
        (len(index), 2k+1, *S) of ``slices``' type, dtype and device: ``out[i, c]`` is slice
        ``clamp(index[i] + c - k, 0, D - 1)``, so channel ``k`` is the centre slice itself.

    Raises:
        ValueError: ``k`` is negative.

    >>> stack_neighbours(torch.arange(3.0)[:, None], k=1)[..., 0].tolist()
    [[0.0, 0.0, 1.0], [0.0, 1.0, 2.0], [1.0, 2.0, 2.0]]
    >>> stack_neighbours(torch.zeros(5, 8, 6), k=2, index=[4]).shape
    torch.Size([1, 5, 8, 6])
    """
    if k < 0:
        raise ValueError(f"Slice stacking needs k >= 0 neighbours, got {k}.")
    depth = slices.shape[0]
    if index is None:
        centre = torch.arange(depth, device=slices.device)
    else:
        centre = torch.as_tensor(index if isinstance(index, torch.Tensor) else list(index), dtype=torch.long)
        centre = centre.to(slices.device)
    offsets = torch.arange(-k, k + 1, device=slices.device)
    return slices[(centre[:, None] + offsets).clamp(0, depth - 1)]


class SliceStack(Transform):
    """Stack the ``k`` slices on either side of every slice as channels.

    A volume (1, H, W, D) becomes (2k+1, H, W, D) where channel ``c`` holds the volume shifted by
    ``c - k`` slices along ``axis`` (edge slices replicated; :func:`stack_neighbours`), so channel
    ``k`` is the volume itself. A 2.5D network then runs slice by slice with MONAI's
    ``SliceInferer``: every (2k+1, H, W) input is a slice and its neighbours, and its output belongs
    to the centre slice.

    Args:
        k: neighbours on each side (0 leaves the volume as it is).
        axis: spatial axis along which slices are taken (0-based, channel excluded).

    >>> SliceStack(k=1, axis=2)(torch.arange(3.0).reshape(1, 1, 1, 3))[:, 0, 0].tolist()
    [[0.0, 0.0, 1.0], [0.0, 1.0, 2.0], [1.0, 2.0, 2.0]]
    """

    backend = [TransformBackends.TORCH, TransformBackends.NUMPY]

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
        stacked = stack_neighbours(x[0].movedim(self.axis, 0), self.k)  # (D, 2k+1, *other spatial)
        out = stacked.movedim(0, self.axis + 1).contiguous()
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
