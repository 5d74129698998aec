"""Training data: aligned LR/HR patch pairs from real volumes, sampling, validation pairs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mrsr.engines.data import (
    Degradation,
    PairedPatchDataset,
    SampleSampler,
    VolumePairDataset,
    load_hr_volumes,
    slice_weights,
    steps_per_epoch,
)
from mrsr.errors import MrsrError
from mrsr.transforms import fourier_resize, truncated_size, upsample_aligned


@pytest.fixture(scope="module")
def volume(t1_volume):
    """The bundled real T1 head, normalised: (1, 128, 128, 62)."""
    from mrsr.transforms import RobustNormalize

    return RobustNormalize()(t1_volume)


def _interior_l1(a: torch.Tensor, b: torch.Tensor, margin: int = 4) -> float:
    return float((a - b)[..., margin:-margin, margin:-margin].abs().mean())


@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize("k", [0, 1])
def test_pair_shapes_and_determinism(volume, scale, k):
    ds = PairedPatchDataset([volume], scale, patch_size=12, neighbours=k, samples_per_epoch=10, seed=3)
    a, b = ds[5], ds[5]
    assert a["image"].shape == (2 * k + 1, 12, 12) and a["label"].shape == (1, 12 * scale, 12 * scale)
    assert a["image"].dtype == torch.float32 and a["label"].dtype == torch.float32
    assert torch.equal(a["image"], b["image"]) and torch.equal(a["label"], b["label"])
    assert not torch.equal(ds[6]["label"], a["label"])
    assert len(ds) == 10


@pytest.mark.parametrize("augment", [False, True])
def test_pairs_are_aligned_as_the_degradation_says(volume, augment):
    """LR sample m lies on HR sample m*s: the aligned cubic upsampling of the LR patch is closer to
    the HR patch than to the HR patch moved by one pixel, also after flips and transposes."""
    ds = PairedPatchDataset([volume], 2, patch_size=24, samples_per_epoch=40, degradation=Degradation(augment=augment))
    here = shifted = 0.0
    for i in range(40):
        s = ds[i]
        up = upsample_aligned(s["image"][None], 2, "cubic")[0]
        hr = s["label"]
        here += _interior_l1(up, hr)
        shifted += _interior_l1(up, torch.roll(hr, shifts=(1, 1), dims=(1, 2)))
    assert here < 0.6 * shifted


@pytest.mark.parametrize("size", [(128, 128), (127, 125)])
def test_lr_is_the_whole_slice_truncated_then_cropped(volume, size):
    """Without augmentation, noise or jitter the LR patch is a crop of the whole slice's truncation,
    and the HR patch starts at s times the LR patch's corner. Odd slices are first cropped to even
    sizes: truncating 127 samples to 64 would space the LR samples 127/64 HR samples apart, not 2."""
    vol = volume[:, : size[0], : size[1]]
    ds = PairedPatchDataset([vol], 2, patch_size=16, samples_per_epoch=5, degradation=Degradation(augment=False))
    s = ds[0]
    slices = vol[0].movedim(2, 0)[:, :126, :124] if size[0] % 2 else vol[0].movedim(2, 0)
    lr_slices = fourier_resize(slices, [slices.shape[1] // 2, slices.shape[2] // 2], [1, 2]).abs()
    hits = [z for z in range(slices.shape[0])
            for y in range(0, lr_slices.shape[1] - 15) for x in range(0, lr_slices.shape[2] - 15)
            if torch.equal(slices[z, 2 * y : 2 * y + 32, 2 * x : 2 * x + 32], s["label"][0])
            and torch.allclose(lr_slices[z, y : y + 16, x : x + 16], s["image"][0], atol=1e-6)]  # fmt: skip
    assert hits


@pytest.mark.parametrize("k", [0, 1])
def test_patch_degradation_makes_the_lr_patch_the_hr_patch_band(volume, k):
    """For training with data consistency: the LR patch is exactly the k-space truncation of the HR
    patch under it (every channel), so consistency on the patch gives the HR patch's band."""
    from mrsr.transforms import kspace_consistency

    ds = PairedPatchDataset([volume], 2, patch_size=16, neighbours=k, samples_per_epoch=4, seed=1,
                            patch_degradation=True)  # fmt: skip
    for i in range(4):
        pair = ds[i]
        assert pair["image"].shape == (2 * k + 1, 16, 16)
        band = fourier_resize(pair["label"], [16, 16], [1, 2]).abs()
        assert torch.allclose(band[0], pair["image"][k], atol=1e-5)
        out = kspace_consistency(torch.zeros(1, 1, 32, 32), pair["image"][None, k : k + 1], (2, 3))
        assert torch.allclose(fourier_resize(out, [16, 16], [2, 3])[0].abs(), band, atol=1e-5)
    with pytest.raises(ValueError, match="stage targets"):
        PairedPatchDataset([volume], 4, patch_size=8, target_grids=(2,), patch_degradation=True)


