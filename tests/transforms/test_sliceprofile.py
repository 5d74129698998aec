"""The thick-slice degradation: geometry in world coordinates, exact profiles, header factors, refusals."""

from __future__ import annotations

import monai.transforms
import nibabel as nib
import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from monai.transforms import Compose
from monai.transforms.utils import get_transform_backends
from monai.utils import TransformBackends

from mrsr.data import load_volume, write_dicom_series
from mrsr.errors import MrsrError
from mrsr.transforms import (
    SliceProfileDegrade,
    SliceProfileDegradeD,
    SliceProfileDegraded,
    SliceProfileDegradeDict,
    through_plane_factor,
)
from mrsr.transforms.sliceprofile import slice_profile_weights

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _oblique_affine(spacing=(0.8, 1.1, 0.9)) -> torch.Tensor:
    """A rotated, shifted voxel-to-world affine: the geometry must hold in any orientation."""
    c, s = np.cos(0.4), np.sin(0.4)
    rot = np.array([[c, -s, 0.0], [s * 0.8, c * 0.8, 0.6], [-s * 0.6, -c * 0.6, 0.8]])
    affine = np.eye(4)
    affine[:3, :3] = rot * np.asarray(spacing)
    affine[:3, 3] = (-40.0, 12.5, 7.25)
    return torch.as_tensor(affine)


def _blob(shape=(12, 10, 64), centre=(5.5, 4.2, 29.3), sigma=(2.0, 2.0, 4.0)) -> torch.Tensor:
    grids = torch.meshgrid(*[torch.arange(n, dtype=torch.float64) for n in shape], indexing="ij")
    r2 = sum(((g - c) / s) ** 2 for g, c, s in zip(grids, centre, sigma))
    return torch.exp(-0.5 * r2)[None]


def _world_centroid(img: MetaTensor) -> np.ndarray:
    x = img[0].as_tensor().double()
    idx = torch.stack(torch.meshgrid(*[torch.arange(n, dtype=torch.float64) for n in x.shape], indexing="ij"))
    voxel = (idx * x).reshape(3, -1).sum(1) / x.sum()
    affine = img.affine.double()
    return (affine[:3, :3] @ voxel + affine[:3, 3]).numpy()


@pytest.mark.parametrize("profile", ["box", "gaussian", "kspace"])
@pytest.mark.parametrize("scale", [2, 3, 4, 5])
@pytest.mark.parametrize("axis", [0, 2])
def test_lr_overlays_hr_in_world_coordinates(profile, scale, axis):
    data = _blob().movedim(3, axis + 1) if axis != 2 else _blob()
    hr = MetaTensor(data, affine=_oblique_affine())
    lr = SliceProfileDegrade(scale, axis, profile)(hr)
    lr_voxel_mm = float(lr.affine[:3, axis].norm())
    assert lr_voxel_mm == pytest.approx(scale * float(hr.affine[:3, axis].norm()))
    error = np.linalg.norm(_world_centroid(lr) - _world_centroid(hr))
    assert error < 0.1 * lr_voxel_mm, f"centroid off by {error / lr_voxel_mm:.3f} LR voxel"


