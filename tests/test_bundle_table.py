"""mrsr.bundle_table: the rows and table of `mrsr bundles`, and the ranking behind `mrsr demo`'s pick."""

from __future__ import annotations

import json
import math

import pytest

import mrsr.bundle.discovery as discovery
from mrsr.bundle_table import SCORE_KEYS, bundle_rows, format_bundle_table, harm_note, rank_bundles

SHIPPED = ["durn", "iconet", "medgan", "msrn", "wasa"]
SCORES = {"psnr": 31.0, "ssim": 0.91, "psnr_zerofill": 30.5, "psnr_bicubic": 29.0, "worst_margin": 0.25,
          "worst_image": "knee", "do_no_harm": True}  # fmt: skip
ALPHA_X4 = {**SCORES, "psnr": 27.2, "psnr_zerofill": 27.0, "psnr_bicubic": 26.5, "worst_margin": 0.0}
BETA_X2 = {**SCORES, "psnr": 30.0, "worst_margin": -0.456, "worst_image": "abdomen", "do_no_harm": False}


@pytest.fixture
def fake_bundles(tmp_path, monkeypatch):
    """Only three hand-made bundles on the search path, in ``./bundles``: alpha (x2 and x4 weights and scores,
    plus per-image detail that the rows drop), beta (x2, does harm) and gamma (x2 weights, no scores)."""
    bundles = {
        "alpha": ("1.2.0", ["model.pt", "model_x4.pt"], {"x2": {**SCORES, "per_image": {"knee": 31.0}},
                                                         "x4": ALPHA_X4}),
        "beta": ("0.3.0", ["model.pt"], {"x2": BETA_X2}),
        "gamma": ("0.0.1", ["model.pt"], None),
    }  # fmt: skip
    for name, (version, weights, metrics) in bundles.items():
        root = tmp_path / "bundles" / f"{name}_mr_sr"
        (root / "configs").mkdir(parents=True)
        (root / "models").mkdir()
        (root / "configs" / "inference.json").write_text("{}")
        meta = {"version": version} if metrics is None else {"version": version, "eval_metrics": metrics}
        (root / "configs" / "metadata.json").write_text(json.dumps(meta))
        for weight in weights:
            (root / "models" / weight).write_bytes(b"")
    monkeypatch.setenv(discovery.BUNDLES_ENV, str(tmp_path / "bundles"))
    monkeypatch.setattr(discovery, "PACKAGED_BUNDLES", tmp_path / "absent")
    monkeypatch.setattr(discovery, "SOURCE_BUNDLES", tmp_path / "absent")
    monkeypatch.chdir(tmp_path)


def test_rows_of_fixed_bundles(fake_bundles):
    """Each row: name, version, folder relative to the working folder, the scales with weights and the stored
    scores of SCORE_KEYS only (the per-image detail is dropped; no scores: an empty dict)."""
    assert SCORE_KEYS == ("psnr", "ssim", "psnr_zerofill", "psnr_bicubic", "worst_margin", "worst_image", "do_no_harm")
    assert bundle_rows() == [
        {"bundle": "alpha", "version": "1.2.0", "path": "bundles/alpha_mr_sr", "scales": [2, 4],
         "eval_metrics": {"x2": SCORES, "x4": ALPHA_X4}},
        {"bundle": "beta", "version": "0.3.0", "path": "bundles/beta_mr_sr", "scales": [2],
         "eval_metrics": {"x2": BETA_X2}},
        {"bundle": "gamma", "version": "0.0.1", "path": "bundles/gamma_mr_sr", "scales": [2], "eval_metrics": {}},
    ]  # fmt: skip


