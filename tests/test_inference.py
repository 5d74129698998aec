"""super_resolve: geometry in world coordinates, 2.5D stacking, tiling, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from monai.data import MetaTensor

from mrsr.errors import MrsrError
from mrsr.inference import super_resolve
from mrsr.networks.baselines import Bicubic, ZeroFill
from mrsr.transforms import KSpaceTruncate, RobustNormalize, SliceStack


def world_centroid(volume: MetaTensor) -> np.ndarray:
    v = volume[0].double().numpy()
    grids = np.meshgrid(*[np.arange(n) for n in v.shape], indexing="ij")
    index = np.array([(g * v).sum() / v.sum() for g in grids] + [1.0])
    return (volume.affine.numpy() @ index)[:3]


def blob_volume(oblique_affine: torch.Tensor) -> MetaTensor:
    """A Gaussian blob at an off-grid position, on an oblique, anisotropic grid."""
    idx = torch.meshgrid(*[torch.arange(n, dtype=torch.float64) for n in (96, 80, 9)], indexing="ij")
    centre = (41.3, 37.7, 4.2)
    r2 = sum(((i - c) / s) ** 2 for i, c, s in zip(idx, centre, (4.0, 5.0, 1.5)))
    return MetaTensor(torch.exp(-r2 / 2)[None].float(), affine=oblique_affine)


@pytest.fixture
def oblique_affine() -> torch.Tensor:
    theta = 0.3
    rot = torch.tensor([[np.cos(theta), -np.sin(theta), 0], [np.sin(theta), np.cos(theta), 0], [0, 0, 1]])
    affine = torch.eye(4, dtype=torch.float64)
    affine[:3, :3] = rot @ torch.diag(torch.tensor([0.9, 1.1, 4.0], dtype=torch.float64))
    affine[:3, 3] = torch.tensor([-20.0, 13.0, 7.5])
    return affine


@pytest.mark.parametrize("scale", [2, 4])
@pytest.mark.parametrize("baseline", [ZeroFill, Bicubic])
def test_blob_centroid_stays_put_in_world_coordinates(oblique_affine, scale, baseline):
    hr = blob_volume(oblique_affine)
    lr = KSpaceTruncate(factor=scale, axes=(0, 1))(hr)
    sr = super_resolve(lr, baseline(scale=scale), scale)
    assert torch.allclose(sr.affine, hr.affine)
    voxel = 0.9  # the smallest HR voxel size
    shift = np.linalg.norm(world_centroid(sr) - world_centroid(hr))
    assert shift < 0.05 * voxel
    # the same check catches the half-pixel error of align_corners=False
    naive = F.interpolate(
        lr.as_tensor()[0].movedim(-1, 0)[:, None], scale_factor=scale, mode="bicubic", align_corners=False
    )
    naive = MetaTensor(naive[:, 0].movedim(0, -1)[None], affine=sr.affine)
    assert np.linalg.norm(world_centroid(naive) - world_centroid(hr)) > 0.2 * voxel


def test_sr_affine_equals_hr_affine_on_real_data(t1_volume):
    hr = RobustNormalize()(t1_volume)
    for scale in (2, 4):
        lr = KSpaceTruncate(factor=scale)(hr)
        sr = super_resolve(lr, Bicubic(scale=scale), scale)
        assert sr.shape == hr.shape and torch.equal(sr.affine, hr.affine)


def test_zerofill_through_the_inference_path_is_the_lowpassed_original(t1_volume):
    signed = dict(factor=2, magnitude=False)
    lr = KSpaceTruncate(**signed)(t1_volume)
    sr = super_resolve(lr, ZeroFill(scale=2), 2, slice_batch=5)
    same = KSpaceTruncate(grid="same", **signed)(t1_volume)
    np.testing.assert_allclose(sr.numpy(), same.numpy(), atol=2e-5 * float(same.max()))


def test_non_dividing_factor_uses_out_size(t1_volume):
    lr = KSpaceTruncate(factor=3)(t1_volume)  # 128 -> 43
    sr = super_resolve(lr, ZeroFill(scale=128 / 43), 3, out_size=(128, 128))
    assert sr.shape == t1_volume.shape
    np.testing.assert_allclose(sr.affine.numpy(), t1_volume.affine.numpy(), atol=1e-9)


class CentreCheck(torch.nn.Module):
    """Records the 2.5D inputs and returns a nearest-neighbour upsampling of channel 0."""

    def __init__(self):
        super().__init__()
        self.inputs = []

    def forward(self, x):
        self.inputs.append(x.clone())
        return x[:, :1].repeat_interleave(2, 2).repeat_interleave(2, 3)


@pytest.mark.parametrize("slice_axis", [0, 2])
def test_neighbour_channels_match_slicestack(t1_volume, slice_axis):
    recorder = CentreCheck()
    sr = super_resolve(t1_volume, recorder, 2, slice_axis=slice_axis, in_channels=5, slice_batch=7)
    seen = torch.cat(recorder.inputs)  # (D, 5, h, w) in slice order
    expected = SliceStack(k=2, axis=slice_axis)(t1_volume).movedim(slice_axis + 1, 0)
    assert torch.equal(seen, expected)
    assert sr.shape[1 + slice_axis] == t1_volume.shape[1 + slice_axis]


def test_tiled_equals_whole_slice_for_a_local_predictor(t1_volume):
    whole = super_resolve(t1_volume, CentreCheck(), 2)
    tiled = super_resolve(t1_volume, CentreCheck(), 2, roi_size=(48, 40), overlap=0.5, sw_batch_size=3)
    torch.testing.assert_close(tiled, whole)


def test_amp_and_channels_preserved_dtype(t1_volume):
    sr = super_resolve(t1_volume[:, :32, :32, :4], Bicubic(scale=2), 2, amp=True)
    assert sr.dtype == torch.float32 and torch.isfinite(sr).all()


def test_errors(t1_volume):
    with pytest.raises(MrsrError, match="expected"):
        super_resolve(t1_volume, Bicubic(scale=3), 2)
    with pytest.raises(MrsrError, match=">= 1"):
        super_resolve(t1_volume, Bicubic(scale=2), 0.5)
    with pytest.raises(MrsrError, match="odd"):
        super_resolve(t1_volume, Bicubic(scale=2), 2, in_channels=2)
    with pytest.raises(MrsrError, match=r"\(1, X, Y, Z\)"):
        super_resolve(t1_volume[0], Bicubic(scale=2), 2)
    if not torch.cuda.is_available():
        with pytest.raises(MrsrError, match="CUDA"):
            super_resolve(t1_volume, Bicubic(scale=2), 2, device="cuda")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_matches_cpu(t1_volume):
    cpu = super_resolve(t1_volume, Bicubic(scale=2), 2)
    gpu = super_resolve(t1_volume, Bicubic(scale=2), 2, device="cuda")
    torch.testing.assert_close(gpu, cpu, atol=1e-3, rtol=1e-4)


@pytest.mark.parametrize("in_channels", [1, 3])
@pytest.mark.parametrize("name", ["durn", "wasa", "iconet", "msrn", "casnet"])
def test_every_network_through_the_volume_path(t1_volume, name, in_channels):
    """2D and 2.5D (neighbour slices as channels) on a real crop; the output lands on the HR grid."""
    from mrsr.networks import get_network

    hr = RobustNormalize()(t1_volume[:, 40:72, 40:72, 28:31])
    lr = KSpaceTruncate(factor=2)(hr)
    net = get_network(name, preset="small", scale=2, in_channels=in_channels)
    sr = super_resolve(lr, net, 2, in_channels=in_channels, slice_batch=2, roi_size=(12, 12), overlap=0.25)
    assert sr.shape == hr.shape and torch.equal(sr.affine, hr.affine) and torch.isfinite(sr).all()


def test_resolve_slice_axis_finds_the_thickest_axis():
    from mrsr.inference import resolve_slice_axis

    def vol(spacing):
        return MetaTensor(torch.zeros(1, 4, 4, 4), affine=torch.diag(torch.tensor([*spacing, 1.0])))

    assert resolve_slice_axis(vol([1.0, 1.0, 3.0]), "auto") == 2
    assert resolve_slice_axis(vol([4.0, 1.0, 1.0]), "auto") == 0
    assert resolve_slice_axis(vol([2.0, 2.0, 2.0]), "auto") == 2  # isotropic: slices last
    assert resolve_slice_axis(vol([3.0, 3.0, 1.0]), "auto") == 2  # no single thickest axis
    assert resolve_slice_axis(torch.zeros(1, 4, 4, 4), "auto") == 2
    assert resolve_slice_axis(vol([4.0, 1.0, 1.0]), 1) == 1
    rotated = torch.tensor(
        [[0.0, 0, 2, 0], [0, 3, 0, 0], [2, 0, 0, 0], [0, 0, 0, 1]]
    )  # a permuted, oblique-free affine
    assert resolve_slice_axis(MetaTensor(torch.zeros(1, 4, 4, 4), affine=rotated), "auto") == 1
    with pytest.raises(MrsrError, match="'auto'"):
        super_resolve(vol([1.0, 1.0, 1.0]), lambda x: x, 1, slice_axis=3)