@pytest.mark.parametrize("scale", [1, 2, 3, 4])
def test_lr_origin_moves_by_half_a_slab_on_the_real_scan(t1_volume, scale):
    lr = SliceProfileDegrade(scale, axis=2)(t1_volume)
    hr_affine = t1_volume.affine.double()
    expected = hr_affine.clone()
    expected[:3, 3] += hr_affine[:3, 2] * (scale - 1) / 2
    expected[:3, 2] *= scale
    assert torch.equal(lr.affine.double(), expected)
    assert lr.shape == (1, 128, 128, 62 // scale)
    # LR voxel 0 is the centre of HR voxels 0..s-1, and the other axes are untouched
    assert torch.allclose(lr.affine[:, :2].double(), hr_affine[:, :2])
    assert np.array_equal(lr.meta["spatial_shape"], [128, 128, 62 // scale])


@pytest.mark.parametrize(
    "kwargs",
    [
        {"profile": "box"},
        {"profile": "gaussian"},
        {"profile": "gaussian", "thickness": 7.5},
        {"profile": "box", "gap": 1.5},
        {"profile": "box", "thickness": 5.0},  # overlapping slices
        {"profile": np.array([1.0, 3.0, 4.0, 3.0, 1.0])},
        {"profile": np.array([1.0, 2.0])},  # half a sample off the grid
        {"profile": "kspace"},
    ],
)
def test_a_constant_volume_stays_constant(kwargs):
    img = torch.full((2, 6, 5, 23), 7.25, dtype=torch.float64)
    lr = SliceProfileDegrade(3, 2, **kwargs)(img)
    assert lr.shape == (2, 6, 5, 7)
    assert torch.allclose(lr, torch.full_like(lr, 7.25), rtol=0, atol=1e-12)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_box_is_the_mean_of_each_slab_and_drops_the_partial_one(t1_volume, scale):
    hr = t1_volume[0].double()  # real data, 62 slices: a partial slab at x4
    lr = SliceProfileDegrade(scale, axis=2)(hr[None])[0]
    n = 62 // scale
    expected = hr[..., : n * scale].reshape(128, 128, n, scale).mean(-1)
    assert lr.shape == expected.shape
    assert torch.allclose(lr, expected, rtol=0, atol=1e-12 * float(hr.max()))


def test_box_along_the_first_axis_in_float32(t1_volume):
    lr = SliceProfileDegrade(2, axis=0)(t1_volume)
    assert lr.dtype == torch.float32 and lr.shape == (1, 64, 128, 62)
    expected = t1_volume[0].reshape(64, 2, 128, 62).mean(1)
    assert torch.allclose(lr[0].as_tensor(), expected.as_tensor(), atol=1e-5 * float(t1_volume.max()))


def test_gap_leaves_out_the_edges_of_each_slab():
    x = torch.randn(1, 3, 2, 40, dtype=torch.float64)
    lr = SliceProfileDegrade(4, 2, "box", gap=2)(x)  # thickness 2 of 4, centred: samples 4k+1, 4k+2
    assert torch.allclose(lr, (x[..., 1::4] + x[..., 2::4]) / 2, atol=1e-14)
    poked = x.clone()
    poked[..., 0::4] += 100.0
    poked[..., 3::4] -= 50.0
    assert torch.equal(SliceProfileDegrade(4, 2, "box", gap=2)(poked), lr)
    # thickness and gap agree with each other: the same slices
    assert torch.equal(SliceProfileDegrade(4, 2, "box", thickness=2, gap=2)(x), lr)
    # a gap of a fraction of a sample weights the edge samples by what the box covers
    w, t0 = slice_profile_weights(3, "box", thickness=2)
    assert w.tolist() == [0.25, 0.5, 0.25] and t0 == 0


def test_gaussian_has_its_fwhm_and_reaches_into_neighbouring_slabs():
    w, t0 = slice_profile_weights(4, "gaussian", thickness=8.0)
    positions = np.arange(w.size) + t0
    assert w.sum() == pytest.approx(1.0) and positions @ w == pytest.approx(1.5)
    sigma = np.sqrt(((positions - 1.5) ** 2) @ w - 1 / 12)  # less the variance of a sample's own width
    assert 2 * np.sqrt(2 * np.log(2)) * sigma == pytest.approx(8.0, rel=0.01)
    assert positions.min() < 0 and positions.max() > 3


def test_custom_npy_profile(tmp_path):
    path = tmp_path / "profile.npy"
    np.save(path, np.array([1.0, 2.0, 1.0]))
    x = torch.randn(1, 2, 2, 30, dtype=torch.float64)
    lr = SliceProfileDegrade(3, 2, path)(x)
    expected = (x[..., 0::3] + 2 * x[..., 1::3] + x[..., 2::3]) / 4
    assert torch.allclose(lr, expected, atol=1e-14)
    # a 3-sample profile at x4 sits half a sample off the grid: averaged onto it, same centroid
    w, t0 = slice_profile_weights(4, str(path))
    assert np.allclose(w, [0.125, 0.375, 0.375, 0.125]) and t0 == 0
    assert (np.arange(w.size) + t0) @ w == pytest.approx(1.5)
    np.save(tmp_path / "flat.npy", np.ones((3, 3)))
    with pytest.raises(MrsrError, match="must be a 1D array"):
        SliceProfileDegrade(3, 2, tmp_path / "flat.npy")
    with pytest.raises(MrsrError, match="positive sum"):
        SliceProfileDegrade(3, 2, np.array([1.0, -1.0]))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"scale": 2.5}, "integer factor"),
        ({"scale": 2, "profile": "sinc"}, "Unknown slice profile"),
        ({"scale": 4, "thickness": 3, "gap": 2}, "must equal the slice spacing"),
        ({"scale": 4, "thickness": -1}, ">= 0"),
        ({"scale": 4, "gap": 4}, "must be positive"),
        ({"scale": 4, "profile": np.ones(3), "thickness": 2}, "sets its own width"),
        ({"scale": 4, "profile": "kspace", "gap": 1}, "one slice spacing wide"),
    ],
)
def test_bad_arguments_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SliceProfileDegrade(**kwargs)


