"""The real-data manifest: the committed file is what the script writes, its split, every volume loads."""

from __future__ import annotations

import json
import os
import warnings

import numpy as np
import pytest
import torch

from mrsr.data import LoadVolumed, load_volume, sample_path
from mrsr.data.datasets.real_data import REAL_DATA_MANIFEST, real_data_datalist
from mrsr.data.manifest import load_manifest
from mrsr.errors import MrsrError
from tests.data.datasets.conftest import script, script_help

REAL_SHAPES = {  # (X, Y, Z), spacing in mm as loaded
    "mni152_t1": ((197, 233, 189), (1, 1, 1)),
    "dipy_s0_10slices": ((128, 128, 10), None),  # sheared affine: its through-plane spacing means nothing
    "dipy_aniso_vox": ((58, 58, 24), (4, 4, 5)),
    "itk_t1_head": ((128, 128, 62), (2, 2, 3)),
    "nibabel_anatomical": ((33, 41, 25), (2, 2, 2)),
    "nibabel_tof_neck_mip": ((384, 384, 1), (0.520833, 0.520833, 1)),  # no slice thickness in a MIP: 1 mm nominal
    "pydicom_data_mr2_shoulder": ((1024, 1024, 1), (0.195313, 0.195313, 6.6)),
    "pydicom_data_siemens_abdomen": ((484, 484, 1), (0.72314, 0.72314, 4)),
    "pydicom_data_emri_head": ((64, 64, 10), (1, 1, 1.2)),
    "pydicom_mr_small": ((64, 64, 1), (0.3125, 0.3125, 0.8)),
    "dipy_t1_coronal_slice": ((256, 256, 1), (1, 1, 1)),
    "matplotlib_s1045_head": ((256, 256, 1), (1, 1, 1)),
}
TEST_SECTION = [
    "pydicom_data_mr2_shoulder",
    "pydicom_data_siemens_abdomen",
    "pydicom_data_emri_head",
    "pydicom_mr_small",
    "dipy_t1_coronal_slice",
    "matplotlib_s1045_head",
]


def test_committed_real_data_manifest_is_what_the_script_writes():
    assert json.loads(REAL_DATA_MANIFEST.read_text()) == real_data_datalist()


@pytest.fixture(scope="module")
def real_lists():
    return load_manifest(REAL_DATA_MANIFEST, sections=("training", "validation", "validation_extra", "test"))


def test_real_data_split(real_lists):
    names = {k: [e["name"] for e in v] for k, v in real_lists.items()}
    assert names == {
        "training": ["mni152_t1", "dipy_s0_10slices"],
        "validation": ["dipy_aniso_vox", "itk_t1_head", "nibabel_anatomical"],  # the former test set chose recipes
        "validation_extra": ["nibabel_tof_neck_mip"],  # the detail share's choice only: training does not read it
        "test": TEST_SECTION,
    }
    assert "validation_extra" not in load_manifest(REAL_DATA_MANIFEST)  # what training and the trainer's checks read
    assert real_lists["validation"][1]["image"] == str(sample_path().resolve())
    keys = ("source", "licence", "anatomy", "contrast")
    assert all(isinstance(e.get(k), str) and e[k] for v in real_lists.values() for e in v for k in keys)


def test_real_data_test_section_is_held_out_and_varied(real_lists):
    test = real_lists["test"]
    assert len(test) >= 6
    everything = [e for v in real_lists.values() for e in v]
    assert len({e["name"] for e in everything}) == len(everything)  # names unique over all sections
    files = {k: {os.path.realpath(e["image"]) for e in v} for k, v in real_lists.items()}
    assert sum(len(f) for f in files.values()) == len(everything)  # no image twice, in one section or two
    assert not files["test"] & (files["training"] | files["validation"] | files["validation_extra"])
    raw = json.loads(REAL_DATA_MANIFEST.read_text())
    packages = {e["image"][len("pkg:") :].split("/")[0] for e in raw["test"]}
    assert all(e["image"].startswith("pkg:") for e in raw["test"]) and len(packages) >= 3
    assert packages == {"data_store", "pydicom", "dipy", "matplotlib"}
    assert len({e["anatomy"] for e in test}) >= 4 and len({e["contrast"] for e in test}) >= 4


@pytest.mark.parametrize("name", sorted(REAL_SHAPES))
def test_every_real_volume_loads_as_one_3d_volume(real_lists, name):
    """As the training and evaluation code loads them: LoadVolumed on the whole entry (layouts included)."""
    entry = next(e for v in real_lists.values() for e in v if e["name"] == name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # emri_small has no plane position: the reader says so
        img = LoadVolumed("image")(entry)["image"]
    shape, spacing = REAL_SHAPES[name]
    assert img.shape == (1, *shape) and img.dtype == torch.float32
    affine = img.affine.numpy()
    assert np.isfinite(affine).all() and abs(np.linalg.det(affine[:3, :3])) > 1e-3
    if spacing is not None:
        np.testing.assert_allclose(np.linalg.norm(affine[:3, :3], axis=0), spacing, rtol=1e-4)
    assert float(img.std()) > 0 and float(img.max()) > float(np.percentile(img.numpy(), 50))  # an image, not noise-free


def test_headerless_test_entry_needs_its_layout(real_lists):
    entry = next(e for e in real_lists["test"] if e["name"] == "matplotlib_s1045_head")
    assert entry["image_layout"] == {"shape": [256, 256], "dtype": ">u2"}
    with pytest.raises(MrsrError, match="headerless raw file with its layout"):
        load_volume(entry["image"])  # code that passes the path alone must pass the layout too


def test_script_help_states_the_split(capsys):
    assert "held out" in script_help("real_data", capsys)


def test_real_data_script_writes_the_committed_manifest(tmp_path):
    out = tmp_path / "real.json"
    assert script("real_data").main(["--out", str(out)]) == 0
    assert out.read_text() == REAL_DATA_MANIFEST.read_text()
