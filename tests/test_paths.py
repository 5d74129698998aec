"""mrsr.paths: path checks that run before torch loads, in the words of the caller."""

from __future__ import annotations

import subprocess
import sys

import pytest

from mrsr.errors import MrsrError, OutputExistsError
from mrsr.paths import CLI_OVERWRITE, atomic_path, check_input_path, check_output_path, is_nifti_path, write_text_atomic


def test_is_nifti_path():
    assert is_nifti_path("a/B.NII.GZ") and is_nifti_path("b.nii") and not is_nifti_path("series_folder")


def test_missing_input_is_named(tmp_path):
    with pytest.raises(MrsrError, match="No such file or folder: .*nope"):
        check_input_path(tmp_path / "nope")
    assert check_input_path(tmp_path) == tmp_path


def test_existing_output_says_how_the_caller_replaces_it(tmp_path):
    out = tmp_path / "v.nii.gz"
    out.write_text("mine")
    with pytest.raises(MrsrError, match="pass overwrite=True to replace it"):
        check_output_path(out)
    with pytest.raises(MrsrError, match="pass --overwrite to replace it"):
        check_output_path(out, overwrite_hint=CLI_OVERWRITE)
    assert check_output_path(out, overwrite=True) == out and out.read_text() == "mine"


def test_command_line_reports_path_errors_before_torch_loads(tmp_path):
    code = (
        "import sys; from mrsr.cli import main; "
        f"code = main(['infer', {str(tmp_path / 'missing.nii.gz')!r}, '-o', {str(tmp_path / 'o.nii.gz')!r}]); "
        "print(code, 'torch' in sys.modules, 'monai' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.split() == ["2", "False", "False"], done.stderr
    assert "No such file or folder" in done.stderr


def test_atomic_path_keeps_the_old_output_when_the_writer_fails(tmp_path):
    out = tmp_path / "metrics.json"
    out.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(out) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert out.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]
    assert write_text_atomic(out, "new") == out and out.read_text() == "new"


def test_atomic_path_replaces_a_folder_whole(tmp_path):
    out = tmp_path / "series"
    out.mkdir()
    (out / "old.dcm").write_text("old")
    with atomic_path(out, directory=True) as tmp:
        (tmp / "IM00001.dcm").write_text("new")
    assert sorted(p.name for p in out.iterdir()) == ["IM00001.dcm"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["series"]  # nothing set aside is left


@pytest.mark.parametrize("directory", [False, True])
def test_atomic_path_without_replace_keeps_what_another_run_wrote_meanwhile(tmp_path, directory):
    """Two runs writing one output without overwrite: the first to finish wins whole, the second is told so."""
    out = tmp_path / ("series" if directory else "sr.nii.gz")
    with pytest.raises(OutputExistsError, match="written by another run"):
        with atomic_path(out, directory=directory, replace=False) as tmp:
            (tmp / "IM1.dcm" if directory else tmp).write_text("second")
            if directory:  # the other run finishes first
                out.mkdir()
                (out / "IM1.dcm").write_text("first")
            else:
                out.write_text("first")
    assert ((out / "IM1.dcm") if directory else out).read_text() == "first"
    assert sorted(p.name for p in tmp_path.iterdir()) == [out.name]  # this run's temporary output is gone
    with atomic_path(tmp_path / "new.txt", replace=False) as tmp:
        tmp.write_text("alone")
    assert (tmp_path / "new.txt").read_text() == "alone" and len(list(tmp_path.iterdir())) == 2
