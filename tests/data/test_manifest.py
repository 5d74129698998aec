"""Manifests: pkg:/relative/absolute paths, errors, sections, atomic writes, and no torch at import."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mrsr.data import sample_path
from mrsr.data.manifest import (
    PIP_NAMES,
    _split_counts,
    load_manifest,
    resolve_datalist,
    resolve_path,
    write_manifest,
)
from mrsr.errors import MrsrError

NILEARN_MNI = "pkg:nilearn/datasets/data/mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz"


def write_json(path: Path, doc) -> Path:
    path.write_text(json.dumps(doc) if not isinstance(doc, str) else doc)
    return path


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def test_pkg_paths_resolve_without_importing_the_package(monkeypatch):
    monkeypatch.delitem(sys.modules, "nilearn", raising=False)
    path = resolve_path(NILEARN_MNI, None)
    assert Path(path).is_file() and "nilearn" not in sys.modules
    assert Path(resolve_path("pkg:mrsr/data/sample_t1_head.nii.gz", None)) == sample_path().resolve()


def test_missing_packages_are_named_together(tmp_path):
    man = write_json(
        tmp_path / "m.json",
        {"training": [{"image": "pkg:no_such_pkg_a/x.nii"}, {"image": "pkg:no_such_pkg_b/y.nii"}]},
    )
    with pytest.raises(MrsrError, match=r"not installed: no_such_pkg_a, no_such_pkg_b; pip install"):
        load_manifest(man)
    with pytest.raises(MrsrError, match="pkg:PACKAGE"):
        resolve_path("pkg:nilearn", None)


def test_missing_package_names_its_pip_name(tmp_path, monkeypatch):
    assert PIP_NAMES["data_store"] == "pydicom-data"  # pydicom-data installs the data_store folder
    monkeypatch.setitem(PIP_NAMES, "no_such_pkg_c", "no-such-dist")
    man = write_json(tmp_path / "m.json", {"test": [{"image": "pkg:no_such_pkg_c/x.dcm"}]})
    with pytest.raises(MrsrError, match=r"not installed: no-such-dist; pip install no-such-dist\.$"):
        load_manifest(man)
    # unchecked (which sections are there?), the path is kept: training need not install the test set's packages
    assert load_manifest(man, check=False)["test"][0]["image"] == "pkg:no_such_pkg_c/x.dcm"


def test_relative_paths_need_a_data_root(tmp_path):
    touch(tmp_path / "data" / "a.nii.gz")
    man = write_json(tmp_path / "m.json", {"training": [{"image": "a.nii.gz", "subject": "s1"}], "test": []})
    with pytest.raises(MrsrError, match=r"m\.json: training\[0\] image: 'a\.nii\.gz' is relative; pass --data-root"):
        load_manifest(man)
    lists = load_manifest(man, data_root=tmp_path / "data")
    assert lists == {"training": [{"image": str(tmp_path / "data" / "a.nii.gz"), "subject": "s1"}], "test": []}
    assert resolve_path("/abs/b.nii", None) == "/abs/b.nii"


def test_labels_and_lists_of_paths_resolve(tmp_path):
    for name in ("a.nii", "b.nii", "a_gt.nii"):
        touch(tmp_path / name)
    datalist = {"training": [{"image": ["a.nii", "b.nii"], "label": "a_gt.nii", "phase": "ED"}]}
    entry = resolve_datalist(datalist, tmp_path)["training"][0]
    assert entry == {"image": [str(tmp_path / "a.nii"), str(tmp_path / "b.nii")], "label": str(tmp_path / "a_gt.nii"),
                     "phase": "ED"}  # fmt: skip
    assert datalist["training"][0]["label"] == "a_gt.nii"  # the input is not changed


def test_all_missing_files_in_one_error(tmp_path):
    (tmp_path / "data").mkdir()
    touch(tmp_path / "data" / "here.nii")
    doc = {
        "training": [{"image": f"gone{i:02d}.nii"} for i in range(12)] + [{"image": "here.nii"}],
        "test": [{"image": "here.nii", "label": "gone_gt.nii"}, {"image": "gone_test.nii"}],
    }
    man = write_json(tmp_path / "m.json", doc)
    with pytest.raises(MrsrError) as err:
        load_manifest(man, tmp_path / "data")
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(f"14 file(s) named in {man} do not exist")
    assert "gone00.nii" in msg and "gone09.nii" in msg and "gone10.nii" not in msg and "and 4 more" in msg
    assert "--data-root" in msg
    assert len(load_manifest(man, tmp_path / "data", check=False)["training"]) == 13
    with pytest.raises(MrsrError, match="is not a folder"):
        load_manifest(man, tmp_path / "nowhere")


@pytest.mark.parametrize(
    "doc, sections, match",
    [
        ("{not json", None, r"is not valid JSON: .*line 1"),
        ([1, 2], None, "is not a MONAI datalist"),
        ({"numTraining": 3}, None, "has none of the sections"),
        ({"training": []}, ("training", "validation"), r"has no 'validation' section \(it has: training\)"),
        ({"training": {"image": "a"}}, None, "'training' section is not a list"),
        ({"training": [{"label": "a.nii"}]}, None, r'training\[0\] is not an entry with an "image" path'),
        ({"training": ["a.nii"]}, None, r"training\[0\] is not an entry"),
        ({"training": [{"image": ""}]}, None, "non-empty path"),
    ],
)
def test_malformed_manifests_name_the_file(tmp_path, doc, sections, match):
    man = write_json(tmp_path / "bad.json", doc)
    with pytest.raises(MrsrError, match=match) as err:
        load_manifest(man, tmp_path, sections=sections)
    assert str(man) in str(err.value) and "\n" not in str(err.value)


def test_missing_manifest(tmp_path):
    with pytest.raises(MrsrError, match="No such manifest"):
        load_manifest(tmp_path / "none.json")


def test_sections_by_name(tmp_path):
    touch(tmp_path / "a.nii")
    man = write_json(tmp_path / "m.json", {"training": [{"image": "a.nii"}], "test": [{"image": "a.nii"}], "x": 1})
    assert list(load_manifest(man, tmp_path)) == ["training", "test"]
    assert list(load_manifest(man, tmp_path, sections="test")) == ["test"]


def test_split_counts_name_every_section():
    datalist = {"description": "d", "training": [{}, {}], "test": [{}], "validation_extra": [{}], "x": 1}
    assert _split_counts(datalist) == "training 2, validation 0, test 1, validation_extra 1"


def test_write_manifest_is_atomic_and_never_overwrites_by_default(tmp_path):
    out = tmp_path / "sub" / "m.json"
    datalist = {"description": "d", "training": [{"image": "/x.nii"}], "validation": [], "test": []}
    write_manifest(out, datalist)
    assert json.loads(out.read_text()) == datalist and sorted(p.name for p in out.parent.iterdir()) == ["m.json"]
    with pytest.raises(MrsrError, match="--overwrite"):
        write_manifest(out, {"training": []})
    write_manifest(out, {"training": []}, overwrite=True)
    assert json.loads(out.read_text()) == {"training": []}
    with pytest.raises(MrsrError, match="image"):
        write_manifest(tmp_path / "bad.json", {"training": [{"name": "no image"}]})
    assert not (tmp_path / "bad.json").exists()


LIGHT_MODULES = ["mrsr.data.manifest", "mrsr.data.datasets"] + [
    f"mrsr.data.datasets.{name}" for name in ("ixi", "fastmri", "acdc", "real_data")
]


@pytest.mark.parametrize("module", LIGHT_MODULES)
def test_manifest_modules_do_not_import_torch(module):
    """The manifest scripts start at once: mrsr.data loads its torch/MONAI parts only when used."""
    code = f"import sys, {module}; print('torch' in sys.modules, 'monai' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert done.stdout.split() == ["False", "False"], done.stderr
