"""Validation on whole volumes through the real inference path, on a MONAI ``SupervisedEvaluator``."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from monai.engines import SupervisedEvaluator
from monai.handlers import IgniteMetricHandler, from_engine
from monai.metrics import CumulativeIterationMetric
from torch.utils.data import DataLoader

from mrsr.inference import VolumeInferer  # re-exported: bundles name it here
from mrsr.metrics import evaluate
from mrsr.settings import InferSettings

__all__ = ["VolumeInferer", "VolumeQualityMetric", "build_evaluator", "VALIDATION_METRICS"]

VALIDATION_METRICS = ("val_psnr", "val_ssim")


class VolumeQualityMetric(CumulativeIterationMetric):
    """PSNR and SSIM of SR volumes against HR, as :func:`mrsr.metrics.evaluate` computes them.

    Each volume gives one value (the data range of its HR volume, ``border`` pixels cropped
    in-plane, SSIM averaged over slices); the aggregate is the mean over volumes, gathered across
    ranks under DDP by MONAI.

    Args:
        kind: ``"psnr"`` or ``"ssim"``.
        border: in-plane border cropped before scoring (the scale, by SR convention).
        slice_axis: the axis of the 2D SSIM slices.
    """

    def __init__(self, kind: str, border: int = 0, slice_axis: int = 2) -> None:
        super().__init__()
        if kind not in ("psnr", "ssim"):
            raise ValueError(f"kind must be 'psnr' or 'ssim', got {kind!r}.")
        self.kind, self.border, self.slice_axis = kind, border, slice_axis

    def _compute_tensor(self, y_pred: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        values = [
            getattr(evaluate(p, t, border=self.border, slice_axis=self.slice_axis, mask=None), self.kind)
            for p, t in zip(y_pred.detach().float().cpu(), y.detach().float().cpu())  # type: ignore[union-attr]
        ]
        return torch.tensor(values, dtype=torch.float64)[:, None]

    def aggregate(self) -> torch.Tensor:
        data = self.get_buffer()
        return data.float().mean() if isinstance(data, torch.Tensor) and data.numel() else torch.tensor(float("nan"))


def build_evaluator(
    network: torch.nn.Module,
    loader: DataLoader,
    scale: int,
    device: torch.device,
    in_channels: int = 1,
    slice_axis: int = 2,
    roi_size: Sequence[int] | None = None,
    amp: bool = False,
    handlers: Sequence | None = None,
    data_consistency: bool = False,
) -> SupervisedEvaluator:
    """A ``SupervisedEvaluator`` scoring whole-volume SR with ``val_psnr`` (key metric) and ``val_ssim``.

    Args:
        network: the SR network (or a baseline module).
        loader: batches of ``{"image": LR (B, 1, x, y, z), "label": HR}``, e.g. a
            :class:`mrsr.engines.data.VolumePairDataset` with batch size 1.
        scale, in_channels, slice_axis, roi_size, amp: see :class:`VolumeInferer`.
        device: where the network runs.
        handlers: extra evaluator handlers (TensorBoard, panels).
        data_consistency: score the outputs with data consistency (:class:`VolumeInferer`).
    """
    border = int(scale)
    metric = {
        k: IgniteMetricHandler(
            VolumeQualityMetric(k[4:], border, slice_axis), output_transform=from_engine(["pred", "label"])
        )
        for k in VALIDATION_METRICS
    }
    return SupervisedEvaluator(
        device=device,
        val_data_loader=loader,
        network=network,
        inferer=VolumeInferer(
            InferSettings(scale=scale, in_channels=in_channels, slice_axis=slice_axis, roi_size=roi_size,
                          amp=amp and device.type == "cuda", data_consistency=data_consistency)
        ),  # fmt: skip
        key_val_metric={"val_psnr": metric["val_psnr"]},
        additional_metrics={"val_ssim": metric["val_ssim"]},
        val_handlers=list(handlers or []),
        decollate=False,
    )
