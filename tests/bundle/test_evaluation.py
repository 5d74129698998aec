"""mrsr.bundle.evaluation: a bundle scored against zerofill and bicubic on a datalist section."""

from __future__ import annotations

import json

import pytest

from mrsr.bundle import evaluate_bundle
from mrsr.errors import MrsrError
from tests.bundle.conftest import VAL_IMAGE


def test_evaluate_bundle_scores_against_both_baselines(tmp_path):
    manifest = tmp_path / "m.json"
    manifest.write_text(json.dumps({"test": [{"image": VAL_IMAGE, "name": "anat"}]}))
    report = evaluate_bundle("msrn", manifest, scale=2, device="cpu", output=tmp_path / "eval" / "x2.json")
    assert set(report["volumes"]["anat"]) == {"msrn", "msrn +dc", "zerofill", "bicubic"}
    assert json.loads((tmp_path / "eval" / "x2.json").read_text())["mean"]["msrn"]["psnr"] == pytest.approx(
        report["mean"]["msrn"]["psnr"]
    )
    x4 = evaluate_bundle("msrn", manifest, scale=4, device="cpu")  # the baselines upsample x4 too
    assert x4["volumes"]["anat"]["zerofill"]["psnr"] < report["volumes"]["anat"]["zerofill"]["psnr"] - 1
    with pytest.raises(MrsrError, match="no 'validation' section"):
        evaluate_bundle("msrn", manifest, section="validation")


def test_store_eval_metrics_keeps_the_default_outputs_means_and_its_worst_margin(tmp_path, monkeypatch):
    """What the model cards show: the means of the default output (+dc), its worst margin over zerofill, harm."""
    import shutil

    from mrsr.bundle import BUNDLES_ENV, DO_NO_HARM_DB, find_bundle, read_metadata, store_eval_metrics

    shutil.copytree(find_bundle("msrn") / "configs", tmp_path / "msrn_mr_sr" / "configs")
    monkeypatch.setenv(BUNDLES_ENV, str(tmp_path))
    scores = {"a": {"msrn": 30.0, "msrn +dc": 31.0, "zerofill": 30.5, "bicubic": 29.0},
              "b": {"msrn": 20.0, "msrn +dc": 20.0 - DO_NO_HARM_DB / 2, "zerofill": 20.0, "bicubic": 19.0}}  # fmt: skip
    volumes = {image: {m: {"psnr": p, "ssim": 0.9, "seconds": 2.0, "voxels": 4_000_000} for m, p in row.items()}
               for image, row in scores.items()}  # fmt: skip
    report = {"manifest": "x/held_out.json", "section": "test", "scale": 3, "device": "cpu", "volumes": volumes}
    entry = store_eval_metrics("msrn", report)
    assert read_metadata("msrn")["eval_metrics"]["x3"] == entry
    assert entry["data"] == "held_out.json [test]"
    assert entry["psnr"] == pytest.approx((31.0 + 20.0 - DO_NO_HARM_DB / 2) / 2, abs=1e-3)
    assert entry["psnr_zerofill"] == 25.25 and entry["psnr_bicubic"] == 24.0
    assert entry["worst_image"] == "b" and entry["worst_margin"] == pytest.approx(-DO_NO_HARM_DB / 2, abs=1e-3)
    assert entry["do_no_harm"] is True
    assert entry["speed"] == "2.00 output Mvoxel/s on cpu"
    assert set(entry["volumes"]["a"]["msrn +dc"]) == {"psnr", "ssim"}


def test_a_stored_score_is_what_mrsr_infer_and_mrsr_evaluate_give(tmp_path):
    """The model cards' numbers come from the path users run: a bundle's stored x2 score on one real test image
    equals ``mrsr infer --bundle`` then ``mrsr evaluate`` on that image's LR and HR volumes saved as files."""
    from mrsr.bundle import bundle_detail, held_out_pairs, load_bundle_network, read_metadata, score_methods
    from mrsr.cli import main
    from mrsr.data import save_volume
    from mrsr.data.datasets.real_data import REAL_DATA_MANIFEST

    name = "pydicom_data_emri_head"  # a 64 x 64 x 10 crop of a 3D T1 acquisition: seconds
    pair = dict(held_out_pairs(REAL_DATA_MANIFEST, 2))[name]
    save_volume(pair["image"], tmp_path / "lr.nii.gz")
    save_volume(pair["label"], tmp_path / "hr.nii.gz")
    assert main(["infer", str(tmp_path / "lr.nii.gz"), "--bundle", "msrn", "--device", "cpu",
                 "-o", str(tmp_path / "sr.nii.gz")]) == 0  # fmt: skip
    assert main(["evaluate", "--sr", str(tmp_path / "sr.nii.gz"), "--hr", str(tmp_path / "hr.nii.gz"), "--border", "2",
                 "--json", str(tmp_path / "scores.json")]) == 0  # fmt: skip
    by_command = json.loads((tmp_path / "scores.json").read_text())["psnr"]
    methods = {"msrn": load_bundle_network("msrn", 2)}
    rows = {label: s for label, s, _ in score_methods(pair, methods, 2, details={"msrn": bundle_detail("msrn", 2)})}
    assert rows["msrn +dc"]["psnr"] == pytest.approx(by_command, abs=1e-4)
    stored = read_metadata("msrn")["eval_metrics"]["x2"]["volumes"][name]["msrn +dc"]["psnr"]
    assert stored == pytest.approx(by_command, abs=6e-4)  # stored to 3 decimals
