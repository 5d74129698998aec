"""super_resolve: geometry in world coordinates, 2.5D stacking, tiling, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from monai.data import MetaTensor

from mrsr.data import load_volume
from mrsr.errors import MrsrError
from mrsr.inference import RestoreVolumed, core_weight_map, even_tiles, resolve_slice_axis, super_resolve
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
    sr = super_resolve(lr, baseline(scale=scale), scale, slice_axis=2)  # x4 makes 4.4 mm LR pixels: auto'd pick 1
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


@pytest.mark.parametrize("size, roi, overlap", [(64, 32, 0.25), (128, 80, 0.05), (100, 64, 0.125), (30, 40, 0.25)])
def test_even_tiles_cover_with_the_fewest_pixels(size, roi, overlap):
    from monai.data.utils import dense_patch_slices

    (tile,), (fraction,) = even_tiles((size,), (roi,), overlap)
    o = round(overlap * roi)
    interval = int(tile * (1 - fraction))  # what MONAI steps by
    windows = dense_patch_slices((size,), (tile,), (interval,))
    starts = sorted(w[0].start for w in windows)
    covered = torch.zeros(size, dtype=torch.bool)
    for start in starts:
        covered[start : start + tile] = True
    assert covered.all() and (tile <= roi or size <= roi)
    if size > roi:
        assert len(starts) == math.ceil((size - o) / (roi - o))  # no more tiles than roi_size needs
        assert interval == tile - o  # neighbours overlap by the asked pixels (the last may overlap more)
        assert len(starts) * tile - size < len(starts) * (o + 1)  # no tile is larger than it must be
    else:
        assert (tile, fraction) == (size, 0.0)


def test_even_tiles_round_up_to_the_network_multiple():
    (tile,), _ = even_tiles((128,), (80,), 0.05, multiple=16)
    assert tile == 80  # 66 would be padded to 80 by the network anyway
    (tile,), _ = even_tiles((40,), (32,), 0.25, multiple=16)
    assert tile == 32  # 24 rounded up
    (tile,), _ = even_tiles((40,), (32,), 0.25, multiple=48)
    assert tile == 40  # never larger than the slice


def test_core_weight_map_keeps_the_core():
    weights = core_weight_map((20, 10), (8.5 / 20, 0.0))
    assert torch.equal(weights[4:16], torch.ones(12, 10))  # halo of 8 // 2 pixels at each cut edge
    assert (weights[:4] < 1e-3).all() and (weights[16:] < 1e-3).all()


@pytest.mark.parametrize("roi, overlap", [((40, 36), 0.125), ((24, 24), 0.25)])
def test_tiled_bicubic_equals_whole_slice(t1_volume, roi, overlap):
    """Keys cubic reaches 2 LR pixels: with a halo of >= 2 pixels every kept pixel is exact.

    (Up to float32 rounding of the tile's sampling grid, 1e-4 of the 0-255 range; with no halo the
    tile edges are off by up to 98.)
    """
    volume = t1_volume[..., 20:30]
    whole = super_resolve(volume, Bicubic(scale=2), 2)
    tiled = super_resolve(volume, Bicubic(scale=2), 2, roi_size=roi, overlap=overlap, sw_batch_size=5)
    torch.testing.assert_close(tiled, whole, atol=0.05, rtol=0)


class PrefersChannelsLast(torch.nn.Module):
    prefers_channels_last = True

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)  # 2.5D: channels_last differs from contiguous
        self.formats = []

    def forward(self, x):
        self.formats.append(x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous())
        return torch.nn.functional.pixel_shuffle(self.conv(x), 2)


def test_channels_last_follows_the_network_unless_asked(t1_volume):
    volume = t1_volume[:, :16, :16, :3]
    net = PrefersChannelsLast()
    auto = super_resolve(volume, net, 2, in_channels=3)
    assert all(net.formats) and net.conv.weight.is_contiguous()  # back as it was: a trainer's model goes on
    net.formats.clear()
    forced = super_resolve(volume, net, 2, in_channels=3, channels_last=False)
    assert not any(net.formats) and net.conv.weight.is_contiguous()
    torch.testing.assert_close(auto, forced)


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


def test_slice_batch_follows_the_network_pixel_budget_on_a_cpu():
    from mrsr.inference import resolve_slice_batch
    from mrsr.networks import get_network

    durn = get_network("durn", preset="small", scale=2)
    cpu, gpu = torch.device("cpu"), torch.device("cuda")
    assert resolve_slice_batch(durn, (128, 128), cpu) == 1 and resolve_slice_batch(durn, (64, 64), cpu) == 4
    assert resolve_slice_batch(durn, (512, 512), cpu) == 1  # at least one slice
    assert resolve_slice_batch(Bicubic(scale=2), (128, 128), cpu) == 2  # the default budget
    assert resolve_slice_batch(durn, (128, 128), gpu) == 8 and resolve_slice_batch(durn, (128, 128), cpu, 5) == 5


def test_channels_last_converts_networks_whose_first_conv_has_one_channel():
    from mrsr.inference import _in_memory_format
    from mrsr.networks import get_network

    net = get_network("msrn", preset="small", scale=2)  # its head is 1 -> C: both formats at once
    with _in_memory_format(net, torch.channels_last):
        assert all(w.is_contiguous(memory_format=torch.channels_last) for w in net.parameters() if w.ndim == 4)
    assert all(w.is_contiguous() for w in net.parameters())


def test_auto_slice_axis_is_the_single_slice_axis_or_the_thickest():
    one = MetaTensor(torch.zeros(1, 64, 1, 64), affine=torch.diag(torch.tensor([1.5, 1.0, 1.5, 1.0])))
    assert resolve_slice_axis(one) == 1  # one slice: whatever the header's thickness says
    thick = MetaTensor(torch.zeros(1, 12, 32, 32), affine=torch.diag(torch.tensor([5.0, 1.0, 1.0, 1.0])))
    assert resolve_slice_axis(thick) == 0 and resolve_slice_axis(thick, 2) == 2
    assert resolve_slice_axis(torch.zeros(1, 8, 8, 8)) == 2
    with pytest.raises(MrsrError, match="slice_axis must be 0, 1, 2 or 'auto'"):
        resolve_slice_axis(thick, "last")
    assert super_resolve(thick, ZeroFill(scale=2), 2).shape == (1, 12, 64, 64)  # auto is the default


def test_volume_inferer_in_a_users_own_monai_pipeline(tmp_path):
    """MONAI loading, batching and saving around VolumeInferer: the output lands on the SR grid in world
    coordinates, where sliding_window_inference's output would keep the LR affine."""
    from monai.data import DataLoader, Dataset, decollate_batch
    from monai.transforms import Compose, EnsureChannelFirstd, LoadImaged, SaveImage

    from mrsr.data import sample_path, save_volume
    from mrsr.inference import VolumeInferer

    hr = load_volume(sample_path())
    save_volume(KSpaceTruncate(2, axes=(0, 1))(hr), tmp_path / "lr.nii.gz")
    load = Compose([LoadImaged("image"), EnsureChannelFirstd("image")])
    loader = DataLoader(Dataset([{"image": str(tmp_path / "lr.nii.gz")}], load), batch_size=1)
    batch = next(iter(loader))
    sr = VolumeInferer(scale=2)(batch["image"], ZeroFill(scale=2))
    assert isinstance(sr, MetaTensor) and sr.is_batch and sr.shape == (1, *hr.shape)
    torch.testing.assert_close(sr.affine[0].double(), hr.affine.double())
    item = decollate_batch(sr)[0]
    np.testing.assert_array_equal(item.meta["spatial_shape"], hr.shape[1:])
    SaveImage(output_dir=tmp_path, output_postfix="sr", separate_folder=False)(item)
    saved = load_volume(tmp_path / "lr_sr.nii.gz")
    assert saved.shape == hr.shape
    torch.testing.assert_close(saved.affine, hr.affine.to(saved.affine.dtype), atol=1e-5, rtol=0)


