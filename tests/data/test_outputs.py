"""mrsr.data.outputs: outputs named after their inputs, skipped when they exist, saved atomically."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.data import MetaTensor

from mrsr.data import SaveVolumed, as_datalist, derived_output_path
from mrsr.errors import MrsrError


def test_derived_output_path_drops_volume_suffixes():
    assert derived_output_path("in/scan.nii", "out", "sr_x2").as_posix() == "out/scan_sr_x2.nii.gz"
    assert derived_output_path("in/series", "out", "sr", "").as_posix() == "out/series_sr"


def test_as_datalist(tmp_path):
    (tmp_path / "a.nii.gz").write_bytes(b"")
    (tmp_path / "b.nii").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("")
    assert as_datalist(str(tmp_path)) == [{"image": str(tmp_path / "a.nii.gz")}, {"image": str(tmp_path / "b.nii")}]
    assert as_datalist(["x.nii", "dicom_dir"]) == [{"image": "x.nii"}, {"image": "dicom_dir"}]
    for nothing in ([], "", None):  # a config's default input is "": one line, not the working folder
        with pytest.raises(MrsrError, match="No input"):
            as_datalist(nothing)


def test_as_datalist_leaves_out_inputs_whose_output_exists(tmp_path, capsys):
    (tmp_path / "a.nii.gz").write_bytes(b"")
    (tmp_path / "b.nii").write_bytes(b"")
    out = tmp_path / "out"
    out.mkdir()
    (out / "a_sr_x2.nii.gz").write_bytes(b"")
    kwargs = {"output_dir": str(out), "output_postfix": "sr_x2"}
    assert as_datalist(str(tmp_path), **kwargs) == [{"image": str(tmp_path / "b.nii")}]
    assert capsys.readouterr().err == (
        f"mrsr: skip {tmp_path / 'a.nii.gz'}: {out / 'a_sr_x2.nii.gz'} exists (pass --overwrite to replace it)\n"
    )
    assert len(as_datalist(str(tmp_path), overwrite=True, **kwargs)) == 2
    (out / "b_sr_x2.nii.gz").write_bytes(b"")
    assert as_datalist(str(tmp_path), **kwargs) == []
    assert "mrsr: nothing to do: every output exists" in capsys.readouterr().err
    with pytest.raises(MrsrError, match="same output"):  # a.nii and a.nii.gz -> a_sr_x2.nii.gz
        as_datalist([str(tmp_path / "a.nii.gz"), str(tmp_path / "a.nii")], overwrite=True, **kwargs)


def test_save_volumed_names_outputs_and_protects_files(tmp_path):
    src = tmp_path / "scan.nii.gz"
    vol = MetaTensor(torch.rand(1, 4, 4, 2), meta={"filename_or_obj": str(src)})
    save = SaveVolumed("pred", output_dir=tmp_path / "out", output_postfix="sr_x2")
    save({"image": vol, "pred": vol})
    assert (tmp_path / "out" / "scan_sr_x2.nii.gz").is_file()
    with pytest.raises(MrsrError, match="exists"):
        save({"image": vol, "pred": vol})
    SaveVolumed("pred", output_dir=tmp_path / "out", output_postfix="sr_x2", overwrite=True)(
        {"image": vol, "pred": vol}
    )
    with pytest.raises(MrsrError, match="output_ext"):
        SaveVolumed("pred", output_dir=tmp_path, output_ext=".png")


def test_save_volumed_keeps_the_inputs_header_codes(tmp_path):
    src = tmp_path / "scan.nii.gz"
    meta = {"filename_or_obj": str(src), "sform_code": np.array(2, np.int16), "qform_code": np.array(0, np.int16)}
    vol = MetaTensor(torch.rand(1, 4, 4, 2), meta=meta)
    SaveVolumed("pred", output_dir=tmp_path / "out")({"image": vol, "pred": vol})
    header = nib.load(tmp_path / "out" / "scan_sr.nii.gz").header
    assert (int(header["sform_code"]), int(header["qform_code"])) == (2, 0)
