"""load_volume / save_volume: formats, atomic writes and every bad input."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.data import MetaTensor

from mrsr.data import load_volume, sample_path, save_volume
from mrsr.data.io import check_output_path
from mrsr.errors import MrsrError
from tests.conftest import MR700


def test_sample_is_the_real_t1(t1_volume):
    assert t1_volume.shape == (1, 128, 128, 62) and t1_volume.dtype == torch.float32
    np.testing.assert_allclose(np.linalg.norm(t1_volume.affine[:3, :3].numpy(), axis=0), [2, 2, 3])
    assert (sample_path().parent / "NOTICE").read_text().count("Apache") >= 1


def test_nifti_round_trip_keeps_values_and_affine(tmp_path, t1_volume):
    for name in ("v.nii.gz", "v.nii"):
        out = save_volume(t1_volume, tmp_path / name)
        back = load_volume(out)
        assert torch.equal(back, t1_volume) and torch.equal(back.affine, t1_volume.affine)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.nii", "v.nii.gz"]  # no temporary files left


def test_existing_output_needs_overwrite(tmp_path, t1_volume):
    out = tmp_path / "v.nii.gz"
    save_volume(t1_volume, out)
    before = out.read_bytes()
    with pytest.raises(MrsrError, match="--overwrite"):
        save_volume(t1_volume * 2, out)
    assert out.read_bytes() == before
    save_volume(t1_volume * 2, out, overwrite=True)
    assert float(load_volume(out).max()) == 2 * float(t1_volume.max())


def test_dicom_folder_overwrite_replaces_whole_folder(tmp_path, t1_volume):
    out = tmp_path / "series"
    save_volume(t1_volume[:, :, :, :4], out)
    save_volume(t1_volume[:, :, :, :2], out, overwrite=True)
    assert len(list(out.iterdir())) == 2 and len(list(tmp_path.iterdir())) == 1


def test_2d_nifti_is_a_one_slice_volume(tmp_path):
    nib.save(
        nib.Nifti1Image(np.random.rand(20, 30).astype(np.float32), np.diag([0.5, 0.5, 1, 1])), tmp_path / "a.nii.gz"
    )
    assert load_volume(tmp_path / "a.nii.gz").shape == (1, 20, 30, 1)


def test_non_parallel_series_cannot_become_nifti(tmp_path):
    with pytest.raises(MrsrError, match="not parallel"):
        save_volume(load_volume(MR700), tmp_path / "radial.nii.gz")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: p / "missing.nii.gz", "No such file"),
        (lambda p: _write(p / "cut.nii.gz", sample_path().read_bytes()[:5000]), "truncated|unreadable"),
        (lambda p: _write(p / "junk.nii", b"this is not an image" * 30), "unreadable|truncated"),
        (lambda p: _write(p / "image.png", b"\x89PNG"), "unsupported format"),
        (lambda p: _nifti(p / "nan.nii.gz", np.where(np.eye(8)[..., None].repeat(3, 2) > 0, np.nan, 1.0)), "NaN/Inf"),
        (lambda p: _nifti(p / "inf.nii.gz", np.full((8, 8, 3), np.inf)), "NaN/Inf"),
        (lambda p: _nifti(p / "4d.nii.gz", np.ones((8, 8, 3, 2))), "one 3D volume"),
    ],
)
def test_bad_input(tmp_path, make, message):
    with pytest.raises(MrsrError, match=message):
        load_volume(make(tmp_path))


def _write(path, data: bytes):
    path.write_bytes(data)
    return path


def _nifti(path, array):
    nib.save(nib.Nifti1Image(np.asarray(array, dtype=np.float32), np.eye(4)), path)
    return path


def test_output_checks(tmp_path, t1_volume):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(MrsrError, match="Cannot create the output folder"):
        check_output_path(blocker / "sub" / "out.nii.gz")
    with pytest.raises(MrsrError, match="would overwrite the input"):
        check_output_path(sample_path(), overwrite=True, inputs=(sample_path(),))
    with pytest.raises(MrsrError, match="unknown output format"):
        check_output_path(tmp_path / "out.png")
    with pytest.raises(MrsrError, match="Cannot create|Cannot write"):
        save_volume(MetaTensor(torch.zeros(1, 4, 4, 2)), blocker / "out.nii.gz")