@pytest.mark.parametrize("k", [0, 1])
def test_target_grids_are_whole_slice_acquisitions_under_the_patch(volume, k):
    """``label_f`` is the clean acquisition on grid 1/f, from the whole slice: at f = s it is the
    clean LR patch itself. Truncating the HR patch instead (periodic) is measurably off at the patch edges."""
    clean = Degradation(augment=False)
    ds2 = PairedPatchDataset([volume], 2, 16, neighbours=k, samples_per_epoch=6, degradation=clean, target_grids=(2,))
    for i in range(6):
        item = ds2[i]
        assert torch.equal(item["label_2"], item["image"][k : k + 1])
    ds4 = PairedPatchDataset([volume], 4, 12, neighbours=k, samples_per_epoch=3, degradation=clean, target_grids=(2, 4))
    item = ds4[1]
    assert item["label_2"].shape == (1, 24, 24) and item["label_4"].shape == (1, 12, 12)
    assert torch.equal(item["label_4"], item["image"][k : k + 1])
    x2_of_hr = fourier_resize(item["label"], [24, 24], [1, 2]).abs()  # the HR patch treated as periodic
    edge = (x2_of_hr - item["label_2"]).abs()
    assert float(edge[:, :2].mean()) > 3 * float(edge[:, 8:-8, 8:-8].mean())  # wrap-around ringing at the edges
    with pytest.raises(ValueError, match="divisor"):
        PairedPatchDataset([volume], 4, 12, target_grids=(3,))


def test_neighbours_are_the_adjacent_slices(volume):
    ds = PairedPatchDataset(
        [volume], 2, patch_size=16, neighbours=1, samples_per_epoch=5, degradation=Degradation(augment=False)
    )
    lr = ds[1]["image"]
    assert not torch.equal(lr[0], lr[1]) and not torch.equal(lr[1], lr[2])
    ds0 = PairedPatchDataset(
        [volume], 2, patch_size=16, neighbours=0, samples_per_epoch=5, degradation=Degradation(augment=False)
    )
    assert torch.allclose(ds0[1]["image"][0], lr[1], atol=1e-6)  # same draw, same centre slice


def test_background_slices_are_down_weighted(volume):
    w = slice_weights(volume, 2, background_weight=0.1)
    assert w.shape == (62,) and w.min() >= 0.1 and w.max() == pytest.approx(1.0)
    padded = torch.cat([volume, torch.zeros_like(volume)], dim=3)  # 62 empty slices added
    w = slice_weights(padded, 2, background_weight=0.1)
    np.testing.assert_allclose(w[62:], 0.1)
    ds = PairedPatchDataset([padded], 2, patch_size=16, samples_per_epoch=1, degradation=Degradation(augment=False))
    picks = np.array(
        [ds.slice_index[int(np.searchsorted(ds.cumulative, r, side="right"))][1] for r in np.linspace(0, 0.999, 4000)]
    )
    empty_share = (picks >= 62).mean()
    assert empty_share == pytest.approx(6.2 / w.sum(), abs=0.01) and empty_share < 0.25  # half the slices


def test_balance_volumes_draws_every_volume_equally_often(volume):
    small = volume[..., :6]  # a 6-slice volume next to the 62-slice one
    pooled = PairedPatchDataset([volume, small], 2, 16, samples_per_epoch=1)
    balanced = PairedPatchDataset([volume, small], 2, 16, samples_per_epoch=1, balance_volumes=True)

    def small_share(ds):
        r = np.linspace(0, 0.9999, 4000)
        return np.mean([ds.slice_index[int(np.searchsorted(ds.cumulative, x, side="right"))][0] == 1 for x in r])

    assert small_share(pooled) < 0.2 and small_share(balanced) == pytest.approx(0.5, abs=0.01)


