"""Pictures a person can look at: the LR | SR | HR | error panel."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

__all__ = ["save_panel"]


def _slice(volume: torch.Tensor, index: int, axis: int) -> np.ndarray:
    v = torch.as_tensor(volume).float()
    v = v[0] if v.ndim == 4 else v
    return np.asarray(v.movedim(axis, 0)[index]).T  # rows = second axis, as radiology viewers show it


def save_panel(
    lr: torch.Tensor, sr: torch.Tensor, hr: torch.Tensor, path: str | os.PathLike, title: str = "", slice_axis: int = 2
) -> Path:
    """Save a PNG of the middle slice: LR (on its own coarse grid) | SR | HR | |SR - HR|.

    Args:
        lr: (1, x, y, Z) LR volume; shown with nearest-neighbour pixels over the same field of view.
        sr: (1, X, Y, Z) SR volume.
        hr: (1, X, Y, Z) HR volume.
        path: the PNG file to write.
        title: a heading.
        slice_axis: the axis across slices.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    index = hr.shape[1 + slice_axis] // 2
    images = [_slice(lr, index * lr.shape[1 + slice_axis] // hr.shape[1 + slice_axis], slice_axis),
              _slice(sr, index, slice_axis), _slice(hr, index, slice_axis)]  # fmt: skip
    error = np.abs(images[1] - images[2])
    vmin, vmax = np.percentile(images[2], [0.5, 99.5])
    fig, axes = plt.subplots(1, 4, figsize=(13, 3.8))
    extent = (0, images[2].shape[1], images[2].shape[0], 0)
    names = ["LR", "SR", "HR", "|SR - HR| (x4)"]
    for ax, image, name in zip(axes, images + [error * 4], names):
        cmap = "magma" if name.startswith("|") else "gray"
        lims = (0, vmax - vmin) if name.startswith("|") else (vmin, vmax)
        ax.imshow(image, cmap=cmap, vmin=lims[0], vmax=lims[1], extent=extent, interpolation="nearest")
        ax.set_title(name)
        ax.axis("off")
    fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
