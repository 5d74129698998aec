"""Band-limit guard: finds zero-filled reconstructions of real scans, leaves natural images alone, stays consistent."""

from __future__ import annotations

import math

import monai.transforms
import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from monai.transforms.utils import get_transform_backends
from monai.utils import TransformBackends

from mrsr.transforms import (
    BandLimitGuard,
    BandLimitGuardd,
    KSpaceTruncate,
    RobustNormalize,
    band_edge_ratio,
    band_edge_ratios,
    band_limited_dims,
    fourier_resize,
    keep_band,
    kspace_consistency,
    zero_filled_acquisition,
)
from mrsr.transforms.bandlimit import BAND_EDGE_RATIO, EDGES
from mrsr.transforms.consistency import lift


@pytest.fixture(scope="module")
def t1(t1_volume):
    return RobustNormalize()(t1_volume).as_tensor()  # (1, 128, 128, 62), real T1 head in [0, 1]


def spectrum_beyond(x: torch.Tensor, kept: int, dim: int) -> float:
    """Energy of ``x`` beyond its central ``kept`` k-space samples along ``dim`` (``|k| > kept / 2``), over all."""
    power = torch.fft.fft(x.double(), dim=dim).abs().square().movedim(dim, 0).reshape(x.shape[dim], -1).sum(1)
    beyond = torch.fft.fftfreq(x.shape[dim], 1 / x.shape[dim]).abs() > kept / 2
    return float(power[beyond].sum() / power.sum())


def test_natural_images_are_not_band_limited(t1):
    # the real T1 head, its x2 LR, and white noise: a smooth decay or none, far above the threshold
    lr = KSpaceTruncate(2, axes=(0, 1))(t1)
    for img in (t1, lr, torch.rand(1, 64, 48, 3)):
        assert band_limited_dims(img, (1, 2)) == ()
        assert min(band_edge_ratio(img, d) for d in (1, 2)) > 2 * BAND_EDGE_RATIO


@pytest.mark.parametrize("dim", [1, 2])
@pytest.mark.parametrize("fraction", [1 / 3, 0.2, 0.1])
def test_a_zero_filled_reconstruction_is_detected_on_its_axis_only(t1, dim, fraction):
    # a scan acquired with this fraction of the grid's samples along one axis, then degraded x2: its LR band
    # ends at 2/3, 0.4 or 0.2 of the LR's Nyquist frequency along that axis
    lr = KSpaceTruncate(2, axes=(0, 1))(zero_filled_acquisition(t1, dim, fraction))
    assert band_limited_dims(lr, (1, 2)) == (dim,)
    assert band_edge_ratio(lr, dim) < BAND_EDGE_RATIO < band_edge_ratio(lr, 3 - dim)


