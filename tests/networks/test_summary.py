"""Tests of mrsr.networks.summary (the `mrsr networks` table)."""

from __future__ import annotations

import io

import pytest

from mrsr import networks
from mrsr.networks.summary import format_table, main, summarise


def test_counts_without_timing():
    rows = summarise(networks=["msrn"], presets=["default", "small"], time_it=False)
    assert [(r["network"], r["preset"]) for r in rows] == [("msrn", "default"), ("msrn", "small")]
    assert rows[0]["params"] == 5_928_001
    # MSRN is convolutions on the LR grid plus the upsampler: ~2 FLOPs per weight per LR pixel
    assert rows[0]["gflops"] == pytest.approx(776.69, rel=1e-3)
    assert rows[0]["mpix_per_s"] is None


def test_timed_row_falls_back_to_smaller_slices():
    rows = summarise(networks=["msrn"], presets=["small"], flop_budget=1.0, repeats=1, warmup=0)
    (row,) = rows
    assert row["timed_size"] == 64 and row["batch"] == 1
    assert row["mpix_per_s"] > 0 and row["seconds"] > 0
    assert "64x64" in row["note"]


def test_main_prints_markdown_and_returns_rows():
    buf = io.StringIO()
    rows = main(networks=["casnet"], presets=["small"], repeats=1, warmup=0, file=buf)
    text = buf.getvalue()
    assert len(rows) == 1
    assert "| network | preset | params (M)" in text and "| casnet | small |" in text


def test_unavailable_network_gets_a_row():
    networks.register("summary_broken_net", "mrsr.networks.no_such_module:X")
    try:
        (row,) = summarise(networks=["summary_broken_net"], presets=["small"], time_it=False)
    finally:
        networks.unregister("summary_broken_net")
    assert row["params"] is None and row["note"].startswith("unavailable")
    assert "n/a" in format_table([row])
