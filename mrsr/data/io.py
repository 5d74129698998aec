"""Load a volume from NIfTI or DICOM, save one to NIfTI or a DICOM series, atomically.

Both go through MONAI: ``LoadImage`` with ``NibabelReader`` or :class:`~mrsr.data.dicom.DicomReader`,
and ``NibabelWriter``. Every failure a user can cause becomes an :class:`~mrsr.errors.MrsrError`
with a one-line message.
"""

from __future__ import annotations

import gzip
import logging
import os
import shutil
import uuid
import warnings
import zlib
from pathlib import Path

import numpy as np
import torch
from monai.data import MetaTensor, NibabelReader, NibabelWriter
from monai.config import KeysCollection
from monai.transforms import LoadImage, MapTransform, Orientation

from mrsr.errors import MrsrError

from .dicom import DICOM_META_KEY, SLICE_GEOMETRY_KEY, DicomReader, is_dicom_file, write_dicom_series

# MONAI warns on every LoadImage that its optional GPU DICOM decoder (nvImageCodec) is missing: noise for us
logging.getLogger("monai.data.nvimgcodec_pydicom_plugin").setLevel(logging.ERROR)

__all__ = ["load_volume", "LoadVolumed", "save_volume", "is_nifti_path", "check_output_path", "replace_path"]

NIFTI_SUFFIXES = (".nii", ".nii.gz")


def is_nifti_path(path: str | os.PathLike) -> bool:
    """True for a ``.nii`` or ``.nii.gz`` file name."""
    return str(path).lower().endswith(NIFTI_SUFFIXES)


def _reader_for(path: Path):
    if path.is_dir() or is_dicom_file(path):
        return DicomReader()
    if is_nifti_path(path):
        return NibabelReader()
    raise MrsrError(f"{path}: unsupported format; give a .nii/.nii.gz file, a DICOM file or a DICOM series folder.")


def load_volume(path: str | os.PathLike, orientation: str | None = None) -> MetaTensor:
    """Load a NIfTI file, DICOM file or DICOM series folder as a (1, X, Y, Z) float32 MetaTensor.

    A 2D image becomes a one-slice volume (1, X, Y, 1); the affine (voxel to RAS, mm) and spacing
    stay in the meta.

    Args:
        path: the file or folder.
        orientation: optional axis codes (e.g. ``"RAS"``) to reorient to; ``None`` keeps the stored order.

    Raises:
        MrsrError: missing, unreadable or truncated input, several DICOM series, a DICOM file with no
            image, more than one volume (4D), or NaN/Inf voxels.
    """
    path = Path(path)
    if not path.exists():
        raise MrsrError(f"No such file or folder: {path}")
    reader = _reader_for(path)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*nvImageCodec.*")
            # the reader is given per call so LoadImage does not fall back to other readers on bad input
            img = LoadImage(image_only=True, ensure_channel_first=True, dtype=np.float32)(str(path), reader=reader)
    except MrsrError:
        raise
    except Exception as err:  # nibabel/zlib/gzip/OS errors for damaged files come in many types
        cause = err.__cause__ or err
        if isinstance(cause, MrsrError):
            raise cause from None
        kind = "truncated or damaged" if isinstance(cause, (EOFError, zlib.error, gzip.BadGzipFile)) else "unreadable"
        raise MrsrError(f"Cannot read {path}: the file is {kind} ({type(cause).__name__}: {cause}).") from None
    img = _as_volume(img, path)
    if orientation:
        img = Orientation(axcodes=orientation)(img)
    return img


