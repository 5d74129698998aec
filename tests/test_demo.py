"""mrsr.demo: which bundle the demo runs, and what it writes (the command itself: tests/test_cli.py)."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

import mrsr.bundle.discovery as discovery
from mrsr.demo import demo_bundle, demo_files, run_demo
from mrsr.errors import MrsrError

SHIPPED = ["durn", "iconet", "medgan", "msrn", "wasa"]
SCORES = {"psnr": 31.0, "psnr_zerofill": 30.5, "psnr_bicubic": 29.0, "worst_margin": 0.25, "worst_image": "knee",
          "do_no_harm": True}  # fmt: skip


@pytest.fixture
def fake_bundles(tmp_path, monkeypatch):
    """Only two hand-made bundles with x2 weights on the search path: alpha (31 dB, harmless) and beta
    (32 dB, but 0.456 dB below zerofill on abdomen)."""
    harmful = {**SCORES, "psnr": 32.0, "worst_margin": -0.456, "worst_image": "abdomen", "do_no_harm": False}
    for name, scores in {"alpha": SCORES, "beta": harmful}.items():
        root = tmp_path / "bundles" / f"{name}_mr_sr"
        (root / "configs").mkdir(parents=True)
        (root / "models").mkdir()
        (root / "configs" / "inference.json").write_text("{}")
        meta = {"version": "0.1.0", "eval_metrics": {"x2": scores}}
        (root / "configs" / "metadata.json").write_text(json.dumps(meta))
        (root / "models" / "model.pt").write_bytes(b"")
    monkeypatch.setenv(discovery.BUNDLES_ENV, str(tmp_path / "bundles"))
    monkeypatch.setattr(discovery, "PACKAGED_BUNDLES", tmp_path / "absent")
    monkeypatch.setattr(discovery, "SOURCE_BUNDLES", tmp_path / "absent")


def test_demo_bundle_by_name_best_or_none(fake_bundles):
    """The demo's choice: "best" skips a harmful bundle even with the higher PSNR and says so; a named harmful
    bundle runs, with a note; no harmless weights at the scale, a fractional scale or "none": no bundle."""
    notes: list[str] = []
    assert demo_bundle("none", 2, notes.append) is None and notes == []
    assert demo_bundle("best", 2.5, notes.append) is None
    assert notes == ["note: no bundle works at x2.5 (integer factors only): running the baselines"]
    with pytest.raises(MrsrError, match="integer factor"):
        demo_bundle("alpha", 2.5, notes.append)
    notes.clear()
    assert demo_bundle("best", 2, notes.append) == "alpha"
    assert notes == [
        "note: not considered, as they lose more than 0.1 dB to zerofill on some test image at x2: beta (see `mrsr "
        "bundles`)",
        "note: running alpha, the best bundle at x2 that does no harm on any test image (see `mrsr bundles`; "
        "--bundle NAME runs another, --bundle none only the baselines)",
    ]
    notes.clear()
    assert demo_bundle("beta", 2, notes.append) == "beta"  # named: it runs, with a note as it does harm
    assert notes == [
        "note: beta at x2 is worse than zerofill by 0.46 dB on the test image abdomen, even with data consistency "
        "(see `mrsr bundles`)"
    ]
    notes.clear()
    assert demo_bundle("alpha", 2, notes.append) == "alpha" and notes == []
    assert demo_bundle("best", 4, notes.append) is None
    assert notes == [
        "note: no bundle ships x4 weights that do no harm on every test image: running the baselines only (name one "
        "to run it anyway, e.g. --bundle wasa)"
    ]


def test_demo_picks_a_shipped_bundle():
    """With the shipped bundles, "best" runs one of them at x2 and at x4, not the baselines only."""
    for scale in (2, 4):
        notes: list[str] = []
        assert demo_bundle("best", scale, notes.append) in SHIPPED
        assert notes[-1].startswith("note: running ") and not any("baselines only" in n for n in notes)


def test_run_demo_writes_its_files_once(tmp_path):
    """The x4 demo without a bundle: its stage lines, file names, volume shapes and affines (LR spacing x4 in-plane,
    origin kept; SR on the HR grid) and the baselines' scores on the bundled T1, written out."""
    lines: list[str] = []
    results = run_demo(tmp_path / "d", scale=4, bundle="none", device="cpu", log=lines.append)
    assert lines == [
        "[1/4] loading the bundled sample sample_t1_head.nii.gz (real T1 head MRI, Apache-2.0)",
        "[2/4] degrading in-plane by k-space truncation, factor 4",
        "[3/4] super-resolving with zerofill",
        "[3/4] super-resolving with bicubic",
        "[4/4] writing volumes, metrics and the panel",
    ]
    assert list(results) == ["zerofill", "bicubic"]
    # deterministic (no noise): the baselines' PSNRs on the bundled T1 at x4, border 4
    assert results["zerofill"].psnr == pytest.approx(24.40, abs=0.05)
    assert results["bicubic"].psnr == pytest.approx(24.13, abs=0.05)
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == sorted(
        ["hr.nii.gz", "lr.nii.gz", "sr_zerofill.nii.gz", "sr_bicubic.nii.gz", "metrics.json", "panel.png"]
    )
    assert demo_files(list(results)) == [
        "hr.nii.gz", "lr.nii.gz", "sr_zerofill.nii.gz", "sr_bicubic.nii.gz", "metrics.json", "panel.png"
    ]  # fmt: skip
    metrics = json.loads((tmp_path / "d" / "metrics.json").read_text())
    assert sorted(metrics) == ["bicubic", "zerofill"]
    assert metrics["zerofill"]["border"] == 4 and metrics["zerofill"]["psnr"] == pytest.approx(24.40, abs=0.05)
    hr_affine = [[-2, 0, 0, 0], [0, 0, 3, -254], [0, 2, 0, 0], [0, 0, 0, 1]]
    lr_affine = [[-8, 0, 0, 0], [0, 0, 3, -254], [0, 8, 0, 0], [0, 0, 0, 1]]
    expected = {"hr": ((128, 128, 62), hr_affine), "lr": ((32, 32, 62), lr_affine),
                "sr_zerofill": ((128, 128, 62), hr_affine), "sr_bicubic": ((128, 128, 62), hr_affine)}  # fmt: skip
    for name, (shape, affine) in expected.items():
        image = nib.load(tmp_path / "d" / f"{name}.nii.gz")
        assert image.shape == shape, name
        np.testing.assert_allclose(image.affine, affine, atol=1e-4, err_msg=name)
    hr = np.asarray(nib.load(tmp_path / "d" / "hr.nii.gz").dataobj)
    assert np.percentile(hr, [0.5, 99.5]) == pytest.approx([0.0, 1.0], abs=1e-3)  # RobustNormalize'd
    with pytest.raises(MrsrError, match="exists; pass overwrite=True"):
        run_demo(tmp_path / "d", scale=4, bundle="none", device="cpu", log=lines.append)