def test_noise_and_jitter(volume):
    clean = PairedPatchDataset([volume], 2, 16, samples_per_epoch=4, degradation=Degradation(augment=False))
    noisy = PairedPatchDataset(
        [volume], 2, 16, samples_per_epoch=4, degradation=Degradation(snr_range=(10, 10), augment=False)
    )
    blur = PairedPatchDataset(
        [volume], 2, 16, samples_per_epoch=4, degradation=Degradation(factor_jitter=1.5, augment=False)
    )
    a, n, b = clean[2]["image"], noisy[2]["image"], blur[2]["image"]
    assert n.shape == a.shape == b.shape and (n >= 0).all()
    assert 0.005 < float((n - a).abs().mean()) < 0.2
    assert torch.equal(clean[2]["label"], blur[2]["label"])
    assert float(torch.diff(b, dim=-1).abs().mean()) < float(torch.diff(a, dim=-1).abs().mean())


def test_bad_options_are_clear(volume):
    with pytest.raises(MrsrError, match="patch-size"):
        PairedPatchDataset([volume], 4, patch_size=40)
    with pytest.raises(MrsrError, match="window"):
        Degradation(windows=("gauss",))
    with pytest.raises(MrsrError, match="SNR"):
        Degradation(snr_range=(0, 5))
    with pytest.raises(MrsrError, match="factor_jitter"):
        Degradation(factor_jitter=0.5)