def test_volume_inferer_names_the_method_and_lands_on_the_requested_size(t1_volume):
    """mrsr infer's options: the provenance line names what ran; --size sets the in-plane output size."""
    from monai.data import decollate_batch, list_data_collate

    from mrsr.inference import DESCRIPTION_KEY, VolumeInferer
    from mrsr.settings import InferSettings

    batch = list_data_collate([RobustNormalize()(t1_volume[:, 50:74, 50:70, 30:33])])
    settings = InferSettings(scale=2, out_size=(50, 44), method="zerofill", data_consistency=False)
    sized = VolumeInferer(settings)(batch, ZeroFill(scale=(50 / 24, 44 / 20)))
    sr = decollate_batch(sized)[0]
    assert sr.shape == (1, 50, 44, 3) and sr.meta[DESCRIPTION_KEY] == "mrsr zerofill x2; data consistency off"
    np.testing.assert_allclose(sr.pixdim.tolist(), [2 * 24 / 50, 2 * 20 / 44, 3.0])
    plain = decollate_batch(VolumeInferer(scale=2)(batch, ZeroFill(scale=2)))[0]  # keywords change the defaults
    assert plain.meta[DESCRIPTION_KEY] == "mrsr ZeroFill x2; data consistency on"  # the bundles' default name


