"""Manifests: the real-data manifest loads, pkg:/relative/absolute paths, errors, and each data set's split."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import warnings
from pathlib import Path

import h5py
import nibabel as nib
import numpy as np
import pytest
import torch

from mrsr.data import LoadVolumed, load_volume, sample_path
from mrsr.data.manifest import (
    FASTMRI_DEFAULT_SPACING,
    PIP_NAMES,
    REAL_DATA_MANIFEST,
    acdc_datalist,
    convert_fastmri_h5,
    fastmri_knee_datalist,
    fastmri_spacing,
    ixi_datalist,
    load_manifest,
    real_data_datalist,
    resolve_datalist,
    resolve_path,
    write_manifest,
)
from mrsr.errors import MrsrError

SCRIPTS = Path(__file__).resolve().parents[2] / "data_manifests"
NILEARN_MNI = "pkg:nilearn/datasets/data/mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz"
REAL_SHAPES = {  # (X, Y, Z), spacing in mm as loaded
    "mni152_t1": ((197, 233, 189), (1, 1, 1)),
    "dipy_s0_10slices": ((128, 128, 10), None),  # sheared affine: its through-plane spacing means nothing
    "dipy_aniso_vox": ((58, 58, 24), (4, 4, 5)),
    "itk_t1_head": ((128, 128, 62), (2, 2, 3)),
    "nibabel_anatomical": ((33, 41, 25), (2, 2, 2)),
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


def script(name: str):
    """A data_manifests/ script as a module (they are not a package)."""
    spec = importlib.util.spec_from_file_location(f"manifest_script_{name}", SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_json(path: Path, doc) -> Path:
    path.write_text(json.dumps(doc) if not isinstance(doc, str) else doc)
    return path


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


# ------------------------------------------------------------------------------------------- real data


def test_committed_real_data_manifest_is_what_the_script_writes():
    assert json.loads(REAL_DATA_MANIFEST.read_text()) == real_data_datalist()


@pytest.fixture(scope="module")
def real_lists():
    return load_manifest(REAL_DATA_MANIFEST)


def test_real_data_split(real_lists):
    names = {k: [e["name"] for e in v] for k, v in real_lists.items()}
    assert names == {
        "training": ["mni152_t1", "dipy_s0_10slices"],
        "validation": ["dipy_aniso_vox", "itk_t1_head", "nibabel_anatomical"],  # the former test set chose recipes
        "test": TEST_SECTION,
    }
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
    assert not files["test"] & (files["training"] | files["validation"])
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


# ------------------------------------------------------------------------------------------- paths


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


# ------------------------------------------------------------------------------------------- IXI


def ixi_tree(root: Path, n: int = 185) -> list[int]:
    ids = list(np.random.default_rng(0).choice(np.arange(2, 700), n, replace=False))
    for i, s in enumerate(ids):
        for contrast in ("T1", "T2", "PD"):
            touch(root / f"IXI-{contrast}" / f"IXI{s:03d}-HH-{1000 + i}-{contrast}.nii.gz")
        touch(root / "IXI-T1" / f"IXI{s + 700:03d}-Guys-{i}-T1.nii.gz")  # other hospitals are not in the protocol
    return sorted(int(s) for s in ids)


def test_ixi_hh_split(tmp_path):
    ids = ixi_tree(tmp_path)
    d = ixi_datalist(tmp_path, "t2")
    assert [len(d[k]) for k in ("training", "validation", "test")] == [140, 10, 35]
    subjects = [e["subject"] for k in ("training", "validation", "test") for e in d[k]]
    assert subjects == [f"IXI{s:03d}" for s in ids]  # sorted by subject id, val = training's last 10
    assert d["test"][0]["image"].startswith("IXI-T2/IXI") and d["test"][0]["image"].endswith("-T2.nii.gz")
    assert "150" in d["description"] and "35 test" in d["description"]
    assert load_manifest(write_manifest(tmp_path / "ixi.json", d), tmp_path)["test"][0]["image"].startswith("/")


def test_ixi_partial_copy_needs_allow_partial(tmp_path):
    ixi_tree(tmp_path, 37)
    with pytest.raises(MrsrError, match=r"holds 37 IXI HH T1 volumes.*--allow-partial"):
        ixi_datalist(tmp_path)
    with pytest.warns(UserWarning, match="Partial IXI copy"):
        d = ixi_datalist(tmp_path, num_val=3, allow_partial=True)
    assert [len(d[k]) for k in ("training", "validation", "test")] == [27, 3, 7]


@pytest.mark.parametrize(
    "kwargs, match",
    [({"contrast": "FLAIR"}, "Unknown IXI contrast"), ({"num_val": 150}, "--num-val"), ({"num_val": -1}, "--num-val")],
)
def test_ixi_bad_arguments(tmp_path, kwargs, match):
    ixi_tree(tmp_path)
    with pytest.raises(MrsrError, match=match):
        ixi_datalist(tmp_path, **kwargs)


def test_ixi_empty_or_duplicated(tmp_path):
    with pytest.raises(MrsrError, match="No IXI HH T1 volumes"):
        ixi_datalist(tmp_path)
    touch(tmp_path / "IXI002-HH-1-T1.nii.gz")
    touch(tmp_path / "copy" / "IXI002-HH-1-T1.nii")
    with pytest.raises(MrsrError, match="IXI002 has two T1 files"):
        ixi_datalist(tmp_path)


# ------------------------------------------------------------------------------------------- ACDC


def acdc_tree(root: Path, patients=range(1, 151)) -> None:
    for p in patients:
        folder = root / ("training" if p <= 100 else "testing") / f"patient{p:03d}"
        es = 8 + p % 7
        for name in ("frame01", f"frame{es:02d}", "frame01_gt", f"frame{es:02d}_gt", "4d"):
            touch(folder / f"patient{p:03d}_{name}.nii.gz")
        (folder / "Info.cfg").write_text(f"ED: 1\nES: {es}\nGroup: NOR\nNbFrame: 30\n")


def test_acdc_split_frames_and_labels(tmp_path):
    acdc_tree(tmp_path / "database")
    d = acdc_datalist(tmp_path)  # the parent of database/ works too
    assert [len(d[k]) for k in ("training", "validation", "test")] == [180, 20, 100]
    assert {e["patient"] for e in d["validation"]} == {f"patient{p:03d}" for p in range(91, 101)}
    assert {e["patient"] for e in d["test"]} == {f"patient{p:03d}" for p in range(101, 151)}
    images = [e["image"] for k in ("training", "validation", "test") for e in d[k]]
    assert not any("_gt" in i or "_4d" in i for i in images)
    first = d["training"][:2]
    assert first[0] == {"image": "database/training/patient001/patient001_frame01.nii.gz", "name": "patient001_frame01",
                        "patient": "patient001", "label": "database/training/patient001/patient001_frame01_gt.nii.gz",
                        "phase": "ED"}  # fmt: skip
    assert first[1]["phase"] == "ES"
    assert len(load_manifest(write_manifest(tmp_path / "acdc.json", d), tmp_path)["test"]) == 100


def test_acdc_partial_copy(tmp_path):
    acdc_tree(tmp_path, range(1, 41))
    with pytest.raises(MrsrError, match=r"110 of the 150 ACDC patients .*--allow-partial"):
        acdc_datalist(tmp_path)
    with pytest.warns(UserWarning, match="Partial ACDC"):
        d = acdc_datalist(tmp_path, num_val=5, allow_partial=True)
    assert [len(d[k]) for k in ("training", "validation", "test")] == [70, 10, 0]
    with pytest.raises(MrsrError, match="No ACDC frames"):
        acdc_datalist(tmp_path / "training" / "patient001")


# ------------------------------------------------------------------------------------------- fastMRI

HEADER = (
    '<?xml version="1.0"?><ismrmrdHeader xmlns="http://www.ismrm.org/ISMRMRD"><encoding><reconSpace>'
    "<matrixSize><x>8</x><y>8</y><z>1</z></matrixSize><fieldOfView_mm><x>4</x><y>4</y><z>3.5</z></fieldOfView_mm>"
    "</reconSpace></encoding></ismrmrdHeader>"
)


def fake_h5(path: Path, slices: int = 3, header: str | None = HEADER, recon: bool = True) -> np.ndarray:
    path.parent.mkdir(parents=True, exist_ok=True)
    images = np.random.default_rng(len(path.name)).random((slices, 8, 6), dtype=np.float32)
    with h5py.File(path, "w") as f:
        if recon:
            f["reconstruction_esc"] = images
        f["kspace"] = np.zeros((slices, 8, 6), np.complex64)
        if header is not None:
            f["ismrmrd_header"] = header.encode()
        f.attrs["acquisition"] = "CORPD_FBK"
    return images


def test_fastmri_conversion_geometry(tmp_path):
    images = fake_h5(tmp_path / "file1.h5")
    assert convert_fastmri_h5(tmp_path / "file1.h5", tmp_path / "out" / "file1.nii.gz") == {"acquisition": "CORPD_FBK"}
    img = nib.load(tmp_path / "out" / "file1.nii.gz")
    assert img.shape == (6, 8, 3) and np.allclose(img.header.get_zooms(), (0.5, 0.5, 3.5))
    data = img.get_fdata(dtype=np.float32)
    np.testing.assert_array_equal(data[:, ::-1, :].transpose(2, 1, 0), images)  # column = X, row (upright) = Y
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["file1.nii.gz"]
    fake_h5(tmp_path / "nohdr.h5", header=None)
    convert_fastmri_h5(tmp_path / "nohdr.h5", tmp_path / "nohdr.nii.gz")
    assert nib.load(tmp_path / "nohdr.nii.gz").header.get_zooms() == FASTMRI_DEFAULT_SPACING
    assert fastmri_spacing(b"<broken") == FASTMRI_DEFAULT_SPACING


def test_fastmri_datalist_split_and_skip(tmp_path):
    src, out = tmp_path / "knee", tmp_path / "nifti"
    for i in range(3):
        fake_h5(src / "singlecoil_train" / f"file10{i}.h5")
    for i in range(5):
        fake_h5(src / "singlecoil_val" / f"file20{4 - i}.h5")
    d = fastmri_knee_datalist(src, out)
    assert [e["name"] for e in d["training"]] == ["file100", "file101", "file102"]
    assert [e["name"] for e in d["validation"]] == ["file200", "file201"]
    assert [e["name"] for e in d["test"]] == ["file202", "file203", "file204"]
    assert d["test"][0] == {"image": "singlecoil_val/file202.nii.gz", "name": "file202", "acquisition": "CORPD_FBK"}
    converted = out / "singlecoil_train" / "file100.nii.gz"
    stamp = converted.stat().st_mtime_ns
    assert fastmri_knee_datalist(src, out) == d and converted.stat().st_mtime_ns == stamp  # converted files are kept
    lists = load_manifest(write_manifest(tmp_path / "k.json", d), out)
    assert load_volume(lists["validation"][0]["image"]).shape == (1, 6, 8, 3)


def test_fastmri_bad_input(tmp_path, monkeypatch):
    with pytest.raises(MrsrError, match="No singlecoil_train"):
        fastmri_knee_datalist(tmp_path, tmp_path / "o")
    fake_h5(tmp_path / "test.h5", recon=False)
    with pytest.raises(MrsrError, match="no 'reconstruction_esc'"):
        convert_fastmri_h5(tmp_path / "test.h5", tmp_path / "t.nii.gz")
    (tmp_path / "junk.h5").write_bytes(b"not hdf5")
    with pytest.raises(MrsrError, match="not an HDF5 file"):
        convert_fastmri_h5(tmp_path / "junk.h5", tmp_path / "j.nii.gz")
    monkeypatch.setitem(sys.modules, "h5py", None)
    with pytest.raises(MrsrError, match="pip install h5py"):
        convert_fastmri_h5(tmp_path / "test.h5", tmp_path / "t.nii.gz")
    assert not list(tmp_path.glob("*.nii.gz"))


# ------------------------------------------------------------------------------------------- scripts


def test_scripts_help_states_the_split(capsys):
    for name, words in [("ixi", "first 150"), ("acdc", "101-150"), ("fastmri_knee", "second half"),
                        ("real_data", "held out")]:  # fmt: skip
        with pytest.raises(SystemExit) as ex:
            script(name).main(["--help"])
        assert ex.value.code == 0 and words in " ".join(capsys.readouterr().out.split())


def test_script_errors_are_one_line_exit_2(tmp_path, capsys):
    ixi = script("ixi")
    assert ixi.main(["--ixi-root", str(tmp_path / "none"), "--out", str(tmp_path / "m.json")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ixi.py: error: The IXI root") and err.count("\n") == 1 and "Traceback" not in err
    ixi_tree(tmp_path / "ixi", 5)
    out = tmp_path / "m.json"
    assert ixi.main(["--ixi-root", str(tmp_path / "ixi"), "--out", str(out)]) == 2
    assert "--allow-partial" in capsys.readouterr().err and not out.exists()
    args = ["--ixi-root", str(tmp_path / "ixi"), "--out", str(out), "--allow-partial", "--num-val", "1"]
    assert ixi.main(args) == 0
    captured = capsys.readouterr()
    assert "training 3, validation 1, test 1" in captured.out and "warning: Partial IXI" in captured.err
    before = out.read_text()
    assert ixi.main(args + ["--contrast", "pd"]) == 2 and "--overwrite" in capsys.readouterr().err
    assert out.read_text() == before
    assert ixi.main(args + ["--contrast", "pd", "--overwrite"]) == 0 and "-PD.nii.gz" in out.read_text()
    assert ixi.main(["--ixi-root", str(tmp_path / "ixi"), "--out", str(tmp_path / "m.txt")]) == 2


def test_real_data_script_writes_the_committed_manifest(tmp_path):
    out = tmp_path / "real.json"
    assert script("real_data").main(["--out", str(out)]) == 0
    assert out.read_text() == REAL_DATA_MANIFEST.read_text()


def test_acdc_and_fastmri_scripts(tmp_path, capsys):
    acdc_tree(tmp_path / "acdc")
    assert script("acdc").main(["--acdc-root", str(tmp_path / "acdc"), "--out", str(tmp_path / "a.json")]) == 0
    assert "training 180, validation 20, test 100" in capsys.readouterr().out
    fake_h5(tmp_path / "knee" / "singlecoil_train" / "f1.h5")
    fake_h5(tmp_path / "knee" / "singlecoil_val" / "f2.h5")
    args = ["--fastmri-root", str(tmp_path / "knee"), "--nifti-dir", str(tmp_path / "nii"), "--no-progress"]
    assert script("fastmri_knee").main(args + ["--out", str(tmp_path / "k.json")]) == 0
    assert "training 1, validation 0, test 1" in capsys.readouterr().out
    assert script("fastmri_knee").main(["--fastmri-root", str(tmp_path), "--nifti-dir", "x", "--out", "k.json"]) == 2
    assert "No singlecoil_train" in capsys.readouterr().err


def test_manifest_module_does_not_import_torch():
    """The manifest scripts start at once: mrsr.data loads its torch/MONAI parts only when used."""
    import subprocess
    import sys

    code = "import sys, mrsr.data.manifest; print('torch' in sys.modules, 'monai' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.split() == ["False", "False"], done.stderr