def test_two_ranks_see_what_one_rank_sees_with_twice_the_batch():
    ds = list(range(40))
    one = list(SampleSampler(ds, 1, 0, seed=1))
    ranks = [list(SampleSampler(ds, 2, r, seed=1)) for r in range(2)]
    batch = 4
    for t in range(len(ranks[0]) // batch):
        union = sorted(ranks[0][t * batch : (t + 1) * batch] + ranks[1][t * batch : (t + 1) * batch])
        assert union == sorted(one[2 * t * batch : 2 * (t + 1) * batch])
    sampler = SampleSampler(ds, 1, 0, seed=1)
    sampler.set_epoch(3)
    assert sorted(sampler) == list(range(120, 160))  # sample ids are unique across epochs
    assert steps_per_epoch(40, 4, 2) == 5 and steps_per_epoch(3, 4) == 1


def test_validation_pairs(volume):
    odd = volume[:, :127, :125]
    ds = VolumePairDataset([odd], 2)
    item = ds[0]
    assert item["label"].shape == (1, 126, 124, 62) and item["image"].shape == (1, 63, 62, 62)
    spacing_hr = torch.linalg.norm(item["label"].affine[:3, :3], dim=0)
    spacing_lr = torch.linalg.norm(item["image"].affine[:3, :3], dim=0)
    torch.testing.assert_close(spacing_lr[:2], 2 * spacing_hr[:2])
    torch.testing.assert_close(item["image"].affine[:3, 3], item["label"].affine[:3, 3])
    with pytest.raises(MrsrError, match="too small"):
        VolumePairDataset([volume[:, :3]], 2)


def test_load_hr_volumes_caches_normalised_volumes():
    from mrsr.data import sample_path

    ds = load_hr_volumes([{"image": str(sample_path())}], progress=False)
    vol = ds[0]["image"]
    assert vol.shape == (1, 128, 128, 62) and "mrsr_intensity_range" in vol.meta
    assert 0.9 < float(torch.quantile(vol.flatten()[::7], 0.995)) < 1.1


def test_the_draws_of_a_sample_are_pinned(volume):
    """Reproducible training: the LR of a sample is the band of factor s*U(1, jitter) with a drawn window,
    zero-filled to the N/s matrix, plus noise at a drawn SNR from one (2, C, *band) draw, drawn in that order.
    Changing the order or the arithmetic changes every sample of every run."""
    windows = ("none", "hamming", "tukey")
    deg = Degradation(windows=windows, snr_range=(10, 30), factor_jitter=1.4, augment=False)
    ds = PairedPatchDataset([volume], 2, 16, neighbours=1, samples_per_epoch=4, degradation=deg)
    hr = ds.stacks[0][30:33]  # (3, 128, 128)
    for seed in range(3):
        out = ds._degrade(hr, np.random.default_rng(seed))
        rng = np.random.default_rng(seed)
        factor = 2 * rng.uniform(1.0, 1.4)
        window = windows[int(rng.integers(3))]
        band = [truncated_size(128, factor)] * 2
        lr = fourier_resize(hr, band, [1, 2], window)
        sigma = lr.abs()[lr.abs() > lr.abs().mean()].mean() / rng.uniform(10, 30)
        noise = torch.from_numpy(rng.standard_normal((2, *lr.shape)).astype(np.float32))
        real = fourier_resize(lr + sigma * noise[0], [64, 64], [1, 2])
        imag = fourier_resize(sigma * noise[1], [64, 64], [1, 2])
        assert type(out) is torch.Tensor and torch.equal(out, torch.sqrt(real * real + imag * imag))
    item = ds[0]
    assert all(type(t) is torch.Tensor for t in item.values())  # a patch has no affine of its own


@pytest.fixture(scope="module")
def slabs(volume):
    """Synthetic slabs from k-means tissue maps of the real T1 head (no optional package needed)."""
    from mrsr.data.synth import kmeans_tissue_maps
    from mrsr.engines.data import SyntheticSlabs

    return SyntheticSlabs([kmeans_tissue_maps(volume)], scale=2, patch_size=12, neighbours=1, margin=4)


def test_synthetic_mix_proportions_shapes_and_determinism(volume, slabs):
    """About the asked fraction of samples is synthetic (their HR is not a crop of the real volume), items are
    reproducible, the pairs have the real ones' shapes and go through the same k-space degradation."""
    real_only = PairedPatchDataset([volume], 2, patch_size=12, neighbours=1, samples_per_epoch=200, seed=1)
    mixed = PairedPatchDataset([volume], 2, patch_size=12, neighbours=1, samples_per_epoch=200, seed=1,
                               synthetic=slabs, synthetic_fraction=0.3)  # fmt: skip
    synthetic = 0
    for i in range(200):
        item = mixed[i]
        assert item["image"].shape == (3, 12, 12) and item["label"].shape == (1, 24, 24)
        rng = np.random.default_rng([1, i])
        if rng.random() < 0.3:  # this sample's HR must be the centre of the slab its generator draws next
            assert torch.equal(item["label"], slabs(rng)[1:2, 8:32, 8:32])
            synthetic += 1
    assert 40 <= synthetic <= 80  # 60 expected
    a, b = mixed[7], mixed[7]
    assert torch.equal(a["image"], b["image"]) and torch.equal(a["label"], b["label"])
    # a generator at fraction 0 draws nothing from the sample's rng: real-only samples stay as they were
    unmixed = PairedPatchDataset([volume], 2, 12, 1, 200, seed=1, synthetic=slabs, synthetic_fraction=0.0)
    for i in (3, 4):
        assert torch.equal(real_only[i]["label"], unmixed[i]["label"])
        assert torch.equal(real_only[i]["image"], unmixed[i]["image"])
    only = PairedPatchDataset([], 2, patch_size=12, neighbours=1, samples_per_epoch=10, synthetic=slabs,
                              synthetic_fraction=1.0)  # fmt: skip
    item = only[0]
    centre = item["label"][0]
    lr_up = upsample_aligned(item["image"][1:2][None], 2, "sinc")[0, 0]  # the centre slice's LR, back on HR
    assert _interior_l1(lr_up[None], centre[None]) < 0.5 * float(centre.std())  # aligned: LR is HR's band
    with pytest.raises(MrsrError, match="synthetic fraction"):
        PairedPatchDataset([volume], 2, 12, synthetic=None, synthetic_fraction=0.5)


def test_synthetic_slabs_are_wider_than_the_patch(slabs):
    slab = slabs(np.random.default_rng(0))
    assert slab.shape == (3, 2 * (12 + 8), 2 * (12 + 8)) and slab.dtype == torch.float32
    assert 0.0 <= float(slab.min()) and float(slab.max()) <= 1.0
