"""mrsr.pipeline: the bundles' inference chain with explicit outputs, file runs, predictors (batches: test_batch.py)."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys

import nibabel as nib
import numpy as np
import pytest
import torch

from mrsr.bundle import find_bundle
from mrsr.data import load_volume, sample_path, save_volume
from mrsr.errors import MrsrError
from mrsr.inference import DESCRIPTION_KEY
from mrsr.networks import get_baseline
from mrsr.pipeline import (
    InferOptions,
    Predictor,
    build_predictor,
    degrade_file,
    evaluate_files,
    inference_chain,
    selfsr_file,
    super_resolve_file,
)
from mrsr.settings import AdaptSettings, DegradeSettings, InferSettings, SelfSRSettings


def _crop(tmp_path, name: str = "crop.nii.gz", z: int = 25) -> str:
    """A real 32 x 32 x 3 block of the T1 sample at 4 x 4 x 3 mm (an LR scan)."""
    block = load_volume(sample_path())[0, 40:72, 40:72, z : z + 3].numpy()
    nib.save(nib.Nifti1Image(block, np.diag([4.0, 4.0, 3.0, 1.0])), tmp_path / name)
    return str(tmp_path / name)


def _config() -> dict:
    return json.loads((find_bundle("msrn") / "configs" / "inference.json").read_text())


def test_the_chain_is_the_bundles_with_the_same_defaults():
    config, chain = _config(), inference_chain(InferSettings(scale=2))
    targets = [t["_target_"].rsplit(".", 1)[-1] for t in config["preprocessing"]["transforms"]]
    assert [type(t).__name__ for t in chain.preprocessing.transforms] == targets == ["LoadVolumed", "RobustNormalized"]
    assert config["inferer"]["_target_"] == "mrsr.inference.VolumeInferer"
    post = [t["_target_"].rsplit(".", 1)[-1] for t in config["postprocessing"]["transforms"]]
    assert post == ["RestoreVolumed", "SaveVolumed"]  # the chain saves to each item's own path instead
    assert [type(t).__name__ for t in chain.postprocessing.transforms] == ["RestoreVolumed", "SaveOutputd"]
    assert config["inferer"] == {"_target_": "mrsr.inference.VolumeInferer", "settings": "@settings"}
    assert config["settings"]["_target_"] == "mrsr.settings.InferSettings"
    defaults = InferSettings()
    for key in ("slice_axis", "roi_size", "overlap", "slice_batch", "amp", "channels_last", "data_consistency"):
        assert getattr(defaults, key) == config[key], key
    assert (defaults.adapt, config["adapt"], config["adapt_time"], config["seed"]) == (None, None, None, 0)
    chain_defaults = {k: p.default for k, p in inspect.signature(inference_chain).parameters.items()}
    assert [chain_defaults[k] == config[k] for k in ("orientation", "overwrite")] == [True, True]
    assert config["settings"]["detail"] == "@detail"  # the bundle's own per scale (test_weights), 1 in the chain


def test_a_file_through_the_chain_equals_the_bundle_run(tmp_path):
    """mrsr infer --bundle msrn and the bundle's own inference.json: the same voxels and affine."""
    from monai.bundle import run as bundle_run

    from mrsr.bundle import bundle_detail

    crop, out, lines = _crop(tmp_path), tmp_path / "cli.nii.gz", []
    lr, sr, predictor = super_resolve_file(
        crop, out, InferOptions(bundle="msrn", settings=InferSettings(device="cpu")), log=lines.append
    )
    assert lines == ["bundle msrn: crop.nii.gz (32, 32, 3) at 4, 4, 3 mm, 3 slices across axis 2 (auto: the thickest "
                     "axis, else the last), x2 in-plane"]  # fmt: skip
    line = f"mrsr bundle msrn x2; data consistency on; detail {bundle_detail('msrn', 2):g}"  # the bundle's own
    assert predictor.in_channels == 1 and sr.meta[DESCRIPTION_KEY] == line
    root = find_bundle("msrn")
    bundle_run(config_file=str(root / "configs" / "inference.json"), bundle_root=str(root), input=crop,
               output_dir=str(tmp_path / "bundle"), device="cpu")  # fmt: skip
    ours, theirs = load_volume(out), load_volume(tmp_path / "bundle" / "crop_sr_x2.nii.gz")
    assert ours.shape == (1, 64, 64, 3) and torch.equal(ours, theirs) and torch.equal(ours.affine, theirs.affine)
    assert nib.load(out).header["descrip"].tobytes().rstrip(b"\0") == line.encode()


