"""IXI: the HH split, partial copies, bad arguments, and the script (its errors are one line, exit code 2)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mrsr.data.datasets.ixi import ixi_datalist
from mrsr.data.manifest import load_manifest, write_manifest
from mrsr.errors import MrsrError
from tests.data.datasets.conftest import script, script_help, touch


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


def test_script_help_states_the_split(capsys):
    assert "first 150" in script_help("ixi", capsys)


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