def test_restore_volumed_puts_the_output_on_the_upsampled_grid():
    affine = torch.tensor([[-2.0, 0, 0, 10], [0, 2.0, 0, -5], [0, 0, 3.0, 7], [0, 0, 0, 1]], dtype=torch.float64)
    image = RobustNormalize(0, 100)(MetaTensor(torch.rand(1, 6, 5, 3) * 50 + 10, affine=affine))
    pred = image.as_tensor().repeat_interleave(2, 1).repeat_interleave(2, 2)
    out = RestoreVolumed("pred", ref_key="image")({"image": image, "pred": pred})["pred"]
    assert out.shape == (1, 12, 10, 3)
    np.testing.assert_allclose(np.diag(np.asarray(out.affine))[:3], [-1.0, 1.0, 3.0])
    np.testing.assert_allclose(np.asarray(out.affine)[:3, 3], [10, -5, 7])  # origin kept (docs/CONVENTIONS.md)
    lo, hi = image.meta["mrsr_intensity_range"]
    torch.testing.assert_close(out.as_tensor(), pred * (hi - lo) + lo)


def test_a_band_limited_input_gets_nothing_beyond_its_band(t1_volume):
    """With data consistency (the default of mrsr infer) the guard keeps a zero-filled axis in band, and says so."""
    from mrsr.inference import BAND_LIMITED_KEY, DESCRIPTION_KEY
    from mrsr.transforms import keep_band, zero_filled_acquisition

    hr = RobustNormalize()(t1_volume)[..., 28:32]  # (1, 128, 128, 4) real T1
    lr = KSpaceTruncate(2, axes=(0, 1))(zero_filled_acquisition(hr, 2, 1 / 3))  # its band ends inside along axis 1
    guarded = super_resolve(lr, Bicubic(scale=2), 2, slice_axis=2, data_consistency=True)
    plain = super_resolve(lr, Bicubic(scale=2), 2, slice_axis=2, data_consistency=True, band_limit=False)
    assert guarded.meta[BAND_LIMITED_KEY] == [1] and plain.meta[BAND_LIMITED_KEY] == []
    assert guarded.meta[DESCRIPTION_KEY] == "mrsr Bicubic x2; data consistency on; band-limited axis 1"
    torch.testing.assert_close(guarded.as_tensor(), keep_band(plain.as_tensor(), [64], [2]), atol=1e-5, rtol=0)
    assert not torch.allclose(guarded, plain, atol=1e-3)
    assert super_resolve(lr, Bicubic(scale=2), 2, slice_axis=2).meta[BAND_LIMITED_KEY] == []  # off without dc
    natural = super_resolve(KSpaceTruncate(2, axes=(0, 1))(hr), Bicubic(scale=2), 2, slice_axis=2, band_limit=True)
    assert natural.meta[BAND_LIMITED_KEY] == []
    across_0 = super_resolve(lr.permute(0, 3, 1, 2), Bicubic(scale=2), 2, slice_axis=0, data_consistency=True)
    assert across_0.meta[BAND_LIMITED_KEY] == [2]  # named as the volume's axis, whatever the slice axis