def test_a_band_limited_file_is_named_in_the_log(tmp_path):
    """mrsr infer says when the input was zero-filled along an axis and nothing was added there."""
    from mrsr.bundle import bundle_detail
    from mrsr.transforms import zero_filled_acquisition

    block = zero_filled_acquisition(load_volume(sample_path())[:, 40:72, 40:72, 25:28] / 255, 1, 2 / 3)[0]
    nib.save(nib.Nifti1Image(block.numpy(), np.diag([4.0, 4.0, 3.0, 1.0])), tmp_path / "zip.nii.gz")
    lines = []
    options = InferOptions(bundle="msrn", settings=InferSettings(device="cpu"))
    _, sr, _ = super_resolve_file(tmp_path / "zip.nii.gz", tmp_path / "o.nii.gz", options, log=lines.append)
    assert lines[-1] == ("bundle msrn: zip.nii.gz is band-limited along axis 0 (zero-filled or interpolated when it "
                         "was made): nothing added beyond its band there")  # fmt: skip
    assert sr.meta[DESCRIPTION_KEY] == (f"mrsr bundle msrn x2; data consistency on; band-limited axis 0; detail "
                                        f"{bundle_detail('msrn', 2):g}")  # fmt: skip


def test_the_chain_keeps_a_result_in_memory_without_an_output(tmp_path):
    chain = inference_chain(InferSettings(scale=2, data_consistency=False, method="zerofill"))
    d = chain({"image": _crop(tmp_path)}, get_baseline("zerofill", 2))
    assert d["pred"].shape == (1, 64, 64, 3) and d["pred"].pixdim.tolist() == [2.0, 2.0, 3.0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["crop.nii.gz"]
    lo, hi = d["image"].meta["mrsr_intensity_range"]
    assert float(d["pred"].max()) > lo + 0.5 * (hi - lo)  # back in the scan's intensities


@pytest.mark.parametrize(
    "options, message",
    [
        (InferOptions(bundle="msrn", network="msrn"), "either --bundle"),
        (InferOptions(bundle="msrn", settings=InferSettings(scale=2.5)), "integer factor"),
        (InferOptions(network="magic"), "Unknown network 'magic'; choose one of zerofill, bicubic, durn"),
        (InferOptions(network="durn"), "needs --weights"),
        (InferOptions(network="msrn", weights="w.pt", settings=InferSettings(scale=1.5)), "integer factor"),
        (InferOptions(settings=InferSettings(detail=0.5)), "--detail scales what a network adds; bicubic adds nothing"),
        (InferOptions(bundle="msrn", settings=InferSettings(detail=1.5)), "detail must be a number from 0"),
    ],
)
def test_bad_predictor_options(options, message):
    with pytest.raises(MrsrError, match=message):
        build_predictor(options)


def test_a_bundle_keeps_its_own_detail_unless_told():
    from mrsr.bundle import bundle_detail

    assert build_predictor(InferOptions(bundle="msrn")).detail == bundle_detail("msrn", 2)
    assert build_predictor(InferOptions(bundle="msrn", settings=InferSettings(scale=4))).detail == bundle_detail(
        "msrn", 4
    )
    assert build_predictor(InferOptions(bundle="msrn", settings=InferSettings(detail=1))).detail == 1.0


def test_a_baseline_lands_on_the_requested_size_and_has_nothing_to_adapt(tmp_path):
    predictor = build_predictor(InferOptions(network="Bicubic", settings=InferSettings(scale=2.5)))
    assert predictor == Predictor("bicubic", 2.5) and predictor.is_baseline
    module = predictor.module((128, 62, 128), slice_axis=1, size=(300, 310))
    assert module(torch.rand(1, 1, 128, 128)).shape == (1, 1, 300, 310)
    with pytest.raises(MrsrError, match="nothing to adapt"):
        super_resolve_file(
            _crop(tmp_path), tmp_path / "o.nii.gz", InferOptions(settings=InferSettings(adapt=AdaptSettings(steps=5)))
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["crop.nii.gz"]


def test_degrade_then_evaluate_files(tmp_path):
    lr_path, lines = tmp_path / "lr.nii.gz", []
    hr, lr, axes = degrade_file(_crop(tmp_path), lr_path, DegradeSettings(scale=2))
    assert axes == (0, 1) and lr.shape == (1, 16, 16, 3) and load_volume(lr_path).shape == lr.shape
    result = evaluate_files(tmp_path / "crop.nii.gz", tmp_path / "crop.nii.gz", log=lines.append)
    assert result.psnr == float("inf") and lines == []
    with pytest.raises(MrsrError, match="differs from HR shape"):
        evaluate_files(lr_path, tmp_path / "crop.nii.gz")


def test_a_gap_that_leaves_no_slice_is_said_in_mm(tmp_path):
    """The user gave millimetres: the message says them, and the slice spacing they must stay below."""
    crop = _crop(tmp_path)  # 4 x 4 x 3 mm: the slices are 2 x 3 = 6 mm apart at x2
    with pytest.raises(MrsrError, match=r"--gap 7 mm leaves no slice: the slice spacing is 2 x 3 = 6 mm"):
        degrade_file(crop, tmp_path / "lr.nii.gz", DegradeSettings(2, slice_profile="gaussian", gap=7))
    assert not (tmp_path / "lr.nii.gz").exists()


def test_selfsr_file_dicom_series_in_derived_series_out(tmp_path):
    """A thick-slice DICOM series (real T1 crop at 1.5 mm in-plane, 4.5 mm box slices) in, a derived series out:
    same study, new series, DERIVED, the HR grid's geometry and SliceThickness, the provenance line; an existing
    output is refused before any training."""
    import pydicom
    from monai.data import MetaTensor

    from mrsr.data import save_volume
    from mrsr.transforms import SliceProfileDegrade

    crop = load_volume(sample_path())[:, 40:80, 36:84, 6:42]
    affine = torch.tensor([[0.0, 1.5, 0.0, -20.0], [-1.5, 0.0, 0.0, 14.0], [0.0, 0.0, 1.5, -30.0], [0, 0, 0, 1.0]])
    hr = MetaTensor(crop.as_tensor(), affine=affine.double())
    save_volume(SliceProfileDegrade(3, axis=2)(hr), tmp_path / "thick")
    sr, report = selfsr_file(tmp_path / "thick", tmp_path / "iso",
                             SelfSRSettings(steps=3, validate_every=3, progress=False, approach="upsample",
                                            fallback=False), log=lambda line: None)  # fmt: skip
    assert (report.axis, report.scale, report.choice) == (2, 3, "network")
    back = load_volume(tmp_path / "iso")
    assert back.shape == hr.shape
    np.testing.assert_allclose(np.asarray(back.affine), np.asarray(hr.affine), atol=1e-4)
    first_in = pydicom.dcmread(sorted((tmp_path / "thick").iterdir())[0])
    first_out = pydicom.dcmread(sorted((tmp_path / "iso").iterdir())[0])
    assert first_out.StudyInstanceUID == first_in.StudyInstanceUID
    assert first_out.SeriesInstanceUID != first_in.SeriesInstanceUID
    assert list(first_out.ImageType)[:1] == ["DERIVED"] and float(first_out.SliceThickness) == pytest.approx(1.5)
    assert "selfsr x3" in first_out.DerivationDescription
    with pytest.raises(MrsrError, match="exists"):
        selfsr_file(tmp_path / "thick", tmp_path / "iso", SelfSRSettings(steps=10**9), log=lambda line: None)


def _mrsr(*args: str) -> list[str]:
    return [sys.executable, "-m", "mrsr", *args]


def _no_temporaries(folder) -> bool:
    return not [p for p in folder.rglob(".*") if ".tmp" in p.name or p.name.endswith(".old")]


def test_two_runs_writing_one_output_leave_it_whole_from_one_run(tmp_path):
    """Two `mrsr infer` at once onto one output, without --overwrite: one writes it whole, the other says so."""
    lr = load_volume(sample_path())
    save_volume(lr, tmp_path / "lr.nii.gz")
    args = ["infer", str(tmp_path / "lr.nii.gz"), "--network", "zerofill", "--scale", "2", "--device", "cpu"]
    subprocess.run(_mrsr(*args, "-o", str(tmp_path / "reference.nii.gz")), check=True, capture_output=True)
    runs = [subprocess.Popen(_mrsr(*args, "-o", str(tmp_path / "sr.nii.gz")), stderr=subprocess.PIPE, text=True)
            for _ in range(2)]  # fmt: skip
    results = [(run.wait(timeout=300), run.stderr.read()) for run in runs]
    assert sorted(code for code, _ in results) == [0, 2], results
    refused = next(err for code, err in results if code == 2)
    lines = [line for line in refused.splitlines() if line.startswith("mrsr:")]
    assert len(lines) == 1 and ("exists" in lines[0] or "another run" in lines[0]), refused
    assert "Traceback" not in refused
    out = nib.load(tmp_path / "sr.nii.gz")
    assert np.array_equal(np.asarray(out.dataobj), np.asarray(nib.load(tmp_path / "reference.nii.gz").dataobj))
    assert _no_temporaries(tmp_path)
