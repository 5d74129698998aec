"""Checks on input and output paths, light enough to run before torch and MONAI load.

The command line calls them first, so a wrong path is reported in a fraction of a second; the
Python API (:func:`mrsr.data.save_volume`) calls them again before writing.
"""

from __future__ import annotations

import os
from pathlib import Path

from mrsr.errors import MrsrError

__all__ = ["NIFTI_SUFFIXES", "is_nifti_path", "check_input_path", "check_output_path"]

NIFTI_SUFFIXES = (".nii", ".nii.gz")
# how the Python API and the command line say "replace it"
API_OVERWRITE = "pass overwrite=True"
CLI_OVERWRITE = "pass --overwrite"


def is_nifti_path(path: str | os.PathLike) -> bool:
    """True for a ``.nii`` or ``.nii.gz`` file name."""
    return str(path).lower().endswith(NIFTI_SUFFIXES)


def check_input_path(path: str | os.PathLike) -> Path:
    """``path`` as a Path if it exists.

    Raises:
        MrsrError: no such file or folder.
    """
    path = Path(path)
    if not path.exists():
        raise MrsrError(f"No such file or folder: {path}")
    return path


def check_output_path(
    out: str | os.PathLike,
    overwrite: bool = False,
    inputs: tuple = (),
    volume: bool = True,
    overwrite_hint: str = API_OVERWRITE,
) -> Path:
    """Validate an output path before any work is done.

    Args:
        out: the output path.
        overwrite: whether an existing output may be replaced.
        inputs: paths the output must not replace.
        volume: the output is a volume (a NIfTI file name or a DICOM folder name).
        overwrite_hint: how the caller asks to replace an output (``"pass --overwrite"`` on the
            command line), said when ``out`` exists.

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
        raise MrsrError(f"{out} exists; {overwrite_hint} to replace it or choose another output path.")
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
