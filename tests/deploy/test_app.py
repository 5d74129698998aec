"""The MONAI Deploy application (deploy/app.py), run as the SDK runs applications, against `mrsr infer --bundle`.

The app runs in a subprocess (``python deploy/app.py -i IN -o OUT -m BUNDLE``, or the ``HOLOSCAN_*`` variables)
with the stack holoscan asks for; the reference is the ``mrsr infer`` command (``mrsr.cli.main``, the console
script's entry point) on the same input. The DICOM input is a real MR scan (pydicom-data's emri_small, 10 frames
of 64 x 64) written as a series of single-frame files with an oblique orientation and non-square pixels, where
the SDK's own affine is wrong (deploy/README.md). Needs the deploy extra (``pip install -e ".[deploy]"``).
"""

from __future__ import annotations

import configparser
import importlib.util
import json
import os
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from mrsr.cli import main as mrsr_main
from mrsr.data import load_volume, sample_path
from tests.conftest import pydicom_testdata

REPO = Path(__file__).resolve().parents[2]
APP = REPO / "deploy" / "app.py"
BUNDLE = REPO / "bundles" / "wasa_mr_sr"
TOLERANCE = 1e-4  # voxels (intensity units) and affines (mm)
MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
# the tags of emri_small that its single-frame series keeps
CARRIED = ("PatientName", "PatientID", "PatientBirthDate", "StudyInstanceUID", "StudyDate", "StudyTime",
           "FrameOfReferenceUID", "Modality", "SeriesNumber", "BodyPartExamined", "MagneticFieldStrength")  # fmt: skip


def _has_sdk() -> bool:
    try:
        return importlib.util.find_spec("monai.deploy") is not None
    except (ImportError, ValueError):
        return False


needs_sdk = pytest.mark.skipif(
    not _has_sdk(), reason="the MONAI Deploy App SDK is not installed (pip install -e '.[deploy]')"
)


def _big_stack() -> None:
    """holoscan asks for a 32 MiB stack (``ulimit -s 32768``)."""
    _, hard = resource.getrlimit(resource.RLIMIT_STACK)
    want = 32 * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_STACK, (want if hard == resource.RLIM_INFINITY else min(want, hard), hard))


def run_app(*args: str, env: dict[str, str] | None = None) -> float:
    """Run ``python deploy/app.py ARGS``; its wall time in seconds. Fails the test with the app's output on error."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, str(APP), *args], capture_output=True, text=True, timeout=600,
                          env={**os.environ, **(env or {})}, preexec_fn=_big_stack, cwd=REPO)  # fmt: skip
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    return time.perf_counter() - start


def emri_series(folder: Path, pixel_spacing=(0.9, 1.1), step: float = 1.2) -> Path:
    """The real MR frames of pydicom-data's emri_small (a legacy multi-frame file without geometry) as a series of
    single-frame MR files, oblique (20 degrees about z, -10 about x), with non-square pixels (``pixel_spacing``:
    between rows, between columns) and ``step`` mm between slices, named in reverse slice order."""
    src = pydicom.dcmread(pydicom_testdata("emri_small.dcm"))
    frames = src.pixel_array
    a, b = np.deg2rad(20.0), np.deg2rad(-10.0)
    rotation = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]]) @ np.array(
        [[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]]
    )
    row, col = rotation[:, 0], rotation[:, 1]
    origin, normal = np.array([-30.0, -40.0, 12.5]), np.cross(row, col)
    series_uid = generate_uid()
    folder.mkdir(parents=True)
    n = len(frames)
    for k, frame in enumerate(frames):
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID = MR_IMAGE_STORAGE
        ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        for tag in CARRIED:
            setattr(ds, tag, src.data_element(tag).value)
        ds.PatientID = "emri-small"
        ds.SOPClassUID, ds.SOPInstanceUID = MR_IMAGE_STORAGE, ds.file_meta.MediaStorageSOPInstanceUID
        ds.SeriesInstanceUID, ds.SeriesDescription = series_uid, "emri_small T1 frames"
        ds.ImageType, ds.InstanceNumber = ["ORIGINAL", "PRIMARY"], k + 1
        ds.ImagePositionPatient = [float(v) for v in origin + k * step * normal]
        ds.ImageOrientationPatient = [float(v) for v in np.concatenate([row, col])]
        ds.PixelSpacing, ds.SliceThickness = list(pixel_spacing), step
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.Rows, ds.Columns = frame.shape
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
        ds.PixelData = np.ascontiguousarray(frame, dtype=np.uint16).tobytes()
        ds.save_as(str(folder / f"slice{n - k:03d}.dcm"), enforce_file_format=True)
    return folder


def mrsr_infer(source: Path, out: Path) -> None:
    """``mrsr infer SOURCE -o OUT --bundle wasa`` (x2, data consistency on: the defaults the app runs with)."""
    assert mrsr_main(["infer", str(source), "-o", str(out), "--bundle", "wasa"]) == 0


def assert_float_sr(app, ref, label: str) -> None:
    """``app`` holds mrsr's float SR intensities: no uint8 cast, the same range as the reference."""
    values = app.numpy()
    assert not np.allclose(values, np.round(values)), f"{label}: integer values only"
    assert values.min() < 0 or values.max() > 255, f"{label}: a range uint8 could hold"
    np.testing.assert_allclose([values.min(), values.max()], [float(ref.min()), float(ref.max())], atol=TOLERANCE)


