"""DicomReader on real DICOM (pydicom's series, pydicom-data's multi-frame files) and the series writer."""

from __future__ import annotations

import shutil

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
import torch
from monai.transforms import LoadImage

from mrsr.data import DicomReader, load_volume, write_dicom_series
from mrsr.data.dicom import DICOM_META_KEY, SLICE_GEOMETRY_KEY
from mrsr.errors import MrsrError
from tests.conftest import CT5N, MR700, MR_SMALL, PYDICOM_FILES, pydicom_testdata

LPS = np.diag([-1.0, -1.0, 1.0, 1.0])


def sitk_affine_ras(image: sitk.Image) -> np.ndarray:
    """Voxel-to-RAS affine from SimpleITK's (LPS) geometry: an independent reader."""
    direction = np.asarray(image.GetDirection()).reshape(3, 3)
    affine = np.eye(4)
    affine[:3, :3] = direction * np.asarray(image.GetSpacing())
    affine[:3, 3] = image.GetOrigin()
    return LPS @ affine


def sitk_series(folder) -> sitk.Image:
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    return reader.Execute()


def test_series_folder_matches_simpleitk():
    img = load_volume(CT5N)
    ref = sitk_series(CT5N)
    assert img.shape == (1, 16, 16, 5)
    np.testing.assert_allclose(img.affine.numpy(), sitk_affine_ras(ref), atol=1e-4)
    np.testing.assert_allclose(img[0].numpy(), sitk.GetArrayFromImage(ref).transpose(2, 1, 0), atol=1e-3)
    assert img.meta[DICOM_META_KEY]["Modality"] == "CT"


def test_through_monai_loadimage():
    img = LoadImage(reader=DicomReader(), image_only=True, ensure_channel_first=True)(str(CT5N))
    assert img.shape == (1, 16, 16, 5)


def test_non_parallel_series_keeps_each_plane():
    img = load_volume(MR700)
    assert img.shape == (1, 16, 16, 7)
    geometry = img.meta[SLICE_GEOMETRY_KEY]
    files = sorted((pydicom.dcmread(p) for p in MR700.iterdir()), key=lambda d: int(d.InstanceNumber))
    for (position, orientation), ds in zip(geometry, files):
        np.testing.assert_allclose(position, [float(v) for v in ds.ImagePositionPatient])
        np.testing.assert_allclose(orientation, [float(v) for v in ds.ImageOrientationPatient])


def test_single_file_is_a_one_slice_volume():
    img = load_volume(MR_SMALL)
    ref = sitk.ReadImage(str(MR_SMALL))
    assert img.shape == (1, 64, 64, 1)
    np.testing.assert_allclose(img.affine[:, [0, 1, 3]].numpy(), sitk_affine_ras(ref)[:, [0, 1, 3]], atol=1e-4)


def test_legacy_multiframe_frames_go_last():
    with pytest.warns(UserWarning, match="no PixelSpacing"), pytest.warns(UserWarning, match="no plane position"):
        img = load_volume(pydicom_testdata("emri_small.dcm"))  # a real file with neither
    ref = sitk.GetArrayFromImage(sitk.ReadImage(str(pydicom_testdata("emri_small.dcm"))))  # (frames, rows, cols)
    assert img.shape == (1, 64, 64, 10)
    np.testing.assert_allclose(img[0].numpy(), ref.transpose(2, 1, 0))


def test_enhanced_multiframe_geometry_from_functional_groups():
    path = pydicom_testdata("eCT_Supplemental.dcm")
    img = load_volume(path)
    ds = pydicom.dcmread(path)
    positions = [
        np.asarray(f.PlanePositionSequence[0].ImagePositionPatient, float) for f in ds.PerFrameFunctionalGroupsSequence
    ]
    assert img.shape == (1, 512, 512, 2)
    world = (LPS @ img.affine.numpy() @ np.array([[0, 0, 0, 1], [0, 0, 1, 1]]).T)[:3].T
    np.testing.assert_allclose(sorted(map(tuple, world)), sorted(map(tuple, positions)), atol=1e-3)


def test_writer_round_trip_pydicom_and_simpleitk(tmp_path, t1_volume):
    out = write_dicom_series(t1_volume.numpy(), t1_volume.affine.numpy(), tmp_path / "series")
    files = sorted(out.iterdir())
    assert len(files) == 62 and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    ref = sitk_series(out)
    np.testing.assert_allclose(sitk_affine_ras(ref), t1_volume.affine.numpy(), atol=1e-4)
    back = load_volume(out)
    np.testing.assert_allclose(back[0].numpy(), t1_volume[0].numpy(), atol=0.01)
    ds = pydicom.dcmread(files[0])
    assert list(ds.ImageType) == ["DERIVED", "SECONDARY"]
    assert [float(v) for v in ds.PixelSpacing] == [2.0, 2.0] and float(ds.SliceThickness) == 3.0