def test_table_of_fixed_bundles(fake_bundles):
    """The whole Markdown table of the fixed bundles, written out: a column pair per scored scale, margins
    over zerofill and bicubic, 'not scored' cells, the note and one harm line."""
    assert format_bundle_table(bundle_rows()).splitlines() == [
        "| bundle | version | weights | x2 test PSNR (vs zerofill, bicubic) | x2 worst image vs zerofill "
        "| x4 test PSNR (vs zerofill, bicubic) | x4 worst image vs zerofill | folder |",
        "|---|---|---|---|---|---|---|---|",
        "| alpha | 1.2.0 | x2, x4 | 31.00 dB (+0.50, +2.00) | +0.25 dB (knee) | 27.20 dB (+0.20, +0.70) "
        "| +0.00 dB (knee) | bundles/alpha_mr_sr |",
        "| beta | 0.3.0 | x2 | 30.00 dB (-0.50, +1.00) | -0.46 dB (abdomen) | not scored | | bundles/beta_mr_sr |",
        "| gamma | 0.0.1 | x2 | not scored | | not scored | | bundles/gamma_mr_sr |",
        "",
        "Scores: the default output (data consistency on), mean over the test images of "
        "data_manifests/real_data.json, and its smallest margin over zerofill on any one image (see each "
        "docs/README.md).",
        "- beta at x2 is worse than zerofill by 0.46 dB on abdomen, even with data consistency: on scans like it, "
        "zerofill is the safer choice.",
    ]


def test_shipped_bundles_ship_x2_and_x4_weights_and_scores():
    """The five shipped bundles, each with x2 and x4 weights and stored scores of exactly SCORE_KEYS."""
    rows = bundle_rows()
    assert [r["bundle"] for r in rows] == SHIPPED
    for row in rows:
        assert row["scales"] == [2, 4], row["bundle"]
        assert sorted(row["eval_metrics"]) == ["x2", "x4"], row["bundle"]
        for scores in row["eval_metrics"].values():
            assert sorted(scores) == sorted(SCORE_KEYS), row["bundle"]


def test_table_shows_margins_unscored_scales_and_harm():
    good = {"psnr": 36.0, "psnr_zerofill": 35.5, "psnr_bicubic": 34.0, "worst_margin": 0.1, "worst_image": "a",
            "do_no_harm": True}  # fmt: skip
    bad = {**good, "worst_margin": -1.234, "worst_image": "abdomen", "do_no_harm": False}
    rows = [
        {"bundle": "one", "version": "0.1.0", "path": "b/one_mr_sr", "scales": [2, 4], "eval_metrics": {"x2": good}},
        {"bundle": "two", "version": "0.2.0", "path": "b/two_mr_sr", "scales": [], "eval_metrics": {"x4": bad}},
    ]
    lines = format_bundle_table(rows).splitlines()
    assert lines[0] == (
        "| bundle | version | weights | x2 test PSNR (vs zerofill, bicubic) | x2 worst image vs zerofill "
        "| x4 test PSNR (vs zerofill, bicubic) | x4 worst image vs zerofill | folder |"
    )
    assert lines[1] == "|---|---|---|---|---|---|---|---|"
    assert lines[2] == "| one | 0.1.0 | x2, x4 | 36.00 dB (+0.50, +2.00) | +0.10 dB (a) | not scored | | b/one_mr_sr |"
    two = "| two | 0.2.0 | none | not scored | | 36.00 dB (+0.50, +2.00) | -1.23 dB (abdomen) | b/two_mr_sr |"
    assert lines[3] == two
    assert lines[4] == "" and lines[5].startswith("Scores: the default output")
    harm = "- two at x4 is worse than zerofill by 1.23 dB on abdomen, even with data consistency"
    assert lines[6] == harm + ": on scans like it, zerofill is the safer choice." and len(lines) == 7


def test_ranking_splits_the_bundles_by_their_stored_harm(fake_bundles):
    """(test PSNR, name) of the harmless bundles with weights for the scale (unscored: -inf), names of the
    harmful ones; harm_note's line for a harmful bundle, None otherwise."""
    assert rank_bundles(2) == ([(31.0, "alpha"), (-math.inf, "gamma")], ["beta"])
    assert rank_bundles(4) == ([(27.2, "alpha")], [])
    assert rank_bundles(3) == ([], [])
    assert harm_note("beta", 2) == (
        "beta at x2 is worse than zerofill by 0.46 dB on the test image abdomen, even with data consistency "
        "(see `mrsr bundles`)"
    )
    assert harm_note("alpha", 2) is None and harm_note("gamma", 2) is None


def test_shipped_bundles_are_all_ranked():
    """Every shipped bundle is ranked at x2 and x4, as scored or harmful."""
    for scale in (2, 4):
        scored, harmful = rank_bundles(scale)
        assert sorted([n for _, n in scored] + harmful) == SHIPPED
        assert all(30.0 < psnr < 45.0 for psnr, _ in scored)  # the stored test PSNRs: plausible dB values
