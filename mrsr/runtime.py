"""Where and how a run computes: the device, mixed precision, and the axis across slices.

These helpers sit below inference, adaptation and self-supervised SR, which all use them (and
:mod:`mrsr.inference` re-exports them for its users).
"""

from __future__ import annotations

import contextlib

import torch
from monai.data import MetaTensor

from mrsr.errors import MrsrError

__all__ = ["autocast_context", "resolve_device", "resolve_slice_axis"]


def autocast_context(device: torch.device, amp: bool):
    """Mixed precision for inference when ``amp``: float16 on CUDA, bfloat16 on the CPU; else a no-op."""
    if not amp:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.float16 if device.type == "cuda" else torch.bfloat16)


def resolve_slice_axis(volume: torch.Tensor, slice_axis: int | str = "auto") -> int:
    """The axis across slices: ``slice_axis`` itself, or for ``"auto"`` the axis of the largest spacing.

    ``"auto"`` is the default of every mrsr entry point (``mrsr infer``, the bundles, the Python API).
    A volume with exactly one single-slice axis is sliced across it (a 2D image is one slice, whatever
    its header says about the thickness). Otherwise the spacing is read from a MetaTensor's affine
    (column norms): the thickest axis is the acquisition's slice direction, wherever a reorientation
    put it. With no single thickest axis (isotropic voxels, a plain tensor) it is 2, where DICOM series
    and most NIfTI files keep slices. A volume degraded in-plane by a large factor can have in-plane
    voxels thicker than its slices (1 x 1 x 3 mm at x4 is 4 x 4 x 3 mm, and an unequal pair of
    in-plane spacings then picks one of them): give the axis in such cases.

    >>> v = MetaTensor(torch.zeros(1, 4, 5, 6), affine=torch.diag(torch.tensor([2.0, 5.0, 2.0, 1.0])))
    >>> resolve_slice_axis(v, "auto"), resolve_slice_axis(v, 0)
    (1, 0)
    """
    if slice_axis != "auto":
        if str(slice_axis) not in ("0", "1", "2"):
            raise MrsrError(f"slice_axis must be 0, 1, 2 or 'auto', got {slice_axis!r}.")
        return int(slice_axis)
    single = [a for a, n in enumerate(volume.shape[-3:]) if n == 1]
    if len(single) == 1:
        return single[0]
    if not isinstance(volume, MetaTensor):
        return 2
    affine = torch.as_tensor(volume.affine, dtype=torch.float64)
    affine = affine[-1] if affine.ndim == 3 else affine  # a batch of one
    spacing = affine[:3, :3].norm(dim=0)
    thickest = int(spacing.argmax())
    return thickest if int((spacing >= spacing[thickest] * (1 - 1e-3)).sum()) == 1 else 2


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``"auto"``/None -> CUDA when available else CPU; a clear error if CUDA is asked for but absent."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise MrsrError("CUDA was requested but no GPU is available to PyTorch; use --device cpu.")
    return device
