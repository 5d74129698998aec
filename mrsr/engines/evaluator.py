"""Validation on whole volumes through the real inference path, on a MONAI ``SupervisedEvaluator``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from monai.engines import SupervisedEvaluator
from monai.handlers import IgniteMetricHandler, from_engine
from monai.inferers import Inferer
from monai.metrics import CumulativeIterationMetric
from torch.utils.data import DataLoader

from mrsr.inference import super_resolve
from mrsr.metrics import evaluate

__all__ = ["VolumeInferer", "VolumeQualityMetric", "build_evaluator", "VALIDATION_METRICS"]

VALIDATION_METRICS = ("val_psnr", "val_ssim")


class VolumeInferer(Inferer):
    """A MONAI inferer that super-resolves whole volumes with :func:`mrsr.inference.super_resolve`.

    Validation thus runs exactly what ``mrsr infer`` runs: batched slices, 2.5D neighbours, optional
    tiles, data consistency and test-time adaptation.

    Args:
        scale: in-plane SR factor.
        in_channels: network input channels (2k+1).
        slice_axis: the axis across which slices are taken, or ``"auto"`` (each volume's thickest axis,
            :func:`mrsr.inference.resolve_slice_axis`).
        roi_size: largest tile (h, w) for sliding-window inference, or ``None`` for whole slices.
        overlap: tile overlap, a fraction of ``roi_size``.
        slice_batch: slices per forward pass; ``None``: 8 on a GPU, the network's pixel budget on a CPU.
        amp: autocast (float16 on CUDA, bfloat16 on CPU).
        channels_last: channels_last memory format; ``None`` follows the network's preference.
        data_consistency: give each output slice its input's k-space band (:mod:`mrsr.transforms.consistency`).
        adapt: test-time adaptation steps per volume (:func:`mrsr.adapt.adapt`); ``None``: none, 0: only
            check the network against zerofill on the volume's own pairs.
        adapt_time: time budget of the adaptation per volume, in seconds.
        seed: seed of the adaptation.

    Shapes:
        inputs (B, 1, x, y, z) LR volumes -> (B, 1, s*x, s*y, z) (slice axis 2).
    """

    def __init__(
        self,
        scale: int,
        in_channels: int = 1,
        slice_axis: int | str = 2,
        roi_size: Sequence[int] | None = None,
        overlap: float = 0.25,
        slice_batch: int | None = None,
        amp: bool = False,
        channels_last: bool | None = None,
        data_consistency: bool = False,
        adapt: int | None = None,
        adapt_time: float | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.scale, self.in_channels, self.slice_axis = scale, in_channels, slice_axis
        self.roi_size, self.overlap, self.slice_batch = roi_size, overlap, slice_batch
        self.amp, self.channels_last, self.data_consistency = amp, channels_last, data_consistency
        self.adapt, self.adapt_time, self.seed = adapt, adapt_time, seed

    def _predictor(self, vol: torch.Tensor, network: torch.nn.Module) -> tuple[torch.nn.Module, bool]:
        """The network to run on ``vol`` (adapted when asked) and whether data consistency applies."""
        if self.adapt is None:
            return network, self.data_consistency
        from mrsr.adapt import adapt

        result = adapt(
            network, vol, int(self.scale), steps=self.adapt, time_budget=self.adapt_time, slice_axis=self.slice_axis,
            in_channels=self.in_channels, data_consistency=self.data_consistency, device=vol.device, seed=self.seed,
        )  # fmt: skip
        print(f"mrsr: {result.summary()}", flush=True)
        return result.predictor, self.data_consistency and result.data_consistency_applies

    def __call__(self, inputs: torch.Tensor, network: torch.nn.Module, *args: Any, **kwargs: Any) -> torch.Tensor:
        outs = []
        for vol in inputs:
            predictor, consistent = self._predictor(vol, network)
            outs.append(super_resolve(
                vol, predictor, self.scale, slice_axis=self.slice_axis, in_channels=self.in_channels,
                roi_size=self.roi_size, overlap=self.overlap, slice_batch=self.slice_batch, device=inputs.device,
                amp=self.amp, channels_last=self.channels_last, data_consistency=consistent,
            ).to(inputs.device))  # fmt: skip
        return torch.stack(outs)


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
        inferer=VolumeInferer(scale, in_channels, slice_axis, roi_size, amp=amp and device.type == "cuda",
                              data_consistency=data_consistency),  # fmt: skip
        key_val_metric={"val_psnr": metric["val_psnr"]},
        additional_metrics={"val_ssim": metric["val_ssim"]},
        val_handlers=list(handlers or []),
        decollate=False,
    )
