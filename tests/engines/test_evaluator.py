"""Whole-volume validation: the inferer is the inference path, the metric is mrsr.metrics.evaluate."""

from __future__ import annotations

import torch
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
    out = VolumeInferer(2)(lr, ZeroFill(scale=2))
    assert out.shape == (2, 1, 16, 12, 3)
    torch.testing.assert_close(out[1], super_resolve(lr[1], ZeroFill(scale=2), 2).as_tensor())


def test_metric_aggregates_the_mean_over_volumes():
    hr = torch.rand(2, 1, 16, 16, 4)
    metric = VolumeQualityMetric("psnr", border=0)
    metric(hr + 0.01, hr)
    metric(hr + 0.1, hr)
    assert metric.get_buffer().shape == (4, 1)
    assert abs(float(metric.aggregate()) - float(metric.get_buffer().mean())) < 1e-6