def test_derived_series_carries_patient_and_study(tmp_path):
    src = load_volume(CT5N)
    tags = src.meta[DICOM_META_KEY]
    out = write_dicom_series(src.numpy(), src.affine.numpy(), tmp_path / "derived", tags)
    original = pydicom.dcmread(next(CT5N.iterdir()))
    derived = pydicom.dcmread(next(out.iterdir()))
    assert derived.PatientID == original.PatientID and derived.StudyInstanceUID == original.StudyInstanceUID
    assert derived.SeriesInstanceUID != original.SeriesInstanceUID
    assert derived.Modality == "CT" and derived.SOPClassUID == original.SOPClassUID
    np.testing.assert_allclose(load_volume(out).affine.numpy(), src.affine.numpy(), atol=1e-4)


def test_non_parallel_round_trip(tmp_path):
    src = load_volume(MR700)
    out = write_dicom_series(
        src.numpy(), src.affine.numpy(), tmp_path / "radial", slice_geometry=src.meta[SLICE_GEOMETRY_KEY]
    )
    back = load_volume(out)
    for a, b in zip(back.meta[SLICE_GEOMETRY_KEY], src.meta[SLICE_GEOMETRY_KEY]):
        np.testing.assert_allclose(a[0], b[0], atol=1e-4)
        np.testing.assert_allclose(a[1], b[1], atol=1e-6)


def test_writer_leaves_nothing_on_failure(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(pydicom.dataset.Dataset, "save_as", broken)
    with pytest.raises(OSError):
        write_dicom_series(torch.rand(4, 4, 3).numpy(), np.eye(4), tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


def test_folder_without_images(tmp_path):
    shutil.copy(PYDICOM_FILES / "rtplan.dcm", tmp_path / "plan.dcm")
    with pytest.raises(MrsrError, match="no images"):
        load_volume(tmp_path)


def test_empty_folder(tmp_path):
    (tmp_path / "notes.txt").write_text("not dicom")
    with pytest.raises(MrsrError, match="No DICOM files"):
        load_volume(tmp_path)


def test_folder_with_two_series(tmp_path):
    for src in (CT5N, MR700):
        for p in src.iterdir():
            shutil.copy(p, tmp_path / f"{src.name}_{p.name}")
    with pytest.raises(MrsrError, match="2 DICOM series"):
        load_volume(tmp_path)


def test_non_image_dicom_file():
    with pytest.raises(MrsrError, match="without an image"):
        load_volume(PYDICOM_FILES / "rtplan.dcm")


def test_truncated_dicom_file(tmp_path):
    data = (CT5N / "2062").read_bytes()
    bad = tmp_path / "cut.dcm"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(MrsrError):
        load_volume(bad)


def _without_pixel_spacing(files, folder):
    """Copies of real DICOM ``files`` in ``folder`` with their PixelSpacing deleted."""
    folder.mkdir()
    for path in files:
        ds = pydicom.dcmread(path)
        del ds.PixelSpacing
        ds.save_as(folder / path.name)
    return folder


def test_series_without_pixel_spacing_warns_and_takes_1_mm(tmp_path):
    folder = _without_pixel_spacing(sorted(CT5N.iterdir()), tmp_path / "ct")
    with pytest.warns(UserWarning, match=r"no PixelSpacing; assuming 1 mm pixels.*check the output's geometry") as w:
        img = load_volume(folder)
    assert len([m for m in w if "PixelSpacing" in str(m.message)]) == 1 and "\n" not in str(w[0].message)
    ref = load_volume(CT5N)
    np.testing.assert_allclose(np.linalg.norm(img.affine[:3, :2].numpy(), axis=0), [1, 1])
    assert float(np.linalg.norm(ref.affine[:3, 0].numpy())) != 1  # the real spacing is not 1 mm: it was lost
    np.testing.assert_allclose(img.affine[:, 2:].numpy(), ref.affine[:, 2:].numpy(), atol=1e-6)  # slices kept
    np.testing.assert_array_equal(img.numpy(), ref.numpy())


def test_single_file_without_pixel_spacing_warns(tmp_path):
    path = _without_pixel_spacing([MR_SMALL], tmp_path / "mr") / MR_SMALL.name
    with pytest.warns(UserWarning, match="no PixelSpacing; assuming 1 mm"):
        img = load_volume(path)
    np.testing.assert_allclose(np.linalg.norm(img.affine[:3, :2].numpy(), axis=0), [1, 1])


def test_series_with_pixel_spacing_does_not_warn(recwarn):
    load_volume(CT5N)
    assert not [w for w in recwarn if "PixelSpacing" in str(w.message)]
