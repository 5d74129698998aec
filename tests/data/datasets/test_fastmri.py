"""fastMRI knee: HDF5 to NIfTI conversion and its geometry, the split, resumed conversions, bad input, the script."""

from __future__ import annotations

import sys
from pathlib import Path

import h5py
import nibabel as nib
import numpy as np
import pytest

from mrsr.data import load_volume
from mrsr.data.datasets.fastmri import (
    FASTMRI_DEFAULT_SPACING,
    convert_fastmri_h5,
    fastmri_knee_datalist,
    fastmri_spacing,
)
from mrsr.data.manifest import load_manifest, write_manifest
from mrsr.errors import MrsrError
from tests.data.datasets.conftest import script, script_help

HEADER = (
    '<?xml version="1.0"?><ismrmrdHeader xmlns="http://www.ismrm.org/ISMRMRD"><encoding><reconSpace>'
    "<matrixSize><x>8</x><y>8</y><z>1</z></matrixSize><fieldOfView_mm><x>4</x><y>4</y><z>3.5</z></fieldOfView_mm>"
    "</reconSpace></encoding></ismrmrdHeader>"
)


def fake_h5(path: Path, slices: int = 3, header: str | None = HEADER, recon: bool = True) -> np.ndarray:
    path.parent.mkdir(parents=True, exist_ok=True)
    images = np.random.default_rng(len(path.name)).random((slices, 8, 6), dtype=np.float32)
    with h5py.File(path, "w") as f:
        if recon:
            f["reconstruction_esc"] = images
        f["kspace"] = np.zeros((slices, 8, 6), np.complex64)
        if header is not None:
            f["ismrmrd_header"] = header.encode()
        f.attrs["acquisition"] = "CORPD_FBK"
    return images


def test_fastmri_conversion_geometry(tmp_path):
    images = fake_h5(tmp_path / "file1.h5")
    assert convert_fastmri_h5(tmp_path / "file1.h5", tmp_path / "out" / "file1.nii.gz") == {"acquisition": "CORPD_FBK"}
    img = nib.load(tmp_path / "out" / "file1.nii.gz")
    assert img.shape == (6, 8, 3) and np.allclose(img.header.get_zooms(), (0.5, 0.5, 3.5))
    data = img.get_fdata(dtype=np.float32)
    np.testing.assert_array_equal(data[:, ::-1, :].transpose(2, 1, 0), images)  # column = X, row (upright) = Y
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["file1.nii.gz"]
    fake_h5(tmp_path / "nohdr.h5", header=None)
    convert_fastmri_h5(tmp_path / "nohdr.h5", tmp_path / "nohdr.nii.gz")
    assert nib.load(tmp_path / "nohdr.nii.gz").header.get_zooms() == FASTMRI_DEFAULT_SPACING
    assert fastmri_spacing(b"<broken") == FASTMRI_DEFAULT_SPACING


def test_fastmri_datalist_split_and_skip(tmp_path):
    src, out = tmp_path / "knee", tmp_path / "nifti"
    for i in range(3):
        fake_h5(src / "singlecoil_train" / f"file10{i}.h5")
    for i in range(5):
        fake_h5(src / "singlecoil_val" / f"file20{4 - i}.h5")
    d = fastmri_knee_datalist(src, out)
    assert [e["name"] for e in d["training"]] == ["file100", "file101", "file102"]
    assert [e["name"] for e in d["validation"]] == ["file200", "file201"]
    assert [e["name"] for e in d["test"]] == ["file202", "file203", "file204"]
    assert d["test"][0] == {"image": "singlecoil_val/file202.nii.gz", "name": "file202", "acquisition": "CORPD_FBK"}
    converted = out / "singlecoil_train" / "file100.nii.gz"
    stamp = converted.stat().st_mtime_ns
    assert fastmri_knee_datalist(src, out) == d and converted.stat().st_mtime_ns == stamp  # converted files are kept
    lists = load_manifest(write_manifest(tmp_path / "k.json", d), out)
    assert load_volume(lists["validation"][0]["image"]).shape == (1, 6, 8, 3)


def test_fastmri_bad_input(tmp_path, monkeypatch):
    with pytest.raises(MrsrError, match="No singlecoil_train"):
        fastmri_knee_datalist(tmp_path, tmp_path / "o")
    fake_h5(tmp_path / "test.h5", recon=False)
    with pytest.raises(MrsrError, match="no 'reconstruction_esc'"):
        convert_fastmri_h5(tmp_path / "test.h5", tmp_path / "t.nii.gz")
    (tmp_path / "junk.h5").write_bytes(b"not hdf5")
    with pytest.raises(MrsrError, match="not an HDF5 file"):
        convert_fastmri_h5(tmp_path / "junk.h5", tmp_path / "j.nii.gz")
    monkeypatch.setitem(sys.modules, "h5py", None)
    with pytest.raises(MrsrError, match="pip install h5py"):
        convert_fastmri_h5(tmp_path / "test.h5", tmp_path / "t.nii.gz")
    assert not list(tmp_path.glob("*.nii.gz"))


def test_script(tmp_path, capsys):
    fake_h5(tmp_path / "knee" / "singlecoil_train" / "f1.h5")
    fake_h5(tmp_path / "knee" / "singlecoil_val" / "f2.h5")
    args = ["--fastmri-root", str(tmp_path / "knee"), "--nifti-dir", str(tmp_path / "nii"), "--no-progress"]
    assert script("fastmri_knee").main(args + ["--out", str(tmp_path / "k.json")]) == 0
    assert "training 1, validation 0, test 1" in capsys.readouterr().out
    assert script("fastmri_knee").main(["--fastmri-root", str(tmp_path), "--nifti-dir", "x", "--out", "k.json"]) == 2
    assert "No singlecoil_train" in capsys.readouterr().err
    assert "second half" in script_help("fastmri_knee", capsys)
