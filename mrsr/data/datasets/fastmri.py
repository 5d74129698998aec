"""fastMRI knee, single-coil: the reconstructions converted to NIfTI, and their manifest.

fastMRI (https://fastmri.med.nyu.edu/) is distributed under its data use agreement; mrsr ships none
of it and downloads nothing. :func:`convert_fastmri_h5` writes one HDF5 file's
``reconstruction_esc`` images as a NIfTI volume (voxel size from :func:`fastmri_spacing`);
:func:`fastmri_knee_datalist` converts the user's ``singlecoil_train``/``singlecoil_val`` copy and
splits it (official train: training; official val: validation and test, half each), for
``data_manifests/fastmri_knee.py``. Reading HDF5 needs h5py.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from mrsr.data.datasets._common import _existing_dir
from mrsr.data.manifest import Datalist
from mrsr.errors import MrsrError
from mrsr.paths import atomic_path

__all__ = [
    "FASTMRI_DEFAULT_SPACING",
    "FASTMRI_SPLITS",
    "convert_fastmri_h5",
    "fastmri_knee_datalist",
    "fastmri_spacing",
]

FASTMRI_DEFAULT_SPACING = (0.5, 0.5, 3.0)  # mm; used when a file's ISMRMRD header gives no reconSpace geometry
FASTMRI_SPLITS = ("singlecoil_train", "singlecoil_val")


def fastmri_knee_datalist(
    fastmri_root: str | os.PathLike, out_dir: str | os.PathLike, progress: bool = False
) -> Datalist:
    """fastMRI knee single-coil: convert the reconstructions to NIfTI and split them.

    Each ``singlecoil_train/*.h5`` and ``singlecoil_val/*.h5`` under ``fastmri_root`` becomes
    ``out_dir/<same folder>/<name>.nii.gz`` (see :func:`convert_fastmri_h5`; files already converted
    are kept). Split: the official train files are training; the official val files, sorted by name,
    are validation (first half) and test (second half), since the official test files carry no
    reconstructions. Paths are relative to ``out_dir``.

    Args:
        fastmri_root: the folder holding ``singlecoil_train/`` and ``singlecoil_val/``.
        out_dir: the folder for the NIfTI volumes (the data root of the manifest).
        progress: show a progress bar.
    """
    root = _existing_dir(fastmri_root, "fastMRI root")
    sources = {}
    for split in FASTMRI_SPLITS:
        sources[split] = sorted((root / split).glob("*.h5"))
        if not sources[split]:
            raise MrsrError(
                f"No {split}/*.h5 files under {root}; give the folder holding {' and '.join(FASTMRI_SPLITS)}."
            )
    out_dir = Path(out_dir).expanduser()
    lists = {}
    from tqdm import tqdm

    for split, files in sources.items():
        lists[split] = []
        for h5 in tqdm(files, desc=f"fastMRI {split}", disable=not progress):
            out = out_dir / split / f"{h5.stem}.nii.gz"
            attrs = convert_fastmri_h5(h5, out) if not out.exists() else _fastmri_attrs(h5)
            lists[split].append({"image": out.relative_to(out_dir).as_posix(), "name": h5.stem, **attrs})
    val = lists["singlecoil_val"]
    half = len(val) // 2
    description = (
        f"fastMRI knee single-coil reconstruction_esc as NIfTI: official train ({len(lists['singlecoil_train'])}) "
        f"training; official val sorted by name, first {half} validation, last {len(val) - half} test. "
        "Paths relative to the converted folder."
    )
    return {
        "description": description,
        "training": lists["singlecoil_train"],
        "validation": val[:half],
        "test": val[half:],
    }


def _h5py():
    try:
        import h5py
    except ImportError:
        raise MrsrError("Reading fastMRI .h5 files needs h5py: pip install h5py (dipy brings it too).") from None
    return h5py


def _fastmri_attrs(h5: Path) -> dict:
    """The entry keys kept from a file's attributes: the acquisition (CORPD_FBK, CORPDFS_FBK)."""
    try:
        with _h5py().File(h5, "r") as f:
            value = f.attrs.get("acquisition")
    except OSError as err:
        raise MrsrError(f"Cannot read {h5}: not an HDF5 file or damaged ({err}).") from None
    if isinstance(value, bytes):
        value = value.decode()
    return {"acquisition": str(value)} if value is not None else {}


def convert_fastmri_h5(h5: str | os.PathLike, out: str | os.PathLike) -> dict:
    """Write one fastMRI file's ``reconstruction_esc`` magnitudes (slices, rows, cols) as a NIfTI volume.

    The volume is (X, Y, Z) = (column, row flipped so viewers show it upright, slice). The spacing is
    the header's reconSpace ``fieldOfView_mm / matrixSize`` (z: the slice thickness), else
    :data:`FASTMRI_DEFAULT_SPACING`. fastMRI single-coil files carry no patient orientation: the affine
    is diagonal. The write is atomic.

    Returns:
        the entry keys kept from the file's attributes (``acquisition``).
    """
    h5, out = Path(h5), Path(out)
    try:
        with _h5py().File(h5, "r") as f:
            if "reconstruction_esc" not in f:
                raise MrsrError(f"{h5} has no 'reconstruction_esc' images; give single-coil train/val files.")
            images = np.abs(np.asarray(f["reconstruction_esc"][()], dtype=np.float32))
            header = f["ismrmrd_header"][()] if "ismrmrd_header" in f else None
    except OSError as err:
        raise MrsrError(f"Cannot read {h5}: not an HDF5 file or damaged ({err}).") from None
    if images.ndim != 3:
        raise MrsrError(f"{h5}: reconstruction_esc has shape {images.shape}; expected (slices, rows, cols).")
    volume = np.ascontiguousarray(images[:, ::-1, :].transpose(2, 1, 0))
    _save_nifti(volume, np.diag([*fastmri_spacing(header), 1.0]), out)
    return _fastmri_attrs(h5)


def fastmri_spacing(header: bytes | str | None) -> tuple[float, float, float]:
    """Voxel size in mm from an ISMRMRD XML header's reconSpace, else :data:`FASTMRI_DEFAULT_SPACING`.

    >>> xml = ("<ismrmrdHeader><encoding><reconSpace><matrixSize><x>320</x><y>320</y><z>1</z></matrixSize>"
    ...        "<fieldOfView_mm><x>140</x><y>140</y><z>3</z></fieldOfView_mm></reconSpace></encoding></ismrmrdHeader>")
    >>> fastmri_spacing(xml)
    (0.4375, 0.4375, 3.0)
    """
    try:
        space = ET.fromstring(header).find("{*}encoding/{*}reconSpace")  # type: ignore[arg-type]
        fov = [float(space.find(f"{{*}}fieldOfView_mm/{{*}}{a}").text) for a in "xyz"]  # type: ignore[union-attr]
        size = [float(space.find(f"{{*}}matrixSize/{{*}}{a}").text) for a in "xyz"]  # type: ignore[union-attr]
        spacing = tuple(f / s for f, s in zip(fov, size))
    except (ET.ParseError, AttributeError, TypeError, ValueError, ZeroDivisionError):
        return FASTMRI_DEFAULT_SPACING
    valid = all(np.isfinite(spacing)) and min(spacing) > 0
    return spacing if valid else FASTMRI_DEFAULT_SPACING  # type: ignore[return-value]


def _save_nifti(volume: np.ndarray, affine: np.ndarray, out: Path) -> None:
    import nibabel as nib

    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out, suffix=".nii.gz") as tmp:
        nib.save(nib.Nifti1Image(volume, affine), tmp)