def power_law(n: int, p: float) -> torch.Tensor:
    """A line of ``n`` samples whose power spectrum is exactly ``k^-p`` (random phases): (n,) float64."""
    k = torch.arange(n // 2 + 1, dtype=torch.float64)
    amplitude = torch.cat([torch.zeros(1, dtype=torch.float64), k[1:] ** (-p / 2)])
    phase = torch.rand(k.shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 2 * torch.pi
    return torch.fft.irfft(amplitude * torch.exp(1j * phase), n=n)


@pytest.mark.parametrize("p, expected", [(2, 0.39), (4, 0.15)])
def test_a_power_law_gives_the_same_ratio_at_every_edge(p, expected):
    # both bands next to an edge span the same frequency ratio (1.6), so f^-p gives
    # (1 - 1.6^(1-p)) / 0.6 over (1.6^(p-1) - 1) / 0.375: 0.39 for p = 2, 0.15 for p = 4
    ratios = band_edge_ratios(power_law(512, p), 0)
    assert min(ratios) < 0.2 and len(ratios) == len(EDGES)
    for edge, ratio in ratios.items():
        if edge <= 1 / 1.6:  # the band above is not cut at the Nyquist frequency
            assert ratio == pytest.approx(expected, rel=0.05)
    assert band_limited_dims(power_law(512, 2)[None], (1,)) == () and band_limited_dims(power_law(512, 8)[None], (1,))


def test_power_anywhere_above_the_edge_counts():
    # a cliff at 0.4 of Nyquist, then a faint fine pattern near Nyquist: not band-limited
    cliff = lift(fourier_resize(power_law(256, 2), [51], [0]), [256], [0])
    assert band_limited_dims(cliff[None], (1,)) == (1,)
    fine = 0.01 * torch.cos(torch.arange(256, dtype=torch.float64) * torch.pi * 0.9)
    assert band_limited_dims((cliff + fine)[None], (1,)) == ()


def test_zero_filled_acquisition_keeps_only_a_faint_floor_beyond_its_band(t1):
    # the magnitude (of ringing below zero) and the rounding leave a floor: a twentieth of the real scan's energy there
    for noise in (0.0, 0.01):
        x = zero_filled_acquisition(t1, 1, 0.5, noise=noise)
        assert spectrum_beyond(x, 64, 1) < 0.1 * spectrum_beyond(t1, 64, 1)
    assert torch.equal(zero_filled_acquisition(t1, 1, 0.5, seed=3), zero_filled_acquisition(t1, 1, 0.5, seed=3))


def test_short_axes_are_never_judged():
    smooth = torch.cos(torch.arange(15) * 4 * torch.pi / 15).repeat(1, 15, 1)  # band-limited, but only 15 samples
    assert band_limited_dims(smooth, (1, 2)) == ()
    assert band_edge_ratios(smooth, 2) == {} and math.isnan(band_edge_ratio(smooth, 2))  # no band wide enough


def test_ratio_edge_cases():
    assert band_edge_ratio(torch.ones(32, 32), 0) == 0.0  # a constant image: nothing beyond its band
    top_only = torch.cos(torch.arange(32, dtype=torch.float64) * torch.pi * 15 / 16)  # at 0.94 of Nyquist
    assert band_edge_ratio(top_only, 0) > 1e6  # at every edge: the band beyond the next one holds it


@pytest.mark.parametrize("size, kept", [((40, 36), (20, 18)), ((41, 33), (21, 17))])
def test_keep_band_is_the_projection_onto_the_band(size, kept):
    sr = torch.rand(2, 1, *size, dtype=torch.float64)
    out = keep_band(sr, [kept[0]], [2])
    assert spectrum_beyond(out, kept[0], 2) < 1e-20 < spectrum_beyond(sr, kept[0], 2)
    assert torch.allclose(keep_band(out, [kept[0]], [2]), out, atol=1e-12)  # idempotent
    assert torch.allclose(fourier_resize(out, [kept[0]], [2]), fourier_resize(sr, [kept[0]], [2]), atol=1e-12)
    assert keep_band(sr, [], []) is sr


@pytest.mark.parametrize("size", [(48, 40), (47, 33)])
def test_a_guarded_consistent_output_stays_consistent(size):
    hr = torch.rand(1, 1, *size) + 0.1
    lr = KSpaceTruncate(2, axes=(1, 2))(hr)
    out = keep_band(kspace_consistency(torch.rand(1, 1, *size), lr, (2, 3)), [lr.shape[2]], [2])
    back = fourier_resize(out, lr.shape[2:], (2, 3)).abs()
    assert float((back - lr).abs().max() / lr.abs().max()) < 1e-5


def test_guard_transforms_keep_types_and_metadata(t1):
    lr = KSpaceTruncate(2, axes=(0, 1))(zero_filled_acquisition(t1[..., 28:32], 2, 1 / 3))  # (1, 64, 64, 4)
    sr = torch.rand(1, 128, 128, 4)
    expected = keep_band(sr, [64], [2])
    meta_sr = MetaTensor(sr, affine=torch.diag(torch.tensor([1.0, 1.0, 3.0, 1.0])))
    out = BandLimitGuard()(meta_sr, lr)
    assert isinstance(out, MetaTensor) and torch.allclose(out.affine, meta_sr.affine)
    assert torch.allclose(out.as_tensor(), expected, atol=1e-5)
    np.testing.assert_allclose(BandLimitGuard(axes=(0, 1))(sr.numpy(), lr.numpy()), expected.numpy(), atol=1e-5)
    d = BandLimitGuardd("pred", ref_key="image")({"pred": sr, "image": lr})
    assert torch.allclose(d["pred"], expected, atol=1e-5)
    assert torch.allclose(BandLimitGuard(axes=(0,))(sr, lr), sr)  # told to look at the other axis only
    with pytest.raises(ValueError, match="same number of axes"):
        BandLimitGuard()(sr, lr[0])


def test_summed_power_in_chunks_equals_the_whole(t1):
    from mrsr.transforms.bandlimit import summed_power

    x = t1[0, :, :, 20:30]  # (128, 128, 10)
    whole = torch.fft.rfft(x.double() - x.double().mean(), dim=1).abs().square().sum(dim=(0, 2))
    for chunk in (1, 5000, 1 << 22):  # one row of the first axis at a time, a few, all
        torch.testing.assert_close(summed_power(x, 1, chunk_voxels=chunk), whole, rtol=1e-9, atol=0)
    torch.testing.assert_close(
        summed_power(x[:, 3, 4], 0), torch.fft.rfft(x[:, 3, 4].double() - x[:, 3, 4].double().mean()).abs().square()
    )


def test_backends_are_monai_transform_backends(monkeypatch):
    """BandLimitGuard(d) declare TORCH and NUMPY as ``TransformBackends`` members, MONAI's
    ``get_transform_backends()`` reports both, and numpy SR/LR images give a numpy image equal to the
    tensor result."""
    for cls in (BandLimitGuard, BandLimitGuardd):
        assert all(isinstance(b, TransformBackends) for b in cls.backend), cls
        assert cls.backend == [TransformBackends.TORCH, TransformBackends.NUMPY]
    monkeypatch.setattr(monai.transforms, "BandLimitGuard", BandLimitGuard, raising=False)
    assert get_transform_backends()["BandLimitGuard"] == [True, True]
    rng = np.random.default_rng(0)
    sr, lr = rng.random((1, 16, 16)).astype(np.float32), rng.random((1, 8, 8)).astype(np.float32)
    out = BandLimitGuard()(sr, lr)
    assert isinstance(out, np.ndarray) and out.shape == (1, 16, 16)
    np.testing.assert_allclose(out, BandLimitGuard()(torch.from_numpy(sr), torch.from_numpy(lr)).numpy(), atol=1e-6)
