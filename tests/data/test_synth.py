"""Synthetic MR generator (mrsr.data.synth): reproducible items, probabilities, random contrast, sharpness, files."""

from __future__ import annotations

import sys

import monai.transforms
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from monai.data import DataLoader, MetaTensor
from monai.transforms.utils import get_transform_backends
from monai.utils import TransformBackends

from mrsr.data import load_volume
from mrsr.data.synth import (
    RandSynthMR,
    RandSynthMRd,
    SynthMRDataset,
    _mni152_arrays,
    high_band_energy,
    kmeans_tissue_maps,
    mni152_t1,
    mni152_tissue_maps,
    write_examples,
)
from mrsr.errors import MrsrError

SIZE = (24, 24, 3)


def shells(size: int = 32) -> MetaTensor:
    """(3, size, size, size) soft concentric shells (CSF, GM, WM) with a wavy boundary; at most 1 per voxel."""
    axis = torch.linspace(-1, 1, size)
    x, y, z = torch.meshgrid(axis, axis, axis, indexing="ij")
    r = torch.sqrt(x * x + y * y + z * z) + 0.05 * torch.sin(12 * torch.atan2(y, x))
    brain, inner, core = (torch.sigmoid((b - r) / 0.02) for b in (0.85, 0.7, 0.45))
    return MetaTensor(torch.stack([brain - inner, inner - core, core]), affine=torch.eye(4, dtype=torch.float64))


@pytest.fixture(scope="module")
def maps() -> MetaTensor:
    return shells()


@pytest.fixture(scope="module")
def mni_maps() -> MetaTensor:
    pytest.importorskip("nilearn")
    return mni152_tissue_maps()


def blur(slab: torch.Tensor, sigma: float = 1.5) -> torch.Tensor:
    """Gaussian blur of a (1, H, W, S) slab in-plane (reflected edges)."""
    radius = int(3 * sigma)
    taps = torch.exp(-0.5 * (torch.arange(-radius, radius + 1.0) / sigma) ** 2)
    taps = (taps / taps.sum())[None, None]
    x = torch.as_tensor(slab)[0].permute(2, 0, 1)[:, None]  # (S, 1, H, W)
    x = F.conv2d(F.pad(x, (radius, radius, 0, 0), mode="reflect"), taps[..., None, :])
    x = F.conv2d(F.pad(x, (0, 0, radius, radius), mode="reflect"), taps[..., :, None])
    return x[:, 0].permute(1, 2, 0)[None]


def test_items_are_reproducible_per_seed_and_index_in_any_order(maps):
    first = SynthMRDataset([maps, maps[:2]], 10, seed=3, spatial_size=SIZE)
    again = SynthMRDataset([maps, maps[:2]], 10, seed=3, spatial_size=SIZE)
    item = first[4]
    assert torch.equal(item, first[4])
    later = [again[i] for i in (7, 4, 0)]  # another order, another instance: the same item 4
    assert torch.equal(later[1], item)
    assert not torch.equal(item, first[5])
    assert not torch.equal(item, SynthMRDataset([maps], 10, seed=4, spatial_size=SIZE)[4])
    assert torch.equal(first[-1], first[9])
    with pytest.raises(IndexError):
        first[10]


def test_items_do_not_depend_on_the_dataloader_workers(maps):
    dataset = SynthMRDataset([maps], 8, seed=5, spatial_size=(16, 16, 3))
    loaded = torch.cat(list(DataLoader(dataset, batch_size=4, num_workers=2)))
    assert torch.equal(loaded.as_tensor(), torch.stack([dataset[i] for i in range(8)]).as_tensor())


@pytest.mark.parametrize("size", [(16, 16, 1), (12, 20, 3)])
def test_output_shape_dtype_range_and_affine(maps, size):
    dataset = SynthMRDataset([maps], 6, spatial_size=size)
    for i in range(len(dataset)):
        out = dataset[i]
        assert isinstance(out, MetaTensor) and out.shape == (1, *size) and out.dtype == torch.float32
        assert torch.isfinite(out).all() and float(out.min()) >= 0.0 and float(out.max()) <= 1.0
        assert float(out.max()) > 0.5  # normalised: the bright end reaches well up to 1
        assert torch.equal(out.affine, torch.eye(4, dtype=torch.float64))