@needs_sdk
@pytest.mark.slow
def test_dicom_series_in_derived_series_and_nifti_out_equal_mrsr_infer(tmp_path):
    series = emri_series(tmp_path / "emri")
    seconds = run_app("-i", str(series), "-o", str(tmp_path / "out"), "-m", str(BUNDLE))
    mrsr_infer(series, tmp_path / "ref.nii.gz")
    mrsr_infer(series, tmp_path / "ref_dicom")
    lr, ref, ref_dicom = load_volume(series), load_volume(tmp_path / "ref.nii.gz"), load_volume(tmp_path / "ref_dicom")
    nifti, dicom = tmp_path / "out" / "emri_sr_x2.nii.gz", tmp_path / "out" / "emri_sr_x2"
    sr, sr_dicom = load_volume(nifti), load_volume(dicom)

    # the SR grid: twice the in-plane matrix, half the in-plane spacing (0.9 x 1.1 mm pixels: columns 1.1 mm apart)
    assert sr.shape == sr_dicom.shape == ref.shape == (1, 128, 128, 10) and lr.shape == (1, 64, 64, 10)
    np.testing.assert_allclose(sr.pixdim.numpy(), [0.55, 0.45, 1.2], atol=1e-6)
    for volume in (sr, sr_dicom):
        np.testing.assert_allclose(volume.affine.numpy(), ref.affine.numpy(), atol=TOLERANCE)
    # voxels: NIfTI against NIfTI, the derived series against mrsr infer's derived series (both uint16 + rescale)
    voxel_difference = float(np.abs(sr.numpy() - ref.numpy()).max())
    assert voxel_difference <= TOLERANCE
    assert float(np.abs(sr_dicom.numpy() - ref_dicom.numpy()).max()) <= TOLERANCE
    step = float(ref.max() - ref.min()) / 65535  # the series' quantisation step
    assert float(np.abs(sr_dicom.numpy() - ref.numpy()).max()) <= step / 2 + TOLERANCE
    assert nib.load(nifti).get_data_dtype() == np.float32
    assert_float_sr(sr, ref, "NIfTI")
    assert_float_sr(sr_dicom, ref, "DICOM")

    # a derived series of the same patient and study, and the provenance line mrsr infer writes
    source = pydicom.dcmread(next(series.iterdir()))
    first = pydicom.dcmread(sorted(dicom.iterdir())[0])
    assert list(first.ImageType)[:1] == ["DERIVED"] and first.SeriesInstanceUID != source.SeriesInstanceUID
    assert (first.StudyInstanceUID, first.PatientID) == (source.StudyInstanceUID, "emri-small")
    description = nib.load(tmp_path / "ref.nii.gz").header["descrip"].item().decode()
    assert description.startswith("mrsr bundle wasa x2; data consistency on")
    assert first.DerivationDescription == description == nib.load(nifti).header["descrip"].item().decode()
    print(f"\nDICOM in: app {seconds:.1f} s; max voxel difference {voxel_difference:.3g}; output range "
          f"{float(sr.min()):.4f}..{float(sr.max()):.4f}")  # fmt: skip


