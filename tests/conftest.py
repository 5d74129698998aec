"""Real data shared by the tests (data_manifests/README.md): all of it ships with the packages; nothing downloads."""

from __future__ import annotations

import os
from pathlib import Path

import pydicom.data
import pytest
import torch

from mrsr.data import load_volume, sample_path

PYDICOM_FILES = Path(os.path.dirname(pydicom.data.__file__)) / "test_files"
CT5N = PYDICOM_FILES / "dicomdirtests" / "98892001" / "CT5N"
MR700 = PYDICOM_FILES / "dicomdirtests" / "98892003" / "MR700"
MR_SMALL = PYDICOM_FILES / "MR_small.dcm"


def pydicom_testdata(name: str) -> Path:
    """A file of pydicom-data (installed with the test extra), found offline."""
    return Path(pydicom.data.get_testdata_file(name, download=False))


@pytest.fixture(scope="session")
def t1_volume():
    """The bundled real T1 head MRI as a (1, 128, 128, 62) MetaTensor (2 x 2 x 3 mm)."""
    return load_volume(sample_path())


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)
