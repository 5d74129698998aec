"""What the tests of mrsr.bundle and of the shipped bundles share: names, paths, helpers and fixtures.

The constants and helpers are imported by the test modules (``from tests.bundle.conftest import ...``),
as tests/conftest.py's are; the fixtures are found by pytest.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import nibabel as nib
import numpy as np
import pytest
from monai.data import MetaTensor

from mrsr.bundle import weights_path
from mrsr.data import load_volume, sample_path, save_volume
from mrsr.transforms import KSpaceTruncate

REPO = Path(__file__).resolve().parents[2]
BUNDLE_NAMES = ("durn", "iconet", "medgan", "msrn", "wasa")
# MONAI's published bundle metadata schema (Apache-2.0), kept here so verify_metadata runs offline
SCHEMA = REPO / "tests" / "data" / "monai_meta_schema_20240725.json"
TRAIN_IMAGE = "pkg:mrsr/data/sample_t1_head.nii.gz"
VAL_IMAGE = "pkg:nibabel/tests/data/anatomical.nii"


def causes(err: BaseException) -> str:
    """The messages of an exception and of everything it was raised from (MONAI wraps config errors)."""
    messages = []
    while err is not None:
        messages.append(str(err))
        err = err.__cause__ or err.__context__
    return " | ".join(messages)


def export_args(root: Path, filepath: Path) -> dict:
    """What monai.bundle's ckpt_export / onnx_export need for a bundle's x2 weights."""
    return {
        "net_id": "network_def",
        "filepath": str(filepath),
        "ckpt_file": str(weights_path(root, 2)),
        "meta_file": str(root / "configs" / "metadata.json"),
        "config_file": str(root / "configs" / "inference.json"),
        "bundle_root": str(root),
    }


def load_script(name: str) -> ModuleType:
    """``bundles/<name>.py`` loaded by its path (bundles/ is no package and is not on sys.path)."""
    spec = importlib.util.spec_from_file_location(f"bundles_{name}", REPO / "bundles" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def lr_sample(tmp_path_factory):
    """The shipped T1 sample degraded x2 in-plane: (LR file, HR volume)."""
    hr = load_volume(sample_path())
    path = tmp_path_factory.mktemp("lr") / "t1_lr.nii.gz"
    save_volume(KSpaceTruncate(2, axes=(0, 1))(hr), path)
    return path, hr


@pytest.fixture
def small_inputs(tmp_path):
    """A folder of two small real volumes (32 x 32 x 3 blocks of the T1 sample): a.nii.gz, b.nii.gz."""
    folder = tmp_path / "in"
    folder.mkdir()
    for name, z in (("a", 25), ("b", 35)):
        block = load_volume(sample_path())[0, 40:72, 40:72, z : z + 3].numpy()
        nib.save(nib.Nifti1Image(block, np.diag([2.0, 2.0, 3.0, 1.0])), folder / f"{name}.nii.gz")
    return folder


@pytest.fixture
def inferences(monkeypatch):
    """The names of the volumes the bundles' VolumeInferer super-resolves, call by call."""
    from mrsr.inference import VolumeInferer

    calls = []
    original = VolumeInferer.__call__

    def counting(self, inputs, network, *args, **kwargs):
        names = inputs.meta.get("filename_or_obj", "?") if isinstance(inputs, MetaTensor) else "?"
        calls.append([Path(n).name for n in (names if isinstance(names, (list, tuple)) else [names])])
        return original(self, inputs, network, *args, **kwargs)

    monkeypatch.setattr(VolumeInferer, "__call__", counting)
    return calls


@pytest.fixture
def tiny_manifest(tmp_path):
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps({"training": [{"image": TRAIN_IMAGE}], "validation": [{"image": VAL_IMAGE}]}))
    return str(path)