class LoadVolumed(MapTransform):
    """Dictionary transform: replace each path under ``keys`` by its volume, as :func:`load_volume`.

    For MONAI pipelines and datalists (``{"image": path}``), e.g. in front of a ``CacheDataset``.

    Args:
        keys: keys holding file or DICOM folder paths.
        orientation: optional axis codes to reorient to (see :func:`load_volume`).
        allow_missing_keys: don't raise for keys missing from the data.

    >>> from mrsr.data import sample_path
    >>> LoadVolumed("image")({"image": sample_path()})["image"].shape
    torch.Size([1, 128, 128, 62])
    """

    def __init__(self, keys: KeysCollection, orientation: str | None = None, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.orientation = orientation

    def __call__(self, data: dict) -> dict:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = load_volume(d[key], self.orientation)
        return d


def _as_volume(img: MetaTensor, path: Path) -> MetaTensor:
    if img.ndim == 3:  # (1, X, Y): a 2D image is a one-slice volume
        img = img.unsqueeze(-1)
    if img.ndim != 4 or img.shape[0] != 1:
        shape = tuple(img.shape[1:]) if img.shape[0] == 1 else tuple(img.shape)
        raise MrsrError(
            f"{path} holds an image of shape {shape}; mrsr needs one 3D volume (extract a single volume first)."
        )
    if torch.is_complex(img):
        raise MrsrError(f"{path} holds complex values; give a magnitude image.")
    bad = int((~torch.isfinite(img)).sum())
    if bad:
        raise MrsrError(f"{path} has {bad} NaN/Inf voxels; replace them (e.g. with 0) before super-resolving.")
    return img.float()


def check_output_path(out: str | os.PathLike, overwrite: bool = False, inputs: tuple = (), volume: bool = True) -> Path:
    """Validate an output path before any work is done.

    Args:
        out: the output path.
        overwrite: whether an existing output may be replaced.
        inputs: paths the output must not replace.
        volume: the output is a volume (a NIfTI file name or a DICOM folder name).

    Raises:
        MrsrError: the output is an input, exists without ``overwrite``, has an unknown format, or
            its folder cannot be created or written.
    """
    out = Path(out)
    for inp in inputs:
        inp = Path(inp)
        if out.resolve() == inp.resolve() or (inp.is_file() and inp.resolve().parent == out.resolve()):
            raise MrsrError(f"The output {out} would overwrite the input {inp}; choose another output path.")
    if out.exists() and not overwrite:
        raise MrsrError(f"{out} exists; pass --overwrite to replace it or choose another output path.")
    if volume and out.exists() and out.is_dir() != (not is_nifti_path(out)):
        raise MrsrError(f"{out} exists and is a {'folder' if out.is_dir() else 'file'}; choose another output path.")
    if volume and not is_nifti_path(out) and out.suffix and out.suffix.lower() not in (".dcm",):
        raise MrsrError(f"{out}: unknown output format; use a .nii/.nii.gz file name or a folder name for DICOM.")
    parent = out.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise MrsrError(f"Cannot create the output folder {parent}: {err.strerror or err}.") from None
    if not os.access(parent, os.W_OK):
        raise MrsrError(f"The output folder {parent} is not writable; choose another output path.")
    return out


def save_volume(img: torch.Tensor, out: str | os.PathLike, overwrite: bool = False) -> Path:
    """Save a (1, X, Y, Z) MetaTensor as NIfTI (``.nii``/``.nii.gz``) or as a DICOM series (a folder).

    Writing is atomic: a temporary file or folder next to ``out`` is renamed into place, so an
    interrupted run leaves nothing half-written and an existing output survives a failure.

    Args:
        img: the volume; a MetaTensor's affine (and DICOM tags, if it came from DICOM) are used.
        out: output file (NIfTI) or folder (DICOM series).
        overwrite: replace an existing output.
    """
    out = check_output_path(out, overwrite)
    meta = img.meta if isinstance(img, MetaTensor) else {}
    affine = np.asarray(img.affine if isinstance(img, MetaTensor) else np.eye(4), dtype=float)
    data = img.detach().cpu().numpy() if isinstance(img, torch.Tensor) else np.asarray(img)
    tmp = out.with_name(f".{out.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        if is_nifti_path(out):
            if meta.get(SLICE_GEOMETRY_KEY) is not None:
                raise MrsrError("This series' slices are not parallel (a radial or localizer set) and have no "
                                "single affine; write a DICOM folder instead of NIfTI.")  # fmt: skip
            tmp = tmp.with_name(tmp.name + (".nii.gz" if out.name.lower().endswith(".gz") else ".nii"))
            writer = NibabelWriter(output_dtype=np.float32)
            writer.set_data_array(data, channel_dim=0)
            writer.affine = affine  # the data is already on this grid: no resampling (set_metadata would try)
            writer.write(str(tmp), verbose=False)
        else:
            tmp = write_dicom_series(data, affine, tmp, meta.get(DICOM_META_KEY), meta.get(SLICE_GEOMETRY_KEY))
        replace_path(tmp, out)
    except OSError as err:
        raise MrsrError(f"Cannot write {out}: {err.strerror or err}.") from None
    finally:
        if tmp.exists():
            shutil.rmtree(tmp) if tmp.is_dir() else tmp.unlink()
    return out


def replace_path(tmp: Path, out: Path) -> None:
    """Move ``tmp`` onto ``out``; an existing folder is set aside first and removed only on success."""
    if out.is_dir():
        old = out.with_name(f".{out.name}.{uuid.uuid4().hex[:8]}.old")
        os.rename(out, old)
        try:
            os.rename(tmp, out)
        except OSError:
            os.rename(old, out)
            raise
        shutil.rmtree(old)
    else:
        os.replace(tmp, out)
