"""Whole-volume validation: the inferer is the inference path, the metric is mrsr.metrics.evaluate."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from mrsr.engines.data import VolumePairDataset
from mrsr.engines.evaluator import VolumeInferer, VolumeQualityMetric, build_evaluator
from mrsr.inference import super_resolve
from mrsr.metrics import evaluate
from mrsr.networks.baselines import ZeroFill
from mrsr.transforms import RobustNormalize


def test_evaluator_scores_the_zerofill_baseline_as_mrsr_evaluate_does(t1_volume):
    hr = RobustNormalize()(t1_volume)
    pairs = VolumePairDataset([hr, hr[:, :, :, :20]], 2)
    ev = build_evaluator(ZeroFill(scale=2), DataLoader(pairs, batch_size=1), 2, torch.device("cpu"))
    ev.run()
    expected = [
        evaluate(super_resolve(p["image"], ZeroFill(scale=2), 2), p["label"], border=2, mask=None) for p in pairs
    ]
    assert abs(ev.state.metrics["val_psnr"] - sum(r.psnr for r in expected) / 2) < 1e-4
    assert abs(ev.state.metrics["val_ssim"] - sum(r.ssim for r in expected) / 2) < 1e-5


def test_inferer_batches_volumes():
    lr = torch.rand(2, 1, 8, 6, 3)
    out = VolumeInferer(scale=2)(lr, ZeroFill(scale=2))
    assert out.shape == (2, 1, 16, 12, 3)
    torch.testing.assert_close(out[1], super_resolve(lr[1], ZeroFill(scale=2), 2).as_tensor())


def test_metric_aggregates_the_mean_over_volumes():
    """A constant error e on an HR volume of data range 1 has PSNR 10 log10(1 / e²): 40 dB for 0.01 and
    20 dB for 0.1, one value per volume; the aggregate is their mean, 30 dB."""
    hr = torch.rand(2, 1, 16, 16, 4)
    hr[:, :, 0, 0, 0], hr[:, :, 0, 1, 0] = 0.0, 1.0  # data range exactly 1
    metric = VolumeQualityMetric("psnr", border=0)
    metric(hr + 0.01, hr)
    metric(hr + 0.1, hr)
    assert metric.get_buffer().shape == (4, 1)
    torch.testing.assert_close(metric.get_buffer()[:, 0].float(), torch.tensor([40.0, 40.0, 20.0, 20.0]), atol=1e-3,
                               rtol=0)  # fmt: skip
    assert abs(float(metric.aggregate()) - 30.0) < 1e-3


class NearestPlus(torch.nn.Module):
    """x2 nearest-neighbour upsampling plus a constant: a known error against a nearest-upsampled HR."""

    def __init__(self, offset: float) -> None:
        super().__init__()
        self.offset = offset

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=2, mode="nearest") + self.offset


def test_evaluator_psnr_of_a_known_constant_error():
    """The evaluator's val_psnr is the mean over volumes of each one's PSNR with its own HR data range:
    an error of 0.1 everywhere gives 20 dB on a volume of range 1 and 10 log10(2² / 0.1²) = 26.02 dB on
    one of range 2, so 23.01 dB."""
    lr = torch.rand(1, 8, 8, 3, generator=torch.Generator().manual_seed(0))
    lr[0, 0, 0, 0], lr[0, 0, 1, 0] = 0.0, 1.0  # data range exactly 1
    pairs = [
        {"image": gain * lr, "label": F.interpolate((gain * lr)[None], scale_factor=(2, 2, 1), mode="nearest")[0]}
        for gain in (1.0, 2.0)
    ]
    ev = build_evaluator(NearestPlus(0.1), DataLoader(pairs, batch_size=1), 2, torch.device("cpu"))
    ev.run()
    expected = (20.0 + 10 * math.log10(2.0**2 / 0.1**2)) / 2
    assert abs(expected - 23.0103) < 1e-4
    assert abs(ev.state.metrics["val_psnr"] - expected) < 1e-3