@needs_sdk
@pytest.mark.slow
def test_nifti_in_through_the_holoscan_variables(tmp_path):
    """A crop of the bundled real T1 scan (2 x 2 x 3 mm) in, laid out as in a MAP: the input folder holds the NIfTI
    file, the models folder the bundle."""
    (tmp_path / "input").mkdir()
    crop = tmp_path / "input" / "t1crop.nii.gz"
    nib.save(nib.load(sample_path()).slicer[32:96, 32:96, 27:35], crop)
    models = tmp_path / "models"
    models.mkdir()
    (models / BUNDLE.name).symlink_to(BUNDLE, target_is_directory=True)
    seconds = run_app(env={"HOLOSCAN_INPUT_PATH": str(crop.parent), "HOLOSCAN_OUTPUT_PATH": str(tmp_path / "out"),
                           "HOLOSCAN_MODEL_PATH": str(models)})  # fmt: skip
    mrsr_infer(crop, tmp_path / "ref.nii.gz")
    ref = load_volume(tmp_path / "ref.nii.gz")
    sr = load_volume(tmp_path / "out" / "t1crop_sr_x2.nii.gz")
    sr_dicom = load_volume(tmp_path / "out" / "t1crop_sr_x2")
    assert sr.shape == sr_dicom.shape == ref.shape == (1, 128, 128, 8)
    np.testing.assert_allclose(sr.pixdim.numpy(), [1.0, 1.0, 3.0], atol=1e-6)
    voxel_difference = float(np.abs(sr.numpy() - ref.numpy()).max())
    assert voxel_difference <= TOLERANCE
    step = float(ref.max() - ref.min()) / 65535
    assert float(np.abs(sr_dicom.numpy() - ref.numpy()).max()) <= step / 2 + TOLERANCE
    for volume in (sr, sr_dicom):
        np.testing.assert_allclose(volume.affine.numpy(), ref.affine.numpy(), atol=TOLERANCE)
    assert_float_sr(sr, ref, "NIfTI")
    assert_float_sr(sr_dicom, ref, "DICOM")
    print(f"\nNIfTI in (HOLOSCAN_*): app {seconds:.1f} s; max voxel difference {voxel_difference:.3g}")


@needs_sdk
@pytest.mark.slow
def test_the_sdk_volume_becomes_mrsrs_volume_and_its_own_affine_is_off(tmp_path):
    """In process, no scheduler: the SDK's loader, selector and series-to-volume operators on the oblique series with
    non-square pixels. The converted volume is what mrsr's reader makes of the folder; the SDK's own
    nifti_affine_transform swaps the in-plane spacings (why deploy/app.py builds its own)."""
    sys.path.insert(0, str(APP.parent))
    try:
        import app as deploy_app
    finally:
        sys.path.remove(str(APP.parent))
    from monai.deploy.core import Fragment
    from monai.deploy.operators.dicom_data_loader_operator import DICOMDataLoaderOperator
    from monai.deploy.operators.dicom_series_selector_operator import DICOMSeriesSelectorOperator
    from monai.deploy.operators.dicom_series_to_volume_operator import DICOMSeriesToVolumeOperator

    series = emri_series(tmp_path / "emri")
    fragment = Fragment()
    studies = DICOMDataLoaderOperator(fragment, name="loader").load_data_to_studies(series)
    rules = json.loads(deploy_app.SERIES_RULES)
    selection = DICOMSeriesSelectorOperator(fragment, name="selector").filter(rules, studies)
    image = DICOMSeriesToVolumeOperator(fragment, name="to_volume").convert_to_image(selection)
    volume = deploy_app.volume_from_sdk_image(image, deploy_app.series_datasets(selection), str(series))
    mine = load_volume(series)
    assert volume.shape == mine.shape and volume.dtype == mine.dtype
    assert float(np.abs(volume.numpy() - mine.numpy()).max()) == 0.0
    np.testing.assert_allclose(volume.affine.numpy(), mine.affine.numpy(), atol=1e-6)
    assert volume.meta["mrsr_dicom_tags"] == mine.meta["mrsr_dicom_tags"]
    sdk_spacing = np.linalg.norm(np.asarray(image.metadata()["nifti_affine_transform"])[:3, :2], axis=0)
    np.testing.assert_allclose(sdk_spacing, [0.9, 1.1])  # column index step given the spacing between rows
    np.testing.assert_allclose(mine.pixdim.numpy()[:2], [1.1, 0.9])


def _requirement_names(lines) -> set[str]:
    names = set()
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if line:
            names.add(re.split(r"[<>=!~\[; ]", line, maxsplit=1)[0].lower().replace("_", "-"))
    return names


def test_requirements_cover_mrsrs_dependencies():
    """deploy/requirements.txt (what a MAP installs) names every install_requires of setup.cfg, and not "mrsr":
    the PyPI project of that name is another one."""
    config = configparser.ConfigParser()
    config.read(REPO / "setup.cfg")
    needed = _requirement_names(config["options"]["install_requires"].splitlines())
    listed = _requirement_names((REPO / "deploy" / "requirements.txt").read_text().splitlines())
    assert needed <= listed, sorted(needed - listed)
    assert "mrsr" not in listed and "highdicom" in listed
