"""DICOM in and out with correct geometry.

``DicomReader`` is a MONAI ``ImageReader`` (use it with ``LoadImage(reader=DicomReader())``) for a
series folder, a single file or a multi-frame file. MONAI's own ``PydicomReader`` orders slices by
InstanceNumber and measures their spacing along the patient z axis only, which is wrong for
sagittal and oblique stacks, and it puts the frames of a multi-frame file on the wrong axis; this
reader sorts slices along the slice normal and reads multi-frame geometry from the functional
groups.

Array layout is ITK's and MONAI's: ``array[i, j, k]`` is column ``i``, row ``j`` of slice ``k``,
and the affine maps voxel indices to RAS world coordinates (mm), as for NIfTI.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from monai.data.image_reader import ImageReader
from monai.utils import MetaKeys, SpaceKeys
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from mrsr.errors import MrsrError
from mrsr.paths import atomic_path

__all__ = ["DicomReader", "write_dicom_series", "is_dicom_file", "DICOM_META_KEY", "SLICE_GEOMETRY_KEY"]

DICOM_META_KEY = "mrsr_dicom_tags"
SLICE_GEOMETRY_KEY = "mrsr_slice_geometry"
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
# patient, study and frame-of-reference tags carried over to a derived series
CARRIED_TAGS = (
    "PatientName", "PatientID", "PatientBirthDate", "PatientSex", "PatientAge", "StudyInstanceUID",
    "StudyDate", "StudyTime", "StudyID", "AccessionNumber", "ReferringPhysicianName", "StudyDescription",
    "FrameOfReferenceUID", "Modality", "SeriesDescription", "SeriesNumber", "BodyPartExamined",
    "MagneticFieldStrength", "RepetitionTime", "EchoTime", "Manufacturer", "SliceThickness",
)  # fmt: skip
SOP_CLASS = {"MR": "1.2.840.10008.5.1.4.1.1.4", "CT": "1.2.840.10008.5.1.4.1.1.2"}


def is_dicom_file(path: str | os.PathLike) -> bool:
    """True if ``path`` is a file that starts like a DICOM file (preamble + 'DICM' or a .dcm name)."""
    path = Path(path)
    if not path.is_file():
        return False
    if path.suffix.lower() == ".dcm":
        return True
    try:
        return pydicom.misc.is_dicom(str(path))
    except OSError:
        return False


def _read_header(path: Path) -> Dataset | None:
    try:
        return pydicom.dcmread(str(path), defer_size="64 KB")
    except (InvalidDicomError, OSError, EOFError, ValueError, KeyError, TypeError):
        return None


def _first(seq_owner: Dataset, *names: str) -> Any:
    """``owner.names[0]...`` or None: reads functional-group sequences without KeyErrors."""
    node: Any = seq_owner
    for name in names:
        if node is None or name not in node:
            return None
        node = node[name].value
        if isinstance(node, pydicom.sequence.Sequence):
            node = node[0] if len(node) else None
    return node


def _frame_attr(ds: Dataset, frame: int, group: str, attr: str) -> Any:
    """An attribute of a multi-frame file, per-frame group first, then shared group, then top level."""
    per = ds.get("PerFrameFunctionalGroupsSequence")
    if per is not None and frame < len(per):
        value = _first(per[frame], group, attr)
        if value is not None:
            return value
    shared = ds.get("SharedFunctionalGroupsSequence")
    if shared is not None and len(shared):
        value = _first(shared[0], group, attr)
        if value is not None:
            return value
    return ds.get(attr)


class _Slice:
    """One 2D image with its geometry (LPS)."""

    def __init__(self, pixels: np.ndarray, position, orientation, spacing, instance: int, thickness) -> None:
        self.pixels = pixels
        self.has_geometry = position is not None and orientation is not None
        self.position = np.asarray(position if position is not None else (0.0, 0.0, 0.0), dtype=float)
        self.orientation = np.asarray(orientation if orientation is not None else (1, 0, 0, 0, 1, 0), dtype=float)
        self.has_spacing = spacing is not None
        self.spacing = np.asarray(spacing if spacing is not None else (1.0, 1.0), dtype=float)  # (row, column)
        self.instance = instance
        self.thickness = float(thickness) if thickness else None

    @property
    def normal(self) -> np.ndarray:
        return np.cross(self.orientation[:3], self.orientation[3:])


def _pixels(ds: Dataset, path: Path) -> np.ndarray:
    if int(ds.get("SamplesPerPixel", 1)) != 1:
        raise MrsrError(f"{path} is a colour DICOM image; mrsr needs greyscale (MR/CT) images.")
    try:
        arr = ds.pixel_array
    except Exception as err:  # pixel handlers raise many types
        raise MrsrError(
            f"Cannot decode the pixel data of {path} ({err}); install a decoder or convert it first."
        ) from None
    return pydicom.pixels.apply_modality_lut(arr, ds).astype(np.float32)


def _slices_of(ds: Dataset, path: Path) -> list[_Slice]:
    pixels = _pixels(ds, path)
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    if frames == 1:
        pixels = pixels.reshape((1,) + pixels.shape[-2:])
        return [
            _Slice(pixels[0], ds.get("ImagePositionPatient"), ds.get("ImageOrientationPatient"), ds.get("PixelSpacing"),
                   int(ds.get("InstanceNumber", 0) or 0), ds.get("SpacingBetweenSlices") or ds.get("SliceThickness"))
        ]  # fmt: skip
    out = []
    for f in range(frames):
        position = _frame_attr(ds, f, "PlanePositionSequence", "ImagePositionPatient")
        orientation = _frame_attr(ds, f, "PlaneOrientationSequence", "ImageOrientationPatient")
        spacing = _frame_attr(ds, f, "PixelMeasuresSequence", "PixelSpacing")
        thickness = _frame_attr(ds, f, "PixelMeasuresSequence", "SpacingBetweenSlices") or _frame_attr(
            ds, f, "PixelMeasuresSequence", "SliceThickness"
        )
        out.append(_Slice(pixels[f], position, orientation, spacing, f, thickness))
    if not out[0].has_geometry:
        # a legacy multi-frame file without plane positions: frames are stacked along the normal
        step = out[0].thickness or 1.0
        for f, s in enumerate(out):
            s.position = out[0].position + f * step * out[0].normal
    return out


def _dicom_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.name.upper() != "DICOMDIR")


def _series_of(path: Path) -> tuple[list[tuple[Dataset, Path]], str]:
    """The image datasets of the one series at ``path`` (file or folder)."""
    if path.is_file():
        ds = _read_header(path)
        if ds is None:
            raise MrsrError(f"{path} is not a readable DICOM file (truncated or another format).")
        if "PixelData" not in ds:
            sop = ds.get("SOPClassUID", "unknown")
            name = getattr(sop, "name", str(sop))
            raise MrsrError(f"{path} is a DICOM file without an image ({name}); give an image file or series folder.")
        return [(ds, path)], str(ds.get("SeriesInstanceUID", ""))
    files = _dicom_files(path)
    headers = [(ds, p) for p in files if (ds := _read_header(p)) is not None]
    if not headers:
        raise MrsrError(f"No DICOM files in {path}; give a folder that holds one DICOM series.")
    images = [(ds, p) for ds, p in headers if "PixelData" in ds]
    if not images:
        raise MrsrError(f"{path} holds {len(headers)} DICOM files but no images; give a folder with an image series.")
    series: dict[str, list[tuple[Dataset, Path]]] = {}
    for ds, p in images:
        series.setdefault(str(ds.get("SeriesInstanceUID", "")), []).append((ds, p))
    if len(series) > 1:
        listing = "; ".join(
            f"{uid or '(no UID)'}: {len(v)} images, {v[0][0].get('SeriesDescription', '')!s}".rstrip(", ")
            for uid, v in series.items()
        )
        raise MrsrError(f"{path} holds {len(series)} DICOM series ({listing}); put one series per folder.")
    ((uid, items),) = series.items()
    return items, uid


def _stack(slices: list[_Slice], source: Path) -> tuple[np.ndarray, np.ndarray, list | None]:
    """Volume (cols, rows, slices), LPS affine and per-slice geometry (only for non-parallel slices)."""
    shapes = {s.pixels.shape for s in slices}
    if len(shapes) > 1:
        raise MrsrError(f"The images in {source} have different sizes {sorted(shapes)}; they are not one volume.")
    first = slices[0]
    parallel = all(np.allclose(s.orientation, first.orientation, atol=1e-4) for s in slices)
    geometry = None
    if parallel:
        slices = sorted(slices, key=lambda s: float(s.position @ first.normal))
        depth = np.array([float(s.position @ first.normal) for s in slices])
        gaps = np.diff(depth)
        if len(slices) > 1 and np.min(gaps) < 1e-3 * max(np.max(gaps), 1e-6):
            raise MrsrError(
                f"Several images in {source} lie at the same position (echoes, phases or repeats?); "
                "give a folder with one image per slice position."
            )
        if len(gaps) and np.max(np.abs(gaps - gaps.mean())) > 0.05 * gaps.mean():
            warnings.warn(
                f"Slice spacing in {source} is not uniform ({gaps.min():.3g}..{gaps.max():.3g} mm); using the mean."
            )
        step = float(gaps.mean()) if len(gaps) else (first.thickness or 1.0)
    else:
        # a radial or localizer set: in-plane processing only, each slice keeps its own plane
        slices = sorted(slices, key=lambda s: s.instance)
        step = first.thickness or 1.0
        geometry = [(s.position.tolist(), s.orientation.tolist()) for s in slices]
    affine = np.eye(4)
    affine[:3, 0] = first.orientation[:3] * first.spacing[1]
    affine[:3, 1] = first.orientation[3:] * first.spacing[0]
    affine[:3, 2] = first.normal * step
    affine[:3, 3] = slices[0].position
    volume = np.stack([s.pixels for s in slices], axis=0).transpose(2, 1, 0)
    return np.ascontiguousarray(volume), affine, geometry


class DicomReader(ImageReader):
    """MONAI ``ImageReader`` for a DICOM series folder, a single file or a multi-frame file.

    The output array is (columns, rows, slices) with an affine to RAS (the NIfTI convention); images
    without PixelSpacing are taken as 1 mm pixels, with a warning. The meta carries the patient/study
    tags (``"mrsr_dicom_tags"``) for a derived series, and, when the slices are not parallel (a radial
    or localizer set), their own positions and orientations (``"mrsr_slice_geometry"``, LPS) so
    in-plane results can be written back plane by plane.

    >>> from monai.transforms import LoadImage
    >>> import pydicom.data
    >>> img = LoadImage(reader=DicomReader(), image_only=True)(pydicom.data.get_testdata_file("MR_small.dcm"))
    >>> tuple(img.shape)
    (64, 64, 1)
    """

    def verify_suffix(self, filename: Sequence[str | os.PathLike] | str | os.PathLike) -> bool:
        names = [filename] if isinstance(filename, (str, os.PathLike)) else list(filename)
        return all(Path(n).is_dir() or is_dicom_file(n) for n in names)

    def read(self, data: Sequence[str | os.PathLike] | str | os.PathLike, **kwargs) -> tuple[list, Path]:
        if not isinstance(data, (str, os.PathLike)):
            if len(data) != 1:
                raise MrsrError("DicomReader reads one series at a time; give one folder or file.")
            data = data[0]
        path = Path(data)
        items, _ = _series_of(path)
        return items, path

    def get_data(self, img: tuple[list, Path]) -> tuple[np.ndarray, dict]:
        items, path = img
        slices = [s for ds, p in items for s in _slices_of(ds, p)]
        volume, affine_lps, geometry = _stack(slices, path)
        if not slices[0].has_geometry:
            warnings.warn(f"{path} has no plane position/orientation; assuming an axial stack at the origin.")
        if not slices[0].has_spacing:  # the affine's in-plane spacing comes from the first slice
            warnings.warn(f"{path} has no PixelSpacing; assuming 1 mm pixels: check the output's geometry "
                          "(or add PixelSpacing to the series).")  # fmt: skip
        affine = LPS_TO_RAS @ affine_lps
        ds0 = items[0][0]
        meta: dict[str, Any] = {
            MetaKeys.AFFINE: affine,
            MetaKeys.ORIGINAL_AFFINE: affine.copy(),
            MetaKeys.SPATIAL_SHAPE: np.asarray(volume.shape),
            MetaKeys.ORIGINAL_CHANNEL_DIM: float("nan"),
            MetaKeys.SPACE: SpaceKeys.RAS,
            "filename_or_obj": str(path),
            DICOM_META_KEY: {t: str(ds0.get(t)) for t in CARRIED_TAGS if ds0.get(t) not in (None, "")},
        }
        if geometry is not None:
            meta[SLICE_GEOMETRY_KEY] = geometry
        return volume, meta


def _unit(v: np.ndarray) -> np.ndarray:
    n = float(np.linalg.norm(v))
    return v / n if n > 0 else v


def write_dicom_series(
    volume: np.ndarray,
    affine: np.ndarray,
    out_dir: str | os.PathLike,
    tags: dict[str, str] | None = None,
    slice_geometry: list | None = None,
    series_description: str = "mrsr super-resolution",
    derivation: str | None = None,
) -> Path:
    """Write a volume as a derived DICOM series, atomically (a temporary folder, then a rename).

    Args:
        volume: (X, Y, Z) or (1, X, Y, Z) array: column, row, slice.
        affine: 4x4 voxel-to-RAS affine of ``volume``.
        out_dir: the series folder to create (must not exist).
        tags: patient/study tags to carry over (``DicomReader``'s ``"mrsr_dicom_tags"``); without
            them a new anonymous patient and study are made.
        slice_geometry: per-slice (position, orientation) in LPS for non-parallel sets; the pixel
            spacing then comes from ``affine``'s first two columns.
        series_description: SeriesDescription of the new series.
        derivation: DerivationDescription of every slice (how it was made), if given.

    Returns:
        The folder written. Every slice has a new SOPInstanceUID, one new SeriesInstanceUID, ImageType
        DERIVED\\SECONDARY, and PixelSpacing, SliceThickness, ImagePositionPatient and
        ImageOrientationPatient from ``affine``. Pixels are uint16 with a global RescaleSlope/Intercept.
    """
    vol = np.asarray(volume, dtype=np.float64)
    if vol.ndim == 4:
        vol = vol[0]
    if vol.ndim != 3:
        raise MrsrError(f"A DICOM series needs a 3D volume, got shape {vol.shape}.")
    out_dir = Path(out_dir)
    tags = dict(tags or {})
    lps = np.diag([-1.0, -1.0, 1.0, 1.0]) @ np.asarray(affine, dtype=float)
    row_dir, col_dir = _unit(lps[:3, 0]), _unit(lps[:3, 1])
    col_spacing, row_spacing = np.linalg.norm(lps[:3, 0]), np.linalg.norm(lps[:3, 1])
    slice_step = float(np.linalg.norm(lps[:3, 2]))
    vmin, vmax = float(vol.min()), float(vol.max())
    slope = (vmax - vmin) / 65535.0 if vmax > vmin else 1.0
    stored = np.clip(np.rint((vol - vmin) / slope), 0, 65535).astype(np.uint16)
    modality = tags.get("Modality", "MR")
    sop_class = SOP_CLASS.get(modality, SOP_CLASS["MR"])
    series_uid = generate_uid()
    study_uid = tags.get("StudyInstanceUID") or generate_uid()
    frame_uid = tags.get("FrameOfReferenceUID") or generate_uid()
    with atomic_path(out_dir, directory=True) as tmp:
        for k in range(vol.shape[2]):
            if slice_geometry is not None:
                position, orientation = (np.asarray(v, dtype=float) for v in slice_geometry[k])
            else:
                position = (lps @ np.array([0.0, 0.0, k, 1.0]))[:3]
                orientation = np.concatenate([row_dir, col_dir])
            ds = Dataset()
            ds.file_meta = FileMetaDataset()
            ds.file_meta.MediaStorageSOPClassUID = sop_class
            ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
            ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
            for name, value in tags.items():
                if name not in ("StudyInstanceUID", "FrameOfReferenceUID", "SeriesDescription", "SeriesNumber"):
                    setattr(ds, name, value)
            ds.PatientName = tags.get("PatientName", "Anonymous")
            ds.PatientID = tags.get("PatientID", "mrsr")
            ds.Modality = modality
            ds.SOPClassUID = sop_class
            ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
            ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study_uid, series_uid, frame_uid
            ds.SeriesNumber = int(float(tags.get("SeriesNumber", 0) or 0)) + 1000
            ds.SeriesDescription = series_description
            if derivation:
                ds.DerivationDescription = derivation[:1024]
            ds.ImageType = ["DERIVED", "SECONDARY"]
            ds.InstanceNumber = k + 1
            ds.ImagePositionPatient = [round(float(v), 6) for v in position]
            ds.ImageOrientationPatient = [round(float(v), 8) for v in orientation]
            ds.PixelSpacing = [round(float(row_spacing), 8), round(float(col_spacing), 8)]
            ds.SliceThickness = round(slice_step, 8)
            ds.SpacingBetweenSlices = round(slice_step, 8)
            ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
            ds.Rows, ds.Columns = vol.shape[1], vol.shape[0]
            ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
            ds.RescaleSlope, ds.RescaleIntercept = f"{slope:.10g}"[:16], f"{vmin:.10g}"[:16]
            ds.PixelData = np.ascontiguousarray(stored[:, :, k].T).tobytes()
            ds.save_as(str(tmp / f"IM{k + 1:05d}.dcm"), enforce_file_format=True)
    return out_dir