def test_array_transform_is_seeded_and_can_repeat_its_draw(maps):
    make = RandSynthMR(spatial_size=SIZE).set_random_state(1)
    a = make(maps)
    assert torch.equal(make(maps, randomize=False), a)
    assert not torch.equal(make(maps), a)
    assert torch.equal(RandSynthMR(spatial_size=SIZE).set_random_state(1)(maps), a)
    assert {"means", "background", "orientation", "snr", "gamma"} <= set(make.params)


def test_dict_transform_writes_its_key_and_concatenates_keys(maps):
    data = {"maps": maps, "other": 1}
    out = RandSynthMRd("maps", output_key="hr", spatial_size=SIZE).set_random_state(0)(data)
    assert out["hr"].shape == (1, *SIZE) and out["maps"] is maps and out["other"] == 1 and "hr" not in data
    split = {"csf": maps[:1], "gm": maps[1:2], "wm": maps[2:]}
    joined = RandSynthMRd(("csf", "gm", "wm"), spatial_size=SIZE).set_random_state(0)(split)
    assert torch.equal(joined["image"], out["hr"])


def test_contrast_order_is_random(maps):
    make = RandSynthMR(spatial_size=(8, 8, 1)).set_random_state(0)
    orders = set()
    for _ in range(20):
        make(maps)
        _, gm, wm = make.params["means"]
        orders.add(gm > wm)
    assert orders == {True, False}  # T1-like (WM brighter) and T2-like (GM brighter) contrasts both occur


@pytest.mark.parametrize("kind", ["blob", "ellipse", "rectangle"])
def test_shapes_lie_inside_the_box_they_are_painted_in(kind):
    make = RandSynthMR(spatial_size=(40, 40, 3), shape_radius_range=(8.0, 10.0))
    free = torch.ones(40, 40, 3)
    for seed in range(5):
        (rows, cols), mask = make._shape(kind, np.random.default_rng(seed), free)
        assert mask.shape == (rows.stop - rows.start, cols.stop - cols.start, 3)
        assert float(mask.amin(dim=(0, 1)).max()) < 0.01 < 0.8 < float(mask.amax(dim=(0, 1)).min())


def test_kmeans_recovers_two_classes_with_zero_background():
    truth = torch.zeros(20, 16, 8, dtype=torch.long)
    truth[2:10, 2:14, 1:7], truth[10:18, 2:14, 1:7] = 1, 2
    gen = torch.Generator().manual_seed(0)
    image = torch.tensor([0.0, 1.0, 3.0])[truth] + 0.05 * torch.randn(truth.shape, generator=gen) * (truth > 0)
    soft = kmeans_tissue_maps(image[None], classes=2)
    assert soft.shape == (2, 20, 16, 8) and soft.dtype == torch.float32
    foreground = truth > 0
    assert torch.equal(soft.argmax(0)[foreground], truth[foreground] - 1)  # darkest class first
    assert float(soft[:, ~foreground].abs().max()) == 0.0
    assert torch.allclose(soft.sum(0)[foreground], torch.ones(int(foreground.sum())), atol=1e-5)


def test_kmeans_maps_of_a_real_scan_are_probabilities(t1_volume):
    soft = kmeans_tissue_maps(t1_volume, classes=3)
    assert soft.shape == (3, *t1_volume.shape[1:])
    assert float(soft.min()) >= 0.0 and float(soft.sum(0).max()) <= 1.0 + 1e-5
    assert torch.allclose(soft.affine, t1_volume.affine)
    assert SynthMRDataset([soft], 2, spatial_size=(16, 16, 2))[1].shape == (1, 16, 16, 2)  # 2x2x3 mm maps work too


def test_mni152_maps_are_probabilities_with_the_template_affine(mni_maps):
    t1 = mni152_t1()
    assert mni_maps.shape == (3, 197, 233, 189) and mni_maps.dtype == torch.float32
    assert float(mni_maps.min()) >= 0.0 and float(mni_maps.sum(0).max()) <= 1.0 + 1e-5
    assert torch.allclose(mni_maps.affine, t1.affine)
    brain = mni_maps.sum(0) > 0.5
    assert 0.15 < float(brain.float().mean()) < 0.3  # the brain fills about a fifth of the template's box
    csf, gm, wm = (float(m[brain].mean()) for m in mni_maps)
    assert gm > csf and wm > csf


