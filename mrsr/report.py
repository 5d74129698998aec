"""Pictures a person can look at: the LR | baselines | SR | HR | error panel, oriented as viewers show it.

Orientation follows the volume's voxel-to-RAS affine (:func:`oriented_slice`), in the **radiological**
convention most viewers use: on axial and coronal slices the patient's right is on the screen's left;
the patient's superior end is up on coronal and sagittal slices, the anterior end up on axial ones;
sagittal slices have the anterior end on the left. Without an affine the slice is shown as stored
(rows along the second in-plane voxel axis) and the panel says the orientation is unknown.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mrsr.errors import MrsrError
from mrsr.paths import atomic_path

__all__ = ["oriented_slice", "build_panel_figure", "save_panel"]

# RAS world axis -> (letter of its negative end, letter of its positive end)
_ENDS = (("L", "R"), ("P", "A"), ("I", "S"))
# the plane a slice is in, by the world axis its slice axis runs along
_PLANES = ("sagittal", "coronal", "axial")
# plane -> (world axis down the rows, world axis across the columns); both run from the positive end
# (top / left of the screen) to the negative end: A or S at the top, R (axial, coronal) or A (sagittal) on the left
_SCREEN = {"axial": (1, 0), "coronal": (2, 0), "sagittal": (2, 1)}
_CONVENTION = {
    "axial": "radiological: patient right on screen left, anterior up",
    "coronal": "radiological: patient right on screen left, superior up",
    "sagittal": "anterior on screen left, superior up",
}


@dataclass(frozen=True)
class _View:
    """How one voxel-grid slice maps onto the screen."""

    plane: str  # axial, coronal, sagittal or unknown
    row_axis: int  # voxel axis (0-2) down the rows
    col_axis: int  # voxel axis across the columns
    flip_rows: bool
    flip_cols: bool
    edges: tuple[str, str, str, str] | None  # anatomical letters at the top, bottom, left, right
    spacing: tuple[float, float]  # mm per row, per column


def _affine_of(volume) -> np.ndarray | None:
    affine = getattr(volume, "affine", None)
    if affine is None:
        return None
    affine = np.asarray(torch.as_tensor(affine).detach().cpu(), dtype=float)
    return affine[0] if affine.ndim == 3 else affine  # a batch of one


def _view(affine, slice_axis: int) -> _View:
    """The screen layout of slices across voxel axis ``slice_axis`` (0-2) under ``affine`` (or ``None``)."""
    from nibabel.orientations import io_orientation

    if slice_axis not in (0, 1, 2):
        raise MrsrError(f"slice_axis must be 0, 1 or 2 (a spatial axis), got {slice_axis}.")
    first, second = (a for a in range(3) if a != slice_axis)
    ornt = None
    if affine is not None:
        affine = np.asarray(affine, dtype=float)
        if affine.shape == (4, 4) and np.isfinite(affine).all():
            ornt = io_orientation(affine)  # per voxel axis: (nearest RAS axis, +1 toward R/A/S or -1)
    if ornt is None or np.isnan(ornt).any():  # as stored, as mrsr always showed it
        return _View("unknown", second, first, False, False, None, (1.0, 1.0))
    world, sign = ornt[:, 0].astype(int), ornt[:, 1]
    plane = _PLANES[world[slice_axis]]
    row_world, col_world = _SCREEN[plane]
    row_axis = first if world[first] == row_world else second
    col_axis = second if row_axis == first else first
    spacing = tuple(float(np.linalg.norm(affine[:3, a])) for a in (row_axis, col_axis))
    edges = (_ENDS[row_world][1], _ENDS[row_world][0], _ENDS[col_world][1], _ENDS[col_world][0])
    # a voxel axis that runs toward the positive end is reversed, so the screen runs from it
    return _View(plane, row_axis, col_axis, bool(sign[row_axis] > 0), bool(sign[col_axis] > 0), edges, spacing)


def _array(volume) -> np.ndarray:
    """(X, Y, Z) float32 array of a (1, X, Y, Z) or (X, Y, Z) volume."""
    t = torch.as_tensor(volume).as_subclass(torch.Tensor).detach().cpu().float()  # a MetaTensor's data
    if t.ndim == 4:
        if t.shape[0] != 1:
            raise MrsrError(f"The panel shows one-channel volumes (1, X, Y, Z); got shape {tuple(t.shape)}.")
        t = t[0]
    if t.ndim != 3:
        raise MrsrError(f"The panel needs 3D volumes, (1, X, Y, Z) or (X, Y, Z); got shape {tuple(t.shape)}.")
    return t.numpy()


def _apply(view: _View, volume: np.ndarray, index: int, slice_axis: int) -> np.ndarray:
    """Slice ``index`` across ``slice_axis`` of an (X, Y, Z) array, laid out on the screen by ``view``."""
    image = np.take(volume, index, axis=slice_axis)  # axes: the in-plane voxel axes in order
    in_plane = [a for a in range(3) if a != slice_axis]
    if in_plane.index(view.row_axis) == 1:
        image = image.T
    if view.flip_rows:
        image = image[::-1]
    if view.flip_cols:
        image = image[:, ::-1]
    return np.ascontiguousarray(image)


def oriented_slice(volume, index: int, slice_axis: int = 2, affine=None) -> tuple[np.ndarray, str]:
    """Slice ``index`` across voxel axis ``slice_axis`` as a viewer shows it, and the plane's name.

    The plane is named by the anatomical axis nearest to the slice axis's direction in ``affine``
    (nibabel's ``io_orientation``): S/I gives ``"axial"``, A/P ``"coronal"``, R/L ``"sagittal"``.
    The image is in the radiological convention (see the module docstring): rows top to bottom run
    S to I (coronal, sagittal) or A to P (axial); columns left to right run R to L (axial, coronal)
    or A to P (sagittal).

    Args:
        volume: (1, X, Y, Z) or (X, Y, Z) volume, a MetaTensor, tensor or array.
        index: the slice, along ``slice_axis``.
        slice_axis: the voxel axis (0-2) across slices.
        affine: the voxel-to-RAS affine; default ``volume.affine`` (a MetaTensor's). With neither,
            the slice is returned transposed as stored (rows along the later in-plane voxel axis) and
            the plane is ``"unknown"``.

    Returns:
        (2D float32 array, plane name)
    """
    view = _view(_affine_of(volume) if affine is None else affine, slice_axis)
    return _apply(view, _array(volume), index, slice_axis), view.plane


def _volume_psnr(sr: np.ndarray, hr: np.ndarray, border: int, slice_axis: int) -> float:
    """PSNR as :func:`mrsr.metrics.evaluate` reports it: data range of the whole HR, ``border`` voxels
    cropped from each in-plane edge."""
    data_range = float(hr.max() - hr.min())
    if border > 0:
        crop = tuple(slice(None) if a == slice_axis else slice(border, hr.shape[a] - border) for a in range(3))
        sr, hr = sr[crop], hr[crop]
    mse = float(np.mean((sr.astype(np.float64) - hr) ** 2)) if hr.size else math.nan
    if not data_range > 0 or not mse == mse:
        return math.nan
    return 10 * math.log10(data_range**2 / mse) if mse > 0 else math.inf


def build_panel_figure(
    lr,
    sr,
    hr,
    title: str = "",
    slice_axis: int = 2,
    baselines: Mapping[str, torch.Tensor] | None = None,
    sr_name: str = "SR",
    index: int | None = None,
    psnr_border: int = 0,
):
    """The figure :func:`save_panel` writes (a ``matplotlib.figure.Figure``, Agg canvas, no pyplot).

    Panels left to right: LR | each baseline | ``sr_name`` | HR | ``|sr_name - HR|`` with a colour
    bar in the images' intensity units. Arguments as :func:`save_panel`'s.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    volumes = dict(baselines or {})
    if sr_name in volumes or sr_name in ("LR", "HR"):
        raise MrsrError(f"The SR's name {sr_name!r} is taken by a baseline or by LR/HR; pass another sr_name.")
    volumes[sr_name] = sr
    arrays = {name: _array(v) for name, v in volumes.items()}
    hr_array, lr_array = _array(hr), _array(lr)
    for name, a in arrays.items():
        if a.shape != hr_array.shape:
            raise MrsrError(f"{name} has shape {a.shape} but HR has {hr_array.shape}; they must share one grid.")
    view = _view(_affine_of(hr), slice_axis)
    n = hr_array.shape[slice_axis]
    index = n // 2 if index is None else int(index)
    if not 0 <= index < n:
        raise MrsrError(f"Slice {index} is outside the {n} slices along axis {slice_axis}.")
    n_lr = lr_array.shape[slice_axis]
    lr_index = index * n_lr // n

    hr_image = _apply(view, hr_array, index, slice_axis)
    images = {name: _apply(view, a, index, slice_axis) for name, a in arrays.items()}
    vmin, vmax = (float(x) for x in np.percentile(hr_image, [0.5, 99.5]))
    if not vmax > vmin:
        vmax = vmin + 1.0
    error = np.abs(images[sr_name] - hr_image)
    height, width = hr_image.shape[0] * view.spacing[0], hr_image.shape[1] * view.spacing[1]
    extent = (0, width, height, 0)  # mm (voxels when the affine is unknown): LR covers the same field of view

    lr_title = f"LR ({lr_array.shape[view.row_axis]}x{lr_array.shape[view.col_axis]})"
    if n_lr != n:
        lr_title += f"\nslice {lr_index} of {n_lr}"
    panels = [(lr_title, _apply(view, lr_array, lr_index, slice_axis))]
    for name, image in images.items():
        psnr = _volume_psnr(arrays[name], hr_array, psnr_border, slice_axis)
        panels.append((f"{name}\nPSNR {psnr:.2f} dB" if math.isfinite(psnr) else name, image))
    panels.append((f"HR ({hr_image.shape[0]}x{hr_image.shape[1]})", hr_image))
    error_scale = 4  # the colour scale ends at a quarter of the grey range: small errors stay visible
    panels.append((f"|{sr_name} \u2212 HR|", error))

    panel_height = float(np.clip(2.9 * height / width, 1.5, 5.0))  # the images' own aspect, so little is blank
    fig = Figure(figsize=(2.9 * len(panels) + 0.8, panel_height + (1.25 if title else 0.95)), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(panels))
    for k, (ax, (name, image)) in enumerate(zip(axes, panels)):
        is_error = k == len(panels) - 1
        im = ax.imshow(
            image,
            cmap="magma" if is_error else "gray",
            vmin=0 if is_error else vmin,
            vmax=(vmax - vmin) / error_scale if is_error else vmax,
            extent=extent,
            interpolation="nearest",
        )
        ax.set_title(name, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
        if view.edges is not None:
            style = dict(transform=ax.transAxes, color="#ffd84d", fontsize=8, fontweight="bold")
            top, bottom, left, right = view.edges
            ax.text(0.5, 0.985, top, ha="center", va="top", **style)
            ax.text(0.5, 0.015, bottom, ha="center", va="bottom", **style)
            ax.text(0.015, 0.5, left, ha="left", va="center", **style)
            ax.text(0.985, 0.5, right, ha="right", va="center", **style)
        if is_error:
            bar = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02, extend="max")
            bar.set_label(f"intensity units (scale: 1/{error_scale} of the grey range)", fontsize=8)
            bar.ax.tick_params(labelsize=8)
    if view.plane == "unknown":
        where = f"slice {index} of {n} (voxel axis {slice_axis}); orientation unknown: shown as stored"
    else:
        where = f"{view.plane} slice {index} of {n} (voxel axis {slice_axis}); {_CONVENTION[view.plane]}"
    fig.supxlabel(where, fontsize=10)
    if title:
        fig.suptitle(title)
    return fig


def save_panel(
    lr: torch.Tensor,
    sr: torch.Tensor,
    hr: torch.Tensor,
    path: str | os.PathLike,
    title: str = "",
    slice_axis: int = 2,
    baselines: Mapping[str, torch.Tensor] | None = None,
    sr_name: str = "SR",
    index: int | None = None,
    psnr_border: int = 0,
) -> Path:
    """Save a PNG of one slice: LR | baselines | SR | HR | |SR - HR| with a colour bar.

    The slice is oriented from HR's affine in the radiological convention (patient right on screen
    left for axial and coronal slices; superior up for coronal and sagittal, anterior up for axial;
    anterior on the left for sagittal); the plane, slice index and convention are written under the
    panels, and anatomical letters at the panels' edges. Without an affine the slice is shown as
    stored, labelled "orientation unknown". The file is written atomically (a temporary file in the
    same folder, then renamed): a failure leaves no partial PNG.

    Args:
        lr: (1, x, y, z) LR volume on its own (coarser) grid over the same field of view as HR; shown
            with nearest-neighbour pixels, at the slice ``index * z // Z``.
        sr: (1, X, Y, Z) the network's SR volume.
        hr: (1, X, Y, Z) HR volume; its affine (a MetaTensor's) orients every panel.
        path: the PNG file to write.
        title: a heading.
        slice_axis: the voxel axis (0-2) across slices.
        baselines: name -> SR volume of a baseline (e.g. ``{"zerofill": ..., "bicubic": ...}``), same
            shape as ``sr``, drawn in this order between LR and ``sr``.
        sr_name: the title of ``sr``'s panel.
        index: the HR slice to show; default the middle one.
        psnr_border: in-plane voxels cropped before the PSNR in each title, as
            :func:`mrsr.metrics.evaluate`'s ``border`` (the PSNR is its whole-volume PSNR).

    Returns:
        ``path``.
    """
    fig = build_panel_figure(lr, sr, hr, title, slice_axis, baselines, sr_name, index, psnr_border)
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    return path
