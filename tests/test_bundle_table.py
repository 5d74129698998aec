"""mrsr.bundle_table: the rows and table of `mrsr bundles`, and the ranking behind `mrsr demo`'s pick."""

from __future__ import annotations

from mrsr.bundle import bundle_scales, list_bundles, read_metadata
from mrsr.bundle_table import SCORE_KEYS, bundle_name, bundle_rows, format_bundle_table, harm_note, rank_bundles


def test_rows_name_every_bundle_with_its_weights_and_stored_scores():
    rows = bundle_rows()
    assert [r["bundle"] for r in rows] == [bundle_name(b) for b in list_bundles()]
    for row, bundle in zip(rows, list_bundles()):
        assert row["scales"] == bundle_scales(bundle) and row["version"] == read_metadata(bundle)["version"]
        for key, scores in row["eval_metrics"].items():
            stored = read_metadata(bundle)["eval_metrics"][key]
            assert scores == {k: stored[k] for k in SCORE_KEYS if k in stored}  # no per-volume detail


def test_table_shows_margins_unscored_scales_and_harm():
    good = {"psnr": 36.0, "psnr_zerofill": 35.5, "psnr_bicubic": 34.0, "worst_margin": 0.1, "worst_image": "a",
            "do_no_harm": True}  # fmt: skip
    bad = {**good, "worst_margin": -1.234, "worst_image": "abdomen", "do_no_harm": False}
    rows = [
        {"bundle": "one", "version": "0.1.0", "path": "b/one_mr_sr", "scales": [2, 4], "eval_metrics": {"x2": good}},
        {"bundle": "two", "version": "0.2.0", "path": "b/two_mr_sr", "scales": [], "eval_metrics": {"x4": bad}},
    ]
    lines = format_bundle_table(rows).splitlines()
    assert lines[0].count("test PSNR (vs zerofill, bicubic)") == 2 and lines[0].endswith(" folder |")
    assert lines[1] == "|---|---|---|---|---|---|---|---|"
    assert lines[2] == "| one | 0.1.0 | x2, x4 | 36.00 dB (+0.50, +2.00) | +0.10 dB (a) | not scored | | b/one_mr_sr |"
    assert lines[3].startswith("| two | 0.2.0 | none | not scored | | 36.00 dB") and "-1.23 dB (abdomen)" in lines[3]
    assert lines[4] == "" and lines[5].startswith("Scores: the default output")
    harm = "- two at x4 is worse than zerofill by 1.23 dB on abdomen, even with data consistency"
    assert lines[6] == harm + ": on scans like it, zerofill is the safer choice." and len(lines) == 7


def test_ranking_splits_the_bundles_by_their_stored_harm():
    for scale in (2, 4):
        scored, harmful = rank_bundles(scale)
        with_weights = [b for b in list_bundles() if scale in bundle_scales(b)]
        assert sorted([n for _, n in scored] + harmful) == sorted(bundle_name(b) for b in with_weights)
        for bundle in with_weights:
            metrics = read_metadata(bundle)["eval_metrics"][f"x{scale}"]
            assert (bundle_name(bundle) in harmful) == (not metrics["do_no_harm"])
            note = harm_note(bundle_name(bundle), scale)
            assert (note is None) == metrics["do_no_harm"]
            assert note is None or f"by {-metrics['worst_margin']:.2f} dB on the test image" in note
