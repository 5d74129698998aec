"""Reading, writing and the bundled sample."""

from __future__ import annotations

from pathlib import Path

from .io import LoadVolumed, load_volume, save_volume
from .dicom import DicomReader, write_dicom_series

__all__ = ["sample_path", "load_volume", "LoadVolumed", "save_volume", "DicomReader", "write_dicom_series"]


def sample_path() -> Path:
    """Path of the bundled real T1 head MRI (128x128x62, 2x2x3 mm, uint8; Apache-2.0, see NOTICE).

    >>> sample_path().name
    'sample_t1_head.nii.gz'
    """
    return Path(__file__).with_name("sample_t1_head.nii.gz")
