"""The k-space degradation: exact maths against an independent numpy reference, geometry, options."""

from __future__ import annotations

import monai.transforms
import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from monai.transforms.utils import get_transform_backends
from monai.utils import TransformBackends

from mrsr.transforms import (
    KSpaceTruncate,
    KSpaceTruncated,
    RandKSpaceTruncate,
    RandKSpaceTruncated,
    fourier_resize,
    truncated_size,
)
from mrsr.transforms.kspace import _resize_matrix_cpu


def numpy_lowpass(x: np.ndarray, kept: dict[int, int]) -> np.ndarray:
    """Independent reference: full complex FFT, keep |k| < n/2 and give both of the aliased Nyquist pair
    ±n/2 their mean (what n samples can hold): the orthogonal projection onto the kept band."""
    spec = np.fft.fftn(x)
    for axis, n in kept.items():
        size = x.shape[axis]
        k = np.fft.fftfreq(size) * size
        spec = np.moveaxis(spec, axis, -1)
        weight = (np.abs(k) < n / 2).astype(float)
        if n % 2 == 0:
            plus, minus = np.flatnonzero(k == n / 2), np.flatnonzero(k == -n / 2)
            nyquist = (spec[..., plus].sum(-1) + spec[..., minus].sum(-1)) / 2  # what n samples can hold
            spec = spec * weight
            for idx in (plus, minus):
                if idx.size:
                    spec[..., idx[0]] = nyquist
        else:
            spec = spec * weight
        spec = np.moveaxis(spec, -1, axis)
    out = np.fft.ifftn(spec)
    assert np.abs(out.imag).max() < 1e-9 * max(1.0, np.abs(out.real).max())
    return out.real


@pytest.mark.parametrize("factors", [{0: 2.0, 1: 2.0}, {0: 3.0, 1: 4.0}, {2: 2.0}, {0: 2.5, 1: 2.5, 2: 3.0}])
def test_zerofill_of_degraded_equals_lowpassed_original(t1_volume, factors):
    hr = t1_volume[0].double()  # real data, float64 for exactness
    axes = list(factors)
    kept = {a: truncated_size(hr.shape[a], f) for a, f in factors.items()}
    lr = fourier_resize(hr, [kept[a] for a in axes], axes)
    zerofill = fourier_resize(lr, [hr.shape[a] for a in axes], axes)
    reference = numpy_lowpass(hr.numpy(), kept)
    np.testing.assert_allclose(zerofill.numpy(), reference, atol=1e-9 * reference.max())


def test_same_grid_equals_zerofill_of_reduced_grid_float32(t1_volume):
    signed = dict(factor=2, axes=(0, 1), magnitude=False)
    lr = KSpaceTruncate(grid="reduced", **signed)(t1_volume)
    same = KSpaceTruncate(grid="same", **signed)(t1_volume)
    reference = numpy_lowpass(t1_volume[0].double().numpy(), {0: 64, 1: 64})
    assert same.shape == t1_volume.shape and lr.shape == (1, 64, 64, 62)
    np.testing.assert_allclose(same[0].numpy(), reference, atol=2e-5 * reference.max())
    np.testing.assert_allclose(
        fourier_resize(lr, [128, 128], [1, 2])[0].numpy(), reference, atol=2e-5 * reference.max()
    )
    # the magnitude (the default) is the absolute value of the same image
    mag = KSpaceTruncate(factor=2, axes=(0, 1))(t1_volume)
    np.testing.assert_allclose(mag.numpy(), np.abs(lr.numpy()), atol=1e-6)


