"""k-space data consistency: exact on odd and even sizes and every factor, on real images, as MONAI transforms."""

from __future__ import annotations

import monai.transforms
import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from monai.transforms import Compose, Orientationd
from monai.transforms.utils import get_transform_backends
from monai.utils import TransformBackends

from mrsr.data import LoadVolumed, sample_path
from mrsr.transforms import (
    KSpaceConsistency,
    KSpaceConsistencyd,
    KSpaceTruncate,
    RobustNormalize,
    fourier_resize,
    kspace_consistency,
)
from mrsr.transforms.consistency import _lift_matrix_cpu, lift
from mrsr.transforms.kspace import _resize_matrix_cpu


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max())


@pytest.mark.parametrize("factor", [2, 3, 4])
@pytest.mark.parametrize("size", [(48, 40), (47, 33), (64, 61)])
def test_degrading_the_output_returns_the_input(factor, size):
    # the contract: degrade(DC(sr)) == lr within 1e-5 relative, odd and even sizes, x2/x3/x4
    hr = torch.rand(2, 1, *size) + 0.1
    lr = KSpaceTruncate(factor, axes=(1, 2))(hr)  # (2, 1, n, m), magnitude as a scanner's
    sr = torch.rand(2, 1, lr.shape[2] * factor, lr.shape[3] * factor)  # any network output
    out = kspace_consistency(sr, lr, (2, 3))
    back = fourier_resize(out, lr.shape[2:], (2, 3)).abs()
    assert relative_error(back, lr) < 1e-5
    assert relative_error(fourier_resize(sr, lr.shape[2:], (2, 3)).abs(), lr) > 0.1  # it was not before


@pytest.mark.parametrize("n_hr, n_lr", [(128, 64), (129, 65), (127, 64), (96, 32), (62, 16), (100, 25)])
@pytest.mark.parametrize("window", ["none", "hamming", "tukey"])
def test_lift_is_the_pseudo_inverse_of_the_truncation(n_hr, n_lr, window):
    truncate = _resize_matrix_cpu(n_hr, n_lr, window, 0.5)
    assert torch.allclose(_lift_matrix_cpu(n_lr, n_hr, window, 0.5), torch.linalg.pinv(truncate), atol=1e-9)


def test_fft_path_matches_the_matrix_path(monkeypatch):
    x = torch.rand(3, 40, dtype=torch.float64)
    matrix = lift(x, [96], [1], "hamming")
    monkeypatch.setattr("mrsr.transforms.consistency.MATMUL_MAX_SIZE", 8)
    assert torch.allclose(lift(x, [96], [1], "hamming"), matrix, atol=1e-10)


def test_windowed_degradation_is_inverted_on_its_band():
    hr = torch.rand(1, 64, 50, dtype=torch.float64)
    for window in ("hamming", "tukey"):
        lr = KSpaceTruncate(2, axes=(0, 1), window=window, magnitude=False)(hr)
        out = kspace_consistency(torch.rand(1, 64, 50, dtype=torch.float64), lr, (1, 2), window, magnitude=False)
        assert relative_error(fourier_resize(out, lr.shape[1:], (1, 2), window), lr) < 1e-9


def test_signed_consistency_is_an_orthogonal_projection():
    # the measured HR image is a fixed point, and the projection never moves an estimate away from it
    hr = torch.rand(1, 1, 40, 36, dtype=torch.float64)
    lr = KSpaceTruncate(2, axes=(1, 2), magnitude=False)(hr)
    assert torch.allclose(kspace_consistency(hr, lr, (2, 3), magnitude=False), hr, atol=1e-12)
    sr = hr + 0.1 * torch.randn_like(hr)
    out = kspace_consistency(sr, lr, (2, 3), magnitude=False)
    assert (out - hr).norm() < (sr - hr).norm()
    assert torch.allclose(kspace_consistency(out, lr, (2, 3), magnitude=False), out, atol=1e-12)


def test_real_t1_interpolation_becomes_consistent_and_no_worse():
    hr = RobustNormalize()(LoadVolumed("image")({"image": str(sample_path())})["image"])[..., 30:34]
    lr = KSpaceTruncate(2, axes=(0, 1))(hr)
    cubic = torch.nn.functional.interpolate(lr.as_tensor().movedim(-1, 0), scale_factor=2, mode="bicubic")
    out = kspace_consistency(cubic, lr.as_tensor().movedim(-1, 0), (2, 3))
    assert relative_error(fourier_resize(out, lr.shape[1:3], (2, 3)).abs(), lr.as_tensor().movedim(-1, 0)) < 1e-5
    truth = hr.as_tensor().movedim(-1, 0)
    assert (out - truth).norm() < (cubic - truth).norm()


def test_transform_infers_the_axes_and_keeps_meta_and_history():
    data = {"image": str(sample_path())}
    load = Compose([LoadVolumed("image"), Orientationd("image", "RAS")])
    hr = load(data)["image"]
    lr = KSpaceTruncate(2, axes=(0, 1))(hr.as_tensor())
    sr = hr.clone()  # stands in for an SR output: the HR grid, HR meta and history
    out = KSpaceConsistency()(sr, lr)
    assert isinstance(out, MetaTensor) and out.shape == sr.shape
    assert torch.equal(out.affine, sr.affine) and len(out.applied_operations) == len(sr.applied_operations) == 1
    assert relative_error(fourier_resize(out.as_tensor(), lr.shape[1:3], (1, 2)).abs(), lr) < 1e-5
    d = KSpaceConsistencyd("pred", ref_key="lr")({"pred": sr, "lr": lr})
    assert torch.allclose(d["pred"], out)


def test_bad_shapes_and_windows_are_refused():
    with pytest.raises(ValueError, match="does not match"):
        kspace_consistency(torch.rand(1, 2, 8, 8), torch.rand(1, 1, 4, 4), (2, 3))
    with pytest.raises(ValueError, match="must not be smaller"):
        kspace_consistency(torch.rand(1, 1, 4, 4), torch.rand(1, 1, 8, 8), (2, 3))
    with pytest.raises(ValueError, match="Unknown k-space window"):
        KSpaceConsistency(window="hann")


def test_backends_are_monai_transform_backends(monkeypatch):
    """KSpaceConsistency(d) declare TORCH and NUMPY as ``TransformBackends`` members, MONAI's
    ``get_transform_backends()`` reports both, and numpy SR/LR images give a numpy image equal to the
    tensor result."""
    for cls in (KSpaceConsistency, KSpaceConsistencyd):
        assert all(isinstance(b, TransformBackends) for b in cls.backend), cls
        assert cls.backend == [TransformBackends.TORCH, TransformBackends.NUMPY]
    monkeypatch.setattr(monai.transforms, "KSpaceConsistency", KSpaceConsistency, raising=False)
    assert get_transform_backends()["KSpaceConsistency"] == [True, True]
    rng = np.random.default_rng(0)
    sr, lr = rng.random((1, 8, 8, 3)).astype(np.float32), rng.random((1, 4, 4, 3)).astype(np.float32)
    out = KSpaceConsistency()(sr, lr)
    assert isinstance(out, np.ndarray) and out.shape == (1, 8, 8, 3)
    expected = KSpaceConsistency()(torch.from_numpy(sr), torch.from_numpy(lr)).numpy()
    np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-6)