@pytest.mark.parametrize("n", [7, 8])  # odd and even LR grids (the even one's Nyquist bin is split)
@pytest.mark.parametrize("scale", [2, 3])
def test_kspace_profile_samples_the_band_limited_signal_at_the_slab_centres(n, scale):
    """Below the LR Nyquist a periodic signal comes out exactly at the slab centres s*k + (s-1)/2; above it,
    nothing of it comes out; the result is real and matches the k-space truncation's band on the shifted grid."""
    big = scale * n
    t = torch.arange(big + 1, dtype=torch.float64)  # one trailing sample: a partial slab, dropped
    low = lambda u: torch.cos(2 * torch.pi * 3 * u / big + 0.4)  # noqa: E731
    high = torch.cos(2 * torch.pi * (n // 2 + 1) * t / big)  # just above the LR band
    centres = scale * torch.arange(n, dtype=torch.float64) + (scale - 1) / 2
    lr = SliceProfileDegrade(scale, 0, "kspace")((low(t) + high)[None])[0]
    torch.testing.assert_close(lr, low(centres), atol=1e-10, rtol=0)
    assert lr.dtype == torch.float64 and lr.shape == (n,)


def test_too_large_a_factor_is_refused():
    with pytest.raises(ValueError, match="would leave 1 slice"):
        SliceProfileDegrade(5, 2)(torch.zeros(1, 4, 4, 9))
    with pytest.raises(ValueError, match="Axis 2 has 1 slice: too small to degrade"):  # no factor would do
        SliceProfileDegrade(2, 2)(torch.zeros(1, 4, 4, 1))


def test_a_gap_wider_than_the_spacing_is_explained_in_hr_samples():
    with pytest.raises(ValueError, match="a gap of 5 HR samples leaves nothing of the slice spacing, 4 HR samples"):
        SliceProfileDegrade(4, 2, gap=5)


@pytest.mark.parametrize("device", DEVICES)
def test_runs_on_the_input_device_without_a_copy_to_the_cpu(device):
    x = torch.rand(1, 8, 8, 16, device=device)
    lr = SliceProfileDegrade(4, 2, "gaussian")(MetaTensor(x))
    assert lr.device == x.device and lr.shape == (1, 8, 8, 4)
    cpu = SliceProfileDegrade(4, 2, "gaussian")(x.cpu())
    assert torch.allclose(lr.cpu().as_tensor(), cpu, atol=1e-6)


def test_compose_inverse_interpolates_back_between_slice_centres():
    ramp = torch.arange(24, dtype=torch.float64).reshape(1, 1, 1, 24).expand(1, 3, 2, 24).contiguous()
    hr = MetaTensor(ramp, affine=_oblique_affine())
    chain = Compose([SliceProfileDegrade(4, 2)])
    lr = chain(hr)
    assert len(lr.applied_operations) == 1
    assert torch.allclose(lr[0, 0, 0].as_tensor(), torch.arange(6, dtype=torch.float64) * 4 + 1.5)
    back = chain.inverse(lr)
    assert back.shape == hr.shape and torch.allclose(back.affine.double(), hr.affine.double())
    inner = slice(2, 22)  # between the first and last slice centres a ramp comes back exactly
    assert torch.allclose(back[..., inner].as_tensor(), ramp[..., inner], atol=1e-12)
    assert float(back[..., 0].max()) == 1.5 and back.applied_operations == []


def test_dictionary_version_keeps_other_keys_meta_and_inverts():
    hr = MetaTensor(torch.rand(1, 6, 6, 12), affine=_oblique_affine(), meta={"filename_or_obj": "hr.nii.gz"})
    t = SliceProfileDegraded("image", output_keys="lr", scale=3, profile="gaussian")
    assert SliceProfileDegradeD is SliceProfileDegraded and SliceProfileDegradeDict is SliceProfileDegraded
    d = t({"image": hr, "label": "keep", "mask": torch.ones(2)})
    assert d["label"] == "keep" and torch.equal(d["mask"], torch.ones(2))
    assert d["image"] is hr and d["image"].applied_operations == []
    assert d["lr"].shape == (1, 6, 6, 4) and d["lr"].meta["filename_or_obj"] == "hr.nii.gz"
    assert len(d["lr"].applied_operations) == 1
    sr = MetaTensor(hr.as_tensor() * 2, meta=dict(d["lr"].meta), applied_operations=list(d["lr"].applied_operations))
    back = t.inverse(d)
    assert back["lr"].shape == hr.shape and torch.allclose(back["lr"].affine.double(), hr.affine.double())
    in_place = SliceProfileDegraded("image", scale=3)({"image": hr})
    assert in_place["image"].shape == (1, 6, 6, 4)
    # an output already on the HR grid (an SR prediction given the LR history) keeps its values
    restored = t.inverse({"lr": sr})["lr"]
    assert torch.equal(restored.as_tensor(), hr.as_tensor() * 2) and torch.allclose(restored.affine, hr.affine.double())


def _nifti(tmp_path, spacing, shape=(16, 16, 8), name="v.nii.gz"):
    path = tmp_path / name
    nib.save(nib.Nifti1Image(np.zeros(shape, np.float32), np.diag([*spacing, 1.0])), path)
    return load_volume(path)


@pytest.mark.parametrize(
    "spacing, axis, factor",
    [((1, 1, 4), 2, 4.0), ((0.9, 0.9, 3.5), 2, 3.5 / 0.9), ((5, 1, 1), 0, 5.0), ((0.8, 1.2, 3), 2, 3.0)],
)
def test_factor_from_nifti_headers(tmp_path, spacing, axis, factor):
    found = through_plane_factor(_nifti(tmp_path, spacing))
    assert found == (axis, pytest.approx(factor)) and found.axis == axis
    assert found.spacing == pytest.approx(max(spacing)) and found.thickness is None
    assert through_plane_factor(np.diag([*spacing, 1.0])) == (axis, pytest.approx(factor))
    assert through_plane_factor(list(spacing)) == (axis, pytest.approx(factor))


def test_factor_of_the_real_scan_and_of_an_oblique_header(t1_volume):
    assert through_plane_factor(t1_volume) == (2, pytest.approx(1.5))  # 2 x 2 x 3 mm
    assert through_plane_factor(_oblique_affine((1.0, 1.0, 2.6))) == (2, pytest.approx(2.6))


def test_factor_and_thickness_from_a_dicom_series(tmp_path):
    import pydicom
    from monai.data import PydicomReader
    from monai.transforms import LoadImage

    series = write_dicom_series(np.random.default_rng(0).random((16, 16, 6)), np.diag([0.9, 0.9, 3.5, 1]),
                                tmp_path / "series")  # fmt: skip
    assert through_plane_factor(load_volume(series)) == (2, pytest.approx(3.5 / 0.9))
    for path in series.iterdir():  # 2 mm slices every 3.5 mm: a 1.5 mm gap
        ds = pydicom.dcmread(path)
        ds.SliceThickness = 2.0
        ds.save_as(path)
    mine = through_plane_factor(load_volume(series))  # mrsr's reader carries SliceThickness
    assert mine.thickness == pytest.approx(2.0) and mine.spacing == pytest.approx(3.5)
    img = LoadImage(reader=PydicomReader(prune_metadata=False), image_only=True, ensure_channel_first=True)(series)
    found = through_plane_factor(img)
    assert found == (2, pytest.approx(3.5 / 0.9)) and found.thickness == pytest.approx(2.0)
    assert found.spacing == pytest.approx(3.5)
    tagged = MetaTensor(torch.zeros(1, 4, 4, 4), affine=torch.diag(torch.tensor([1.0, 1.0, 3.0, 1.0])),
                        meta={"mrsr_dicom_tags": {"SliceThickness": "2.5"}})  # fmt: skip
    assert through_plane_factor(tagged).thickness == 2.5


def test_isotropic_volumes_are_refused(tmp_path):
    from mrsr.data.manifest import resolve_path

    pytest.importorskip("nilearn")
    mni = load_volume(resolve_path("pkg:nilearn/datasets/data/mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz", None))
    with pytest.raises(MrsrError, match="nearly isotropic") as err:
        through_plane_factor(mni)
    assert "\n" not in str(err.value) and "mrsr infer" in str(err.value)
    with pytest.raises(MrsrError, match="factor 1.40"):
        through_plane_factor(_nifti(tmp_path, (1, 1, 1.4)))
    with pytest.raises(MrsrError, match="axes 1 and 2 are equally thick"):
        through_plane_factor([1.0, 4.0, 4.0])


@pytest.mark.parametrize(
    "given, shape",
    [([1.0, 3.0], None), (np.eye(3), None), ([1.0, 1.0, 4.0], (64, 64, 1)), ("volume", None)],
)
def test_2d_input_is_refused(tmp_path, given, shape):
    if isinstance(given, str):
        given = _nifti(tmp_path, (1, 1, 5), shape=(32, 32, 1))
    with pytest.raises(MrsrError, match="2D") as err:
        through_plane_factor(given, shape)
    assert "\n" not in str(err.value)


def test_backends_are_monai_transform_backends(monkeypatch):
    """SliceProfileDegrade(d) declare TORCH and NUMPY as ``TransformBackends`` members, MONAI's
    ``get_transform_backends()`` reports both, and a numpy image is degraded into a numpy image."""
    for cls in (SliceProfileDegrade, SliceProfileDegraded):
        assert all(isinstance(b, TransformBackends) for b in cls.backend), cls
        assert cls.backend == [TransformBackends.TORCH, TransformBackends.NUMPY]
    monkeypatch.setattr(monai.transforms, "SliceProfileDegrade", SliceProfileDegrade, raising=False)
    assert get_transform_backends()["SliceProfileDegrade"] == [True, True]
    out = SliceProfileDegrade(scale=4, axis=2)(np.arange(8.0).reshape(1, 1, 1, 8))
    assert isinstance(out, np.ndarray)
    assert out.flatten().tolist() == [1.5, 5.5]  # the means of [0, 1, 2, 3] and [4, 5, 6, 7]
