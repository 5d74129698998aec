"""ACDC: the split by patient, ED/ES frames with their labels and phases, partial copies, the script."""

from __future__ import annotations

from pathlib import Path

import pytest

from mrsr.data.datasets.acdc import acdc_datalist
from mrsr.data.manifest import load_manifest, write_manifest
from mrsr.errors import MrsrError
from tests.data.datasets.conftest import script, script_help, touch


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


def test_script(tmp_path, capsys):
    acdc_tree(tmp_path / "acdc")
    assert script("acdc").main(["--acdc-root", str(tmp_path / "acdc"), "--out", str(tmp_path / "a.json")]) == 0
    assert "training 180, validation 20, test 100" in capsys.readouterr().out
    assert "101-150" in script_help("acdc", capsys)