def test_missing_nilearn_is_a_one_line_instruction(monkeypatch, tmp_path):
    _mni152_arrays.cache_clear()
    monkeypatch.setitem(sys.modules, "nilearn", None)
    with pytest.raises(MrsrError, match="pip install nilearn") as err:
        mni152_tissue_maps()
    assert "\n" not in str(err.value)
    with pytest.raises(MrsrError, match="pip install nilearn"):
        write_examples(tmp_path / "examples", 2)
    assert not (tmp_path / "examples").exists()  # nothing left behind
    _mni152_arrays.cache_clear()


def test_high_band_energy_reference_values():
    gen = torch.Generator().manual_seed(0)
    assert high_band_energy(torch.randn(64, 64, 4, generator=gen)) == pytest.approx(0.75, abs=0.03)
    smooth = torch.sin(torch.arange(32.0) * 0.3)[:, None] * torch.ones(32)  # 0.048 cycles/pixel
    assert high_band_energy(smooth) < 0.01
    assert high_band_energy(torch.ones(1, 8, 8, 2)) == 0.0


def test_slabs_are_sharp_and_blurring_removes_it(mni_maps):
    """No noise (it would carry the high band alone): the anatomy, texture and shapes must be sharper than real MR
    slices, and a blurred slab must score far lower, so the check can fail."""
    dataset = SynthMRDataset([mni_maps], 8, spatial_size=(48, 48, 3), snr_range=None)
    slabs = [dataset[i] for i in range(len(dataset))]
    synthetic = float(np.mean([high_band_energy(s) for s in slabs]))
    real = high_band_energy(mni152_t1()[:, 50:146, 68:164, 40:150])  # 96x96 on the brain, axial slices
    assert synthetic >= real
    blurred = float(np.mean([high_band_energy(blur(s)) for s in slabs]))
    assert blurred < 0.2 * synthetic


def test_bad_maps_and_sizes_are_refused(maps):
    with pytest.raises(MrsrError, match="probabilities"):
        SynthMRDataset([maps * 2], 1)
    with pytest.raises(MrsrError, match="label source"):
        SynthMRDataset([], 1)
    with pytest.raises(MrsrError, match=r"\(C, X, Y, Z\)"):
        SynthMRDataset([maps[0]], 1)
    with pytest.raises(ValueError, match="spatial_size"):
        RandSynthMR(spatial_size=(16, 16))


def test_write_examples_writes_nifti_and_panel_and_refuses_to_overwrite(tmp_path, maps):
    out = tmp_path / "examples"
    paths = write_examples(out, 3, spatial_size=(20, 20, 1), maps=[maps])
    assert [p.name for p in paths] == ["synth_0000.nii.gz", "synth_0001.nii.gz", "synth_0002.nii.gz", "panel.png"]
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in paths)  # no temporary files left
    first = load_volume(paths[0])
    assert first.shape == (1, 20, 20, 1)
    assert torch.allclose(first, SynthMRDataset([maps], 3, spatial_size=(20, 20, 1))[0], atol=1e-6)
    assert paths[-1].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(MrsrError, match="overwrite=True") as err:
        write_examples(out, 3, spatial_size=(20, 20, 1), maps=[maps])
    assert "\n" not in str(err.value)
    assert write_examples(out, 3, seed=1, spatial_size=(20, 20, 1), maps=[maps], overwrite=True) == paths
    with pytest.raises(MrsrError):
        write_examples(tmp_path / "none", 0, maps=[maps])


def test_backends_are_monai_transform_backends(monkeypatch):
    """RandSynthMR(d) declare TORCH and NUMPY as ``TransformBackends`` members, MONAI's
    ``get_transform_backends()`` reports both, and numpy tissue maps give the very slab the same maps
    as a tensor give."""
    for cls in (RandSynthMR, RandSynthMRd):
        assert all(isinstance(b, TransformBackends) for b in cls.backend), cls
        assert cls.backend == [TransformBackends.TORCH, TransformBackends.NUMPY]
    monkeypatch.setattr(monai.transforms, "RandSynthMR", RandSynthMR, raising=False)
    assert get_transform_backends()["RandSynthMR"] == [True, True]
    maps = np.random.default_rng(0).random((3, 16, 16, 16), dtype=np.float32) / 3
    out = RandSynthMR(spatial_size=(8, 8, 1)).set_random_state(0)(maps)
    assert isinstance(out, MetaTensor) and out.shape == (1, 8, 8, 1)
    assert torch.equal(out, RandSynthMR(spatial_size=(8, 8, 1)).set_random_state(0)(torch.from_numpy(maps)))
