"""Tests of mrsr.selfsr: geometry of the output, a real volume, refusals."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from monai.data import MetaTensor

from mrsr.data import sample_path
from mrsr.data.io import load_volume
from mrsr.errors import MrsrError
from mrsr.selfsr import COMBINES, SelfSRd, fit_selfsr, fourier_burst, selfsr
from mrsr.settings import SelfSRSettings
from mrsr.transforms.resample import thick_interp
from mrsr.transforms.sliceprofile import SliceProfileDegrade

# an oblique-free but permuted, flipped, shifted header: HR 1.2 mm isotropic
HR_AFFINE = torch.tensor(
    [[0.0, -1.2, 0.0, 30.0], [1.2, 0.0, 0.0, -12.0], [0.0, 0.0, 1.2, 5.0], [0.0, 0.0, 0.0, 1.0]], dtype=torch.float64
)


def _blob(shape=(24, 28, 48), centre=(11.3, 13.6, 21.4), sigma=3.0) -> MetaTensor:
    grid = torch.meshgrid(*[torch.arange(n, dtype=torch.float32) for n in shape], indexing="ij")
    r2 = sum((g - c) ** 2 for g, c in zip(grid, centre))
    return MetaTensor(torch.exp(-r2 / (2 * sigma**2))[None], affine=HR_AFFINE.clone())


def _world_centroid(img: MetaTensor) -> torch.Tensor:
    """Intensity-weighted centroid in world coordinates (mm) of the voxels above a tenth of the peak."""
    x = img.as_tensor()[0].double()
    w = torch.where(x > 0.1 * x.max(), x, torch.zeros_like(x))
    idx = torch.stack(torch.meshgrid(*[torch.arange(n, dtype=torch.float64) for n in x.shape], indexing="ij"))
    vox = (idx * w).flatten(1).sum(1) / w.sum()
    return img.affine[:3, :3].double() @ vox + img.affine[:3, 3].double()


def _psnr(a: torch.Tensor, ref: torch.Tensor) -> float:
    r = float(ref.max() - ref.min())
    return 10 * math.log10(r * r / float(torch.mean((a.float() - ref.float()) ** 2)))


def test_non_integer_factor_rounded():
    """A factor of 3.9 runs at x4 and says so; the output spacing is the input's over 4."""
    affine = torch.diag(torch.tensor([1.0, 1.0, 3.9, 1.0], dtype=torch.float64))
    vol = MetaTensor(torch.rand(1, 16, 16, 6), affine=affine)
    sr, report = selfsr(vol, steps=1, progress=False)
    assert report.scale == 4 and "rounded to 4" in " ".join(report.notes)
    assert sr.shape == (1, 16, 16, 24)
    assert math.isclose(float(sr.affine[2, 2]), 3.9 / 4) and math.isclose(float(sr.affine[2, 3]), -1.5 * 3.9 / 4)


@pytest.mark.parametrize(
    "vol",
    [
        MetaTensor(torch.rand(1, 16, 16, 16)),  # isotropic
        MetaTensor(torch.rand(1, 16, 16, 1), affine=torch.diag(torch.tensor([1.0, 1.0, 4.0, 1.0]))),  # one slice
        MetaTensor(torch.rand(1, 16, 16)),  # 2D
    ],
)
def test_refuses_isotropic_and_2d(vol):
    with pytest.raises(MrsrError) as err:
        selfsr(vol, steps=1, progress=False)
    assert "\n" not in str(err.value)


def test_real_volume_beats_cubic():
    """A crop of the real T1 head (given a 2 mm isotropic header), thick x4 along axis 1 with a box profile:
    a short self-supervised run beats cubic interpolation along the axis against the HR crop."""
    head = load_volume(sample_path()).as_tensor().float()[:, 16:112, 8:120, 8:56]
    hr = MetaTensor(head, affine=torch.diag(torch.tensor([2.0, 2.0, 2.0, 1.0], dtype=torch.float64)))
    lr = SliceProfileDegrade(4, axis=1)(hr)
    sr, report = selfsr(lr, steps=300, validate_every=100, approach="upsample", progress=False)
    cubic = thick_interp(lr.as_tensor(), 4, dim=2)
    gain = _psnr(sr.as_tensor(), hr.as_tensor()) - _psnr(cubic, hr.as_tensor())
    assert report.choice == "network", report.summary()
    assert report.scores["network"] > report.scores["cubic"]
    assert gain > 0.3, f"selfsr gains {gain:.2f} dB over cubic ({report.summary()})"
    assert np.isfinite(gain)


@pytest.mark.parametrize("approach", ["upsample", "refine"])
def test_geometry_blob_centroid(approach):
    """The selfsr output overlays the HR volume: shape, affine, and a blob's world centroid within 0.1 voxel."""
    hr = _blob()
    lr = SliceProfileDegrade(4, axis=2)(hr)
    # 50 steps: an untrained network adds noise that moves the centroid (refine, 5 steps: 0.14 voxel)
    sr, report = selfsr(lr, steps=50, validate_every=50, approach=approach, progress=False, fallback=False)
    assert (report.axis, report.scale, report.choice) == (2, 4, "network")
    assert sr.shape == hr.shape
    assert torch.allclose(sr.affine.double(), hr.affine.double(), atol=1e-9)
    err_mm = torch.linalg.norm(_world_centroid(sr) - _world_centroid(hr))
    assert float(err_mm) / 1.2 < 0.1, f"centroid {float(err_mm) / 1.2:.3f} voxels off"
    assert set(report.scores) == {"cubic", "linear", "network"}