@pytest.mark.parametrize("data_consistency", [True, False])
def test_detail_keeps_that_share_of_what_lies_beyond_the_input_band(t1_volume, data_consistency):
    """detail d: the output's in-band part plus d times the rest; d = 0 adds nothing beyond the input's band."""
    from mrsr.inference import DESCRIPTION_KEY, DETAIL_KEY
    from mrsr.transforms import fourier_resize, keep_band

    lr = KSpaceTruncate(2, axes=(0, 1))(RobustNormalize()(t1_volume)[:, 20:81, 30:76, 28:31])  # (1, 31, 23, 3): odd
    full = super_resolve(lr, Bicubic(scale=2), 2, slice_axis=2, data_consistency=data_consistency).as_tensor()
    in_band = keep_band(full, [31, 23], [1, 2])
    for d in (0.0, 0.375, 1.0):
        out = super_resolve(lr, Bicubic(scale=2), 2, slice_axis=2, data_consistency=data_consistency, detail=d)
        torch.testing.assert_close(out.as_tensor(), in_band + d * (full - in_band), atol=2e-5, rtol=0)
        assert out.meta[DETAIL_KEY] == d
        # the measured band is untouched: with data consistency, degrading the output still gives the input
        torch.testing.assert_close(fourier_resize(out, [31, 23], [1, 2]), fourier_resize(full, [31, 23], [1, 2]),
                                   atol=2e-5, rtol=0)  # fmt: skip
    zero = super_resolve(lr, Bicubic(scale=2), 2, slice_axis=2, data_consistency=data_consistency, detail=0)
    torch.testing.assert_close(keep_band(zero.as_tensor(), [31, 23], [1, 2]), zero.as_tensor(), atol=2e-5, rtol=0)
    assert zero.meta[DESCRIPTION_KEY].endswith("; detail 0")
    with pytest.raises(MrsrError, match="detail must be a number from 0"):
        super_resolve(lr, Bicubic(scale=2), 2, slice_axis=2, detail=1.5)


def test_volume_inferer_batches_without_a_second_copy_and_collates_as_monai(t1_volume):
    """The inferer writes each output into one preallocated batch (no stack of the outputs at the end, which held
    every output twice): the batch and its meta are what MONAI's list_data_collate of the outputs gives."""
    from monai.data import list_data_collate

    from mrsr.inference import VolumeInferer, sr_shape

    vols = [RobustNormalize()(t1_volume[:, 40:64, 40:60, z : z + 3]) for z in (20, 30)]
    batch = list_data_collate(vols)
    inferer = VolumeInferer(scale=2, data_consistency=False)
    out = inferer(batch, ZeroFill(scale=2))
    singles = [super_resolve(v, ZeroFill(scale=2), 2) for v in vols]
    expected = list_data_collate(singles)
    assert torch.equal(out.as_tensor(), expected.as_tensor()) and out.is_batch
    assert torch.equal(out.affine, expected.affine) and out.meta.keys() == expected.meta.keys()
    assert out.applied_operations == expected.applied_operations
    assert sr_shape(vols[0].shape[1:], 2, 2) == tuple(out.shape[2:]) == (48, 40, 3)


def test_super_resolve_writes_into_a_given_output():
    vol = torch.rand(1, 8, 6, 3)
    dest = torch.full((1, 16, 12, 3), float("nan"))
    sr = super_resolve(vol, ZeroFill(scale=2), 2, out=dest)
    assert sr.data_ptr() == dest.data_ptr() and torch.equal(sr.as_tensor(), super_resolve(vol, ZeroFill(scale=2), 2))
    with pytest.raises(MrsrError, match=r"out must be a float32 CPU tensor of shape \(1, 16, 12, 3\)"):
        super_resolve(vol, ZeroFill(scale=2), 2, out=torch.empty(1, 16, 12, 4))
