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
