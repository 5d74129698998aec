"""PSNR / SSIM on volumes with explicit settings."""

from __future__ import annotations

import math

import pytest
import torch

from mrsr.errors import MrsrError
from mrsr.metrics import evaluate, foreground_mask, format_report
from mrsr.transforms import KSpaceTruncate


def test_identical_volumes(t1_volume):
    r = evaluate(t1_volume, t1_volume)
    assert math.isinf(r.psnr) and r.ssim == pytest.approx(1.0) and r.ssim_fg == pytest.approx(1.0)


def test_psnr_formula_with_explicit_range(t1_volume):
    r = evaluate(t1_volume + 2.0, t1_volume, data_range=200.0, mask="none")
    assert r.psnr == pytest.approx(10 * math.log10(200.0**2 / 4.0), abs=1e-4)
    assert r.psnr_fg is None and r.data_range == 200.0


def test_degradation_lowers_scores_and_more_so_at_x4(t1_volume):
    scores = [evaluate(KSpaceTruncate(factor=f, grid="same")(t1_volume), t1_volume, border=4) for f in (2, 4)]
    assert scores[0].psnr > scores[1].psnr and 0 < scores[1].ssim < scores[0].ssim < 1
    assert scores[0].shape == (120, 120, 62) and scores[0].slices_scored == 62


def test_mask_scores_only_the_foreground(t1_volume):
    noisy = t1_volume.clone()
    background = ~foreground_mask(t1_volume[0])
    noisy[0][background] += 50.0  # errors only outside the head
    r = evaluate(noisy, t1_volume)
    assert math.isinf(r.psnr_fg) and r.psnr < 40
    assert 0.05 < float(foreground_mask(t1_volume[0]).float().mean()) < 0.7


def test_report_states_the_settings(t1_volume):
    text = format_report({"x": evaluate(t1_volume * 0.9, t1_volume, border=2)})
    assert "border 2" in text and "data range" in text and "| x |" in text


def test_errors(t1_volume):
    with pytest.raises(MrsrError, match="differs"):
        evaluate(t1_volume[:, :64], t1_volume)
    with pytest.raises(MrsrError, match="constant"):
        evaluate(torch.zeros(1, 8, 8, 8), torch.zeros(1, 8, 8, 8))
    with pytest.raises(MrsrError, match="SSIM window"):
        evaluate(t1_volume, t1_volume, border=62)