@pytest.mark.parametrize("factor", [2, 4])
def test_lr_sample_m_lies_at_hr_position_m_times_s(t1_volume, factor):
    """Numerically: the LR samples are the band-limited HR image sampled at HR positions m*s. On odd LR sizes
    (63 and 31): at an even one the band-limited (zero-filled) image adds the LR's Nyquist component there
    (docs/CONVENTIONS.md; tests/networks/test_baselines.py checks that)."""
    signed = dict(factor=factor, axes=(0, 1), magnitude=False)
    hr = t1_volume[:, : 128 - factor, : 128 - factor]  # cropped at the far edges: same affine
    lr = KSpaceTruncate(**signed)(hr)
    assert lr.shape[1] % 2 == 1 and lr.shape[2] % 2 == 1
    bandlimited_hr = KSpaceTruncate(grid="same", **signed)(hr)
    np.testing.assert_allclose(lr[0].numpy(), bandlimited_hr[0, ::factor, ::factor].numpy(), atol=1e-4)
    # the LR affine says the same thing in world coordinates: origin kept, spacing x s
    m = torch.tensor([5.0, 7.0, 11.0, 1.0], dtype=torch.float64)
    hr_index = m.clone()
    hr_index[:2] *= factor
    np.testing.assert_allclose((lr.affine @ m).numpy(), (t1_volume.affine @ hr_index).numpy(), atol=1e-9)


# (factor, HR in-plane size): every case has an even LR axis (with a Nyquist bin) and an odd one; the HR
# sizes are even in the first case of each factor and odd in the second
ROUND_TRIP_CASES = [
    (2, (128, 126)),  # LR 64 x 63
    (2, (127, 125)),  # LR 64 x 63
    (3, (126, 128)),  # LR 42 x 43
    (3, (121, 123)),  # LR 40 x 41
    (4, (128, 124)),  # LR 32 x 31
    (4, (127, 125)),  # LR 32 x 31
    (2.5, (126, 128)),  # LR 50 x 51
    (2.5, (125, 127)),  # LR 50 x 51
]


@pytest.mark.parametrize("factor, hr_size", ROUND_TRIP_CASES)
def test_truncating_a_zero_filled_image_returns_it(t1_volume, factor, hr_size):
    """Zero-filling is a right inverse of the degradation (issue 29): degrade(zerofill(lr)) == lr to float64
    precision, on the real T1's LR image, whose Nyquist row and column carry signal."""
    hr = MetaTensor(t1_volume.as_tensor()[:, : hr_size[0], : hr_size[1], 27:35].double(), affine=t1_volume.affine)
    truncate = KSpaceTruncate(factor, axes=(0, 1))  # the magnitude, as a scanner's LR image
    lr = truncate(hr)
    assert {lr.shape[1] % 2, lr.shape[2] % 2} == {0, 1}
    signed = KSpaceTruncate(factor, axes=(0, 1), magnitude=False)
    for zero_filled in (fourier_resize(lr.as_tensor(), hr_size, (1, 2)), truncate.inverse(lr)):
        assert zero_filled.shape == hr.shape
        back = signed(zero_filled)
        assert float((back - lr).abs().max() / lr.abs().max()) < 1e-12


@pytest.mark.parametrize("n_lr, n_hr", [(64, 128), (64, 127), (42, 128), (50, 125), (16, 62)])
def test_zero_padding_is_the_pseudo_inverse_of_cropping(n_lr, n_hr):
    """On an even LR grid, zero-padding gives the LR's Nyquist value to both HR bins ±n/2 (the minimum-norm
    solution of keeping their mean): exactly the Moore-Penrose pseudo-inverse of the crop."""
    crop = _resize_matrix_cpu(n_hr, n_lr, "none", 0.5)
    pad = _resize_matrix_cpu(n_lr, n_hr, "none", 0.5)
    torch.testing.assert_close(pad, torch.linalg.pinv(crop), atol=1e-12, rtol=0)
    torch.testing.assert_close(crop @ pad, torch.eye(n_lr, dtype=torch.float64), atol=1e-12, rtol=0)


def test_non_dividing_factor_and_odd_sizes():
    img = MetaTensor(torch.rand(1, 256, 31, 5), affine=torch.diag(torch.tensor([1.0, 1.5, 4.0, 1.0])))
    lr = KSpaceTruncate(factor=3, axes=(0, 1))(img)
    assert lr.shape == (1, 85, 10, 5)  # round(256/3) = 85, round(31/3) = 10
    np.testing.assert_allclose(lr.affine.diagonal()[:3].numpy(), [256 / 85, 1.5 * 31 / 10, 4.0])
    lr = KSpaceTruncate(factor=2.5, axes=(2,))(img)
    assert lr.shape == (1, 256, 31, 2)
    assert truncated_size(62, 4) == 16 and truncated_size(7, 2) == 4