def test_fourier_burst_weights_the_estimate_that_kept_a_frequency():
    """Power 0 is the average; with power > 0 a frequency one estimate lost is taken mostly from the other."""
    n = 32
    t = torch.arange(n, dtype=torch.float64)
    sharp = torch.cos(2 * torch.pi * 2 * t / n) + torch.cos(2 * torch.pi * 12 * t / n)
    blurred = torch.cos(2 * torch.pi * 2 * t / n) + 0.1 * torch.cos(2 * torch.pi * 12 * t / n)
    torch.testing.assert_close(fourier_burst([sharp, blurred], 0.0), (sharp + blurred) / 2)
    fba = fourier_burst([sharp, blurred], 4.0)
    high = lambda x: float(torch.fft.rfft(x)[12].abs())  # noqa: E731
    assert high(fba) > 0.99 * high(sharp) and high((sharp + blurred) / 2) < 0.6 * high(sharp)
    torch.testing.assert_close(torch.fft.rfft(fba)[2], torch.fft.rfft(sharp)[2])  # agreed frequencies unchanged


def test_predict_combines_and_keeps_slabs_consistent():
    """One fit, several outputs: both combinations on the HR grid; slab consistency makes the box degradation
    of the output the input exactly; it refuses a Gaussian profile; an unknown combination fails before training."""
    hr = _blob(shape=(20, 20, 24))
    lr = SliceProfileDegrade(4, axis=2)(hr)
    model = fit_selfsr(lr, SelfSRSettings(steps=5, validate_every=5, progress=False, fallback=False))
    for combine in COMBINES:
        sr = model.predict(combine)
        assert sr.shape == hr.shape and torch.allclose(sr.affine.double(), hr.affine.double())
    consistent = model.predict("fba", slab_consistency=True)
    torch.testing.assert_close(SliceProfileDegrade(4, axis=2)(consistent).as_tensor(), lr.as_tensor(), atol=1e-5,
                               rtol=0)  # fmt: skip
    assert not torch.allclose(SliceProfileDegrade(4, axis=2)(model.predict()).as_tensor(), lr.as_tensor(), atol=1e-5)
    gaussian = fit_selfsr(lr, SelfSRSettings(steps=1, profile="gaussian", progress=False))
    with pytest.raises(MrsrError, match="box profile"):
        gaussian.predict(slab_consistency=True)
    with pytest.raises(MrsrError, match="combine"):
        selfsr(lr, steps=10**9, combine="median", progress=False)
    with pytest.raises(MrsrError, match="box profile"):  # refused before a training that would never end
        selfsr(lr, steps=10**9, profile="gaussian", slab_consistency=True, progress=False)


def test_selfsr_bundle_config_runs_with_monai_bundle(tmp_path, capsys, monkeypatch):
    """`python -m monai.bundle run --config_file bundles/selfsr/configs/inference.json --input ...` (in-process):
    LoadVolumed -> SelfSRd -> SaveVolumed writes the HR grid; without --input it says so in one line."""
    from monai.bundle import ConfigWorkflow

    from mrsr.data import save_volume

    config = Path(__file__).resolve().parents[1] / "bundles" / "selfsr" / "configs" / "inference.json"
    hr = _blob(shape=(20, 20, 24))
    save_volume(SliceProfileDegrade(4, axis=2)(hr), tmp_path / "thick.nii.gz")
    monkeypatch.chdir(tmp_path)  # without --output_dir the output goes to the current folder
    workflow = ConfigWorkflow(config_file=str(config), workflow_type="infer", bundle_root=str(tmp_path),
                              input=str(tmp_path / "thick.nii.gz"), steps=3, device="cpu")  # fmt: skip
    workflow.initialize()
    workflow.run()
    out = load_volume(tmp_path / "thick_selfsr.nii.gz")
    assert out.shape == hr.shape and np.allclose(np.asarray(out.affine), np.asarray(hr.affine), atol=1e-5)
    assert "selfsr axis 2 x4" in capsys.readouterr().err
    empty = ConfigWorkflow(config_file=str(config), workflow_type="infer", bundle_root=str(tmp_path))
    empty.initialize()
    with pytest.raises(Exception) as err:
        empty.run()
    assert "No input given" in str(err.value) or "No input given" in str(err.value.__cause__)


@pytest.mark.parametrize("steps", [0, -3])
def test_steps_below_one_are_refused(steps):
    vol = MetaTensor(torch.rand(1, 16, 16, 6), affine=torch.diag(torch.tensor([1.0, 1.0, 4.0, 1.0])))
    with pytest.raises(MrsrError, match=f"steps must be a whole number >= 1, got {steps}"):
        fit_selfsr(vol, SelfSRSettings(steps=steps, progress=False))


def test_selfsrd_replaces_each_key():
    lr = SliceProfileDegrade(4, axis=2)(_blob(shape=(20, 20, 24)))
    transform = SelfSRd(keys="image", steps=2, summary=False, progress=False)
    out = transform({"image": lr, "other": 1})
    assert out["image"].shape == (1, 20, 20, 24) and out["other"] == 1 and transform.selfsr.report.steps == 2
    with pytest.raises(MrsrError, match="combine"):
        SelfSRd(keys="image", combine="max")


def test_a_time_limit_lifts_the_default_step_count(monkeypatch):
    """Without --steps, a run stops at DEFAULT_STEPS, or with --time when the time is up (not at the default)."""
    import mrsr.selfsr as module

    monkeypatch.setattr(module, "DEFAULT_STEPS", 3)
    lr = SliceProfileDegrade(4, axis=2)(_blob(shape=(20, 20, 24)))
    assert fit_selfsr(lr, SelfSRSettings(progress=False, validate_every=100)).report.steps == 3
    assert fit_selfsr(lr, SelfSRSettings(time_budget=1.5, progress=False, validate_every=100)).report.steps > 3
