"""PSNR and SSIM of a super-resolved volume against its HR reference.

MONAI's metrics do the arithmetic (``PSNRMetric``; ``compute_ssim_and_cs`` for the SSIM map, so a
mask can be applied to it). Every choice that changes the numbers (data range, border crop, mask,
SSIM window) is returned with them, and :func:`format_report` prints it beside them.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch
from monai.metrics import PSNRMetric
from monai.metrics.regression import KernelType, compute_ssim_and_cs
from monai.transforms.utils_pytorch_numpy_unification import percentile

from mrsr.errors import MrsrError

__all__ = ["EvaluationResult", "evaluate", "foreground_mask", "format_report", "range_psnr", "SSIM_WINDOW"]

SSIM_WINDOW = 7  # Gaussian window size; sigma 1.5 (Wang et al. 2004); 7 so slices down to 7x7 can be scored


@dataclass
class EvaluationResult:
    """Scores and the settings that produced them."""

    psnr: float
    ssim: float
    psnr_slice_mean: float
    psnr_fg: float | None
    ssim_fg: float | None
    data_range: float
    border: int
    slice_axis: int
    mask: str
    shape: tuple[int, ...]
    slices_scored: int
    settings: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


def foreground_mask(hr: torch.Tensor, fraction: float = 0.1) -> torch.Tensor:
    """Voxels brighter than ``fraction`` of the way from the minimum to the 99th percentile."""
    lo = float(hr.min())
    hi = float(percentile(hr.float(), 99))
    return hr > lo + fraction * (hi - lo)


def range_psnr(pred: torch.Tensor, target: torch.Tensor) -> float:
    """PSNR (dB) of ``pred`` against ``target`` over the target's range (1 for a constant target), in float32;
    the quick held-out score of fine-tuning loops (finite: MSE floored at 1e-20).

    >>> round(range_psnr(torch.zeros(4), torch.tensor([0.0, 1.0, 0.0, 1.0])), 2)
    3.01
    """
    data_range = float(target.max() - target.min()) or 1.0
    mse = float(torch.mean((pred.float() - target.float()) ** 2))
    return 10 * math.log10(data_range**2 / max(mse, 1e-20))


def _psnr(mse: torch.Tensor, data_range: float) -> float:
    return float(10 * torch.log10(data_range**2 / mse)) if float(mse) > 0 else math.inf


def _crop(x: torch.Tensor, border: int, axis: int) -> torch.Tensor:
    """Crop ``border`` voxels from both ends of the two in-plane axes (not the slice axis)."""
    if border <= 0:
        return x
    index = [slice(None)] * x.ndim
    for a in range(3):
        if a != axis:
            index[a] = slice(border, x.shape[a] - border)
    return x[tuple(index)]


def evaluate(
    sr: torch.Tensor,
    hr: torch.Tensor,
    data_range: float | None = None,
    border: int = 0,
    slice_axis: int = 2,
    mask: torch.Tensor | str | None = "auto",
) -> EvaluationResult:
    """Score an SR volume against the HR volume.

    Args:
        sr: (X, Y, Z) or (1, X, Y, Z) super-resolved volume.
        hr: the reference, same shape.
        data_range: the intensity range for PSNR/SSIM; default ``hr.max() - hr.min()``.
        border: voxels cropped from each in-plane edge before scoring (SR papers use the scale).
        slice_axis: the axis along which 2D SSIM is computed slice by slice.
        mask: ``"auto"`` (:func:`foreground_mask` of the HR), ``None``/``"none"``, or a boolean volume;
            it adds foreground-only PSNR/SSIM to the whole-volume scores.

    Returns:
        PSNR over the volume and as a per-slice mean, SSIM as the mean of per-slice 2D SSIM (Gaussian
        window 7, sigma 1.5, K1 0.01, K2 0.03), foreground variants, and the settings.
    """
    sr = torch.as_tensor(sr).float().squeeze(0) if sr.ndim == 4 else torch.as_tensor(sr).float()
    hr = torch.as_tensor(hr).float().squeeze(0) if hr.ndim == 4 else torch.as_tensor(hr).float()
    if sr.shape != hr.shape:
        raise MrsrError(
            f"SR shape {tuple(sr.shape)} differs from HR shape {tuple(hr.shape)}; they must be on one grid."
        )
    if sr.ndim != 3:
        raise MrsrError(f"evaluate needs 3D volumes, got shape {tuple(sr.shape)}.")
    if data_range is None:
        data_range = float(hr.max() - hr.min())
    if not data_range > 0:
        raise MrsrError("The HR volume is constant (data range 0); give --data-range explicitly.")
    mask_name = "none"
    if isinstance(mask, str) and mask == "auto":
        fg, mask_name = foreground_mask(hr), "auto (HR > min + 10% of (p99 - min))"
    elif mask is None or (isinstance(mask, str) and mask == "none"):
        fg = None
    else:
        fg, mask_name = torch.as_tensor(mask).bool().squeeze(), "given"
        if fg.shape != hr.shape:
            raise MrsrError(f"The mask's shape {tuple(fg.shape)} differs from the volumes' {tuple(hr.shape)}.")
    sr, hr = _crop(sr, border, slice_axis), _crop(hr, border, slice_axis)
    fg = _crop(fg, border, slice_axis) if fg is not None else None
    if min(s for a, s in enumerate(sr.shape) if a != slice_axis) < SSIM_WINDOW:
        raise MrsrError(
            f"In-plane size {tuple(sr.shape)} after a border of {border} is below the SSIM window {SSIM_WINDOW}."
        )

    psnr = float(PSNRMetric(max_val=data_range)(sr[None, None], hr[None, None]).mean())
    # slices as a batch of 2D images
    s2, h2 = sr.movedim(slice_axis, 0)[:, None], hr.movedim(slice_axis, 0)[:, None]
    per_slice_mse = ((s2 - h2) ** 2).flatten(1).mean(1)
    psnr_slices = [_psnr(m, data_range) for m in per_slice_mse]
    finite = [p for p in psnr_slices if math.isfinite(p)]
    ssim_map, _ = compute_ssim_and_cs(
        s2, h2, spatial_dims=2, kernel_size=(SSIM_WINDOW,) * 2, kernel_sigma=(1.5, 1.5),
        data_range=data_range, kernel_type=KernelType.GAUSSIAN, k1=0.01, k2=0.03,
    )  # fmt: skip
    ssim = float(ssim_map.flatten(1).mean(1).mean())
    psnr_fg = ssim_fg = None
    if fg is not None and fg.any():
        diff = (sr - hr)[fg]
        psnr_fg = _psnr((diff**2).mean(), data_range)
        m2 = fg.movedim(slice_axis, 0)[:, None]
        half = SSIM_WINDOW // 2  # the SSIM map covers the 'valid' window centres only
        m2 = m2[:, :, half : m2.shape[2] - half, half : m2.shape[3] - half]
        ssim_fg = float(ssim_map[m2].mean()) if m2.any() else None
    return EvaluationResult(
        psnr=psnr,
        ssim=ssim,
        psnr_slice_mean=float(sum(finite) / len(finite)) if finite else math.inf,
        psnr_fg=psnr_fg,
        ssim_fg=ssim_fg,
        data_range=data_range,
        border=border,
        slice_axis=slice_axis,
        mask=mask_name,
        shape=tuple(sr.shape),
        slices_scored=int(s2.shape[0]),
        settings={"ssim_window": SSIM_WINDOW, "ssim_sigma": 1.5, "k1": 0.01, "k2": 0.03},
    )


def format_report(results: dict[str, EvaluationResult]) -> str:
    """A Markdown table of several results that share settings, with the settings above it."""
    first = next(iter(results.values()))
    lines = [
        f"data range {first.data_range:.6g}, border {first.border}, slice axis {first.slice_axis}, "
        f"mask {first.mask}, scored shape {first.shape}, SSIM: 2D Gaussian window {SSIM_WINDOW}, sigma 1.5, "
        "mean over slices",
        "",
        "| method | PSNR (dB) | PSNR slice mean | SSIM | PSNR fg | SSIM fg |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    fmt = lambda v, d: "n/a" if v is None else f"{v:.{d}f}"  # noqa: E731
    for name, r in results.items():
        lines.append(
            f"| {name} | {fmt(r.psnr, 2)} | {fmt(r.psnr_slice_mean, 2)} | {fmt(r.ssim, 4)} | "
            f"{fmt(r.psnr_fg, 2)} | {fmt(r.ssim_fg, 4)} |"
        )
    return "\n".join(lines)