def test_through_plane_and_3d_update_only_their_axes(t1_volume):
    thick = KSpaceTruncate(factor=2, axes=(2,))(t1_volume)
    assert thick.shape == (1, 128, 128, 31)
    np.testing.assert_allclose(thick.affine[:, :2].numpy(), t1_volume.affine[:, :2].numpy())
    np.testing.assert_allclose(thick.affine[:, 2].numpy()[:3], 2 * t1_volume.affine[:3, 2].numpy())
    cube = KSpaceTruncate(factor=(2, 4, 2), axes=(0, 1, 2))(t1_volume)
    assert cube.shape == (1, 64, 32, 31)
    np.testing.assert_allclose(cube.affine[:, 3].numpy(), t1_volume.affine[:, 3].numpy())


def test_windows_trade_ringing_for_blur(t1_volume):
    def total_variation(x):
        return float((x[0, 1:] - x[0, :-1]).abs().sum() + (x[0, :, 1:] - x[0, :, :-1]).abs().sum())

    box = KSpaceTruncate(factor=2, grid="same")(t1_volume)
    hamming = KSpaceTruncate(factor=2, grid="same", window="hamming")(t1_volume)
    tukey = KSpaceTruncate(factor=2, grid="same", window="tukey", alpha=0.5)(t1_volume)
    assert total_variation(hamming) < total_variation(tukey) < total_variation(box)
    tukey0 = KSpaceTruncate(factor=2, grid="same", window="tukey", alpha=0.0)(t1_volume)
    np.testing.assert_allclose(tukey0.numpy(), box.numpy(), atol=1e-5)
    # a window keeps the DC term: the mean of the signed image is unchanged
    signed = [KSpaceTruncate(factor=2, window=w, magnitude=False)(t1_volume) for w in ("none", "hamming")]
    assert float(signed[1].mean()) == pytest.approx(float(signed[0].mean()), rel=1e-4)


def test_rician_noise_level_and_seed(t1_volume):
    snr = 20.0
    noisy = KSpaceTruncate(factor=2, snr=snr, seed=3)(t1_volume)
    again = KSpaceTruncate(factor=2, snr=snr, seed=3)(t1_volume)
    other = KSpaceTruncate(factor=2, snr=snr, seed=4)(t1_volume)
    clean = KSpaceTruncate(factor=2)(t1_volume)
    assert torch.equal(noisy, again) and not torch.equal(noisy, other)
    fg = clean[clean > clean.mean()].mean()
    sigma = float(fg) / snr
    # where the clean LR is ~0 the magnitude is Rayleigh: mean sigma * sqrt(pi / 2)
    background = noisy[clean < 0.002 * float(clean.max())]
    assert background.numel() > 1000
    assert float(background.mean()) == pytest.approx(sigma * np.sqrt(np.pi / 2), rel=0.1)


def test_numpy_in_numpy_out_and_dtype():
    x = np.random.default_rng(0).random((1, 16, 12, 3))
    y = KSpaceTruncate(factor=2)(x)
    assert isinstance(y, np.ndarray) and y.shape == (1, 8, 6, 3) and y.dtype == np.float64
    z = KSpaceTruncate(factor=2)(torch.as_tensor(x, dtype=torch.float32))
    np.testing.assert_allclose(z.numpy(), y, atol=1e-5)
    assert KSpaceTruncate(factor=2)(torch.zeros(1, 8, 8, 2, dtype=torch.uint8)).dtype == torch.float32


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_matches_cpu(t1_volume):
    cpu = KSpaceTruncate(factor=2, window="hamming")(t1_volume)
    gpu = KSpaceTruncate(factor=2, window="hamming")(t1_volume.cuda())
    assert gpu.device.type == "cuda"
    np.testing.assert_allclose(gpu.cpu().numpy(), cpu.numpy(), atol=1e-3)


def test_dictionary_versions_keep_hr_and_share_the_draw(t1_volume):
    d = KSpaceTruncated("image", output_keys="lr", factor=2)({"image": t1_volume})
    assert d["image"] is t1_volume and d["lr"].shape == (1, 64, 64, 62)
    rand = RandKSpaceTruncated(
        ["a", "b"], factor_range=(2.0, 3.0), grid="same", snr_range=(10, 30), windows=("none", "hamming")
    )
    rand.set_random_state(7)
    out = rand({"a": t1_volume, "b": t1_volume.clone()})
    assert torch.equal(out["a"], out["b"])  # one draw for every key
    rand.set_random_state(7)
    assert torch.equal(rand({"a": t1_volume, "b": t1_volume})["a"], out["a"])  # deterministic under a seed
    t = RandKSpaceTruncate(factor_range=(2.0, 4.0), grid="same").set_random_state(1)
    factors = set()
    for _ in range(3):  # the factor is jittered, and each draw is the fixed-factor transform with its parameters
        y = t(t1_volume)
        factors.add(t.params["factor"])
        assert torch.equal(y, KSpaceTruncate(grid="same", **t.params)(t1_volume))
    assert len(factors) == 3


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(factor=0.5), ">= 1"),
        (dict(factor=2, grid="half"), "grid"),
        (dict(factor=2, window="kaiser"), "window"),
        (dict(factor=2, snr=0), "snr"),
        (dict(factor=(2, 2), axes=(0,)), "one per axis"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        KSpaceTruncate(**kwargs)


def test_matrix_too_small_for_the_factor():
    with pytest.raises(ValueError, match="would leave 1"):
        KSpaceTruncate(factor=4, axes=(2,))(torch.rand(1, 8, 8, 5))
    with pytest.raises(ValueError, match="does not exist"):
        KSpaceTruncate(factor=2, axes=(3,))(torch.rand(1, 8, 8, 5))
    with pytest.raises(ValueError, match="Axis 0 has 1 sample: too small to degrade"):  # no factor would do
        KSpaceTruncate(factor=2, axes=(0, 1))(torch.rand(1, 1, 1, 1))


# --- MONAI transform history and inversion -------------------------------------------------------


def test_compose_inverse_after_orientation_and_truncation():
    """Orientationd + KSpaceTruncated on the real T1, then Compose.inverse: back on the file's grid."""
    from monai.transforms import Compose, Orientation, Orientationd

    from mrsr.data import LoadVolumed, load_volume, sample_path

    pipeline = Compose(
        [
            LoadVolumed("image"),
            Orientationd("image", axcodes="RAS", labels=None),  # the file is LSA: a flip and a swap
            KSpaceTruncated("image", factor=2, axes=(0, 1), magnitude=False),
        ]
    )
    d = pipeline({"image": str(sample_path())})
    assert d["image"].shape == (1, 64, 31, 128)
    assert [op["class"] for op in d["image"].applied_operations] == ["Orientation", "KSpaceTruncate"]

    original = load_volume(sample_path())
    inverted = pipeline.inverse(d)["image"]
    assert inverted.shape == original.shape and inverted.applied_operations == []
    torch.testing.assert_close(inverted.affine, original.affine.to(torch.float64))
    # the pseudo-inverse is zero-filling: the band-limited image on the HR grid, in the file's orientation
    ras = Orientation("RAS", labels=None)(original)
    lowpassed_ras = KSpaceTruncate(factor=2, axes=(0, 1), grid="same", magnitude=False)(ras)
    expected = Orientation("LSA", labels=None)(lowpassed_ras)
    np.testing.assert_allclose(inverted.numpy(), expected.numpy(), atol=1e-4 * float(original.max()))
    # ... which is the low-passed original but for the Nyquist pair ±32 of the 128-sample axis (the flip moves the
    # grid by one HR sample, which turns the one direction of that pair the LR image keeps; 62 -> 31 has none)
    lowpassed = KSpaceTruncate(factor=2, axes=(0, 2), grid="same", magnitude=False)(original)
    spectrum = torch.fft.fftn((inverted - lowpassed).as_tensor().double(), dim=(1, 3), norm="ortho")
    nyquist = (torch.fft.fftfreq(128) * 128).round().abs() == 32
    scale = float(lowpassed.as_tensor().double().norm())
    assert float(spectrum[:, ~nyquist].norm()) < 1e-5 * scale
    assert 1e-3 * scale < float(spectrum[:, nyquist].norm()) < 0.05 * scale


def test_truncation_keeps_history_and_inverse_is_zero_filling(t1_volume):
    from monai.transforms import Orientation

    oriented = Orientation("RAS", labels=None)(t1_volume)
    t = KSpaceTruncate(factor=2, axes=(0, 1), magnitude=False)
    lr = t(oriented)
    assert lr.applied_operations[:-1] == oriented.applied_operations
    assert lr.applied_operations[-1]["class"] == "KSpaceTruncate"
    same = KSpaceTruncate(factor=2, axes=(0, 1), grid="same", magnitude=False)(oriented)
    # an SR prediction on the HR grid, given the LR image's meta and history (as Invertd does)
    pred = MetaTensor(same.as_tensor().clone(), meta=dict(lr.meta), applied_operations=list(lr.applied_operations))
    back = t.inverse(lr)
    assert back.shape == oriented.shape and [op["class"] for op in back.applied_operations] == ["Orientation"]
    torch.testing.assert_close(back.affine, oriented.affine.to(torch.float64))
    np.testing.assert_allclose(back.numpy(), same.numpy(), atol=1e-5 * float(same.abs().max()))
    # ... keeps its values and gets the HR affine back
    restored = t.inverse(pred)
    assert torch.equal(restored.as_tensor(), same.as_tensor())
    torch.testing.assert_close(restored.affine, oriented.affine.to(torch.float64))


def test_random_truncation_records_every_call_so_inverse_stays_consistent(t1_volume):
    from monai.transforms import Compose, Orientationd

    fired = set()
    for seed in range(4):  # prob=0.5: some draws fire, some do not; the history is right either way
        pipeline = Compose(
            [Orientationd("image", axcodes="RAS", labels=None), RandKSpaceTruncated("image", grid="same", prob=0.5)]
        ).set_random_state(seed)
        d = pipeline({"image": t1_volume})
        assert [op["class"] for op in d["image"].applied_operations] == ["Orientation", "RandKSpaceTruncate"]
        fired.add(d["image"].applied_operations[-1]["do_transforms"])
        back = pipeline.inverse(d)["image"]
        assert back.shape == t1_volume.shape and back.applied_operations == []
        torch.testing.assert_close(back.affine, t1_volume.affine.to(torch.float64))
    assert fired == {True, False}
    assert t1_volume.applied_operations == []  # the input itself is left alone


# --- every sample one LR shape --------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(output_keys="lr", prob=0.5), "output_keys"),
        (dict(prob=0.5), "prob=0.5 with grid='reduced'"),
        (dict(factor_range=(2.0, 3.0)), "grid='same' or a fixed factor"),
        (dict(factor_range=(2.0, 3.0), grid="full"), "grid"),
    ],
)
def test_combinations_giving_unstackable_shapes_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        RandKSpaceTruncated("image", **kwargs)
    if "output_keys" not in kwargs:
        with pytest.raises(ValueError, match=message):
            RandKSpaceTruncate(**kwargs)


def test_random_truncation_batches_stack_in_a_dataloader(t1_volume):
    from monai.data import DataLoader, Dataset

    items = [{"image": t1_volume[..., i : i + 4]} for i in range(0, 32, 4)]
    pairs = RandKSpaceTruncated("image", output_keys="lr", factor_range=(2.0, 2.0), windows=("none", "hamming"))
    augment = RandKSpaceTruncated("image", factor_range=(2.0, 4.0), grid="same", prob=0.5, snr_range=(10, 30))
    for transform, key, shape in ((pairs, "lr", (4, 1, 64, 64, 4)), (augment, "image", (4, 1, 128, 128, 4))):
        transform.set_random_state(0)
        batches = list(DataLoader(Dataset(items, transform), batch_size=4))
        assert [tuple(b[key].shape) for b in batches] == [shape, shape]


# --- options that training uses --------------------------------------------------------------


def test_grid_factor_puts_a_wider_band_on_a_coarser_matrix(t1_volume):
    """grid=g: the band of the factor, zero-filled to the matrix of g (affine spacing N / round(N / g))."""
    signed = {"axes": (0, 1), "magnitude": False}
    band = KSpaceTruncate(2.5, **signed)(t1_volume)  # 51 x 51
    truncate = KSpaceTruncate(2.5, grid=2, **signed)
    out = truncate(t1_volume)
    assert band.shape == (1, 51, 51, 62) and out.shape == (1, 64, 64, 62)
    assert torch.equal(out.as_tensor(), fourier_resize(band.as_tensor(), [64, 64], [1, 2]))
    spacing = torch.linalg.norm(out.affine[:3, :3], dim=0) / torch.linalg.norm(t1_volume.affine[:3, :3], dim=0)
    torch.testing.assert_close(spacing, torch.tensor([2.0, 2.0, 1.0], dtype=torch.float64))
    assert truncate.inverse(out).shape == t1_volume.shape  # the record works on any grid
    # the named grids are the two ends: g = factor ("reduced") and g = 1 ("same")
    assert torch.equal(KSpaceTruncate(2.5, grid=2.5, **signed)(t1_volume), band)
    same = KSpaceTruncate(2, grid="same", **signed)(t1_volume)
    assert torch.equal(KSpaceTruncate(2, grid=1, **signed)(t1_volume), same)
    with pytest.raises(ValueError, match="must not exceed"):
        KSpaceTruncate(2, grid=3)


def test_noise_from_the_callers_numpy_generator():
    """rng: the noise is one (2, C, *band) standard normal draw (real, imaginary) from the caller's generator."""
    lr = torch.rand(2, 16, 12)
    noisy = KSpaceTruncate(2, snr=10.0, rng=np.random.default_rng(5))(lr)
    assert torch.equal(noisy, KSpaceTruncate(2, snr=10.0, rng=np.random.default_rng(5))(lr))
    rng, replay = np.random.default_rng(5), np.random.default_rng(5)
    KSpaceTruncate(2, snr=10.0, rng=rng)(lr)
    replay.standard_normal((2, 2, 8, 6))
    assert rng.random() == replay.random()  # exactly one draw taken
    clean = KSpaceTruncate(2)(lr)
    assert not torch.equal(noisy, clean) and (noisy >= 0).all()
    with pytest.raises(ValueError, match="not both"):
        KSpaceTruncate(2, snr=10.0, seed=1, rng=np.random.default_rng(1))


def test_making_a_transform_leaves_the_global_rng_alone():
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    KSpaceTruncate(2, snr=10.0)  # its own random seed, not a re-seeded global generator
    assert torch.equal(torch.rand(3), expected)


def test_backends_are_monai_transform_backends(monkeypatch):
    """All four k-space transforms declare TORCH and NUMPY as ``TransformBackends`` members, MONAI's
    ``get_transform_backends()`` reports both for ``KSpaceTruncate``, and a numpy image really is
    degraded into a numpy image equal to the tensor result."""
    for cls in (KSpaceTruncate, KSpaceTruncated, RandKSpaceTruncate, RandKSpaceTruncated):
        assert all(isinstance(b, TransformBackends) for b in cls.backend), cls
        assert cls.backend == [TransformBackends.TORCH, TransformBackends.NUMPY]
    monkeypatch.setattr(monai.transforms, "KSpaceTruncate", KSpaceTruncate, raising=False)
    assert get_transform_backends()["KSpaceTruncate"] == [True, True]
    x = np.random.default_rng(0).random((1, 8, 6, 2))
    out = KSpaceTruncate(factor=2, axes=(0, 1))(x)
    assert isinstance(out, np.ndarray) and out.shape == (1, 4, 3, 2)
    np.testing.assert_allclose(out, KSpaceTruncate(factor=2, axes=(0, 1))(torch.as_tensor(x)).numpy())
