"""Tests of mrsr.networks.summary (the `mrsr networks` table)."""

from __future__ import annotations

import io

import pytest
import torch

from mrsr import networks
from mrsr.networks import get_network
from mrsr.networks.summary import format_table, main, summarise

# MSRN's multi-scale residual block at 16 features: (layer, weight shape)
MSRB_16 = [("conv3_1", (16, 16, 3, 3)), ("conv5_1", (16, 16, 5, 5)), ("conv3_2", (32, 32, 3, 3)),
           ("conv5_2", (32, 32, 5, 5)), ("bottleneck", (16, 64, 1, 1))]  # fmt: skip


def test_counts_without_timing():
    rows = summarise(networks=["msrn"], presets=["default", "small"], time_it=False)
    assert [(r["network"], r["preset"]) for r in rows] == [("msrn", "default"), ("msrn", "small")]
    assert rows[0]["params"] == 5_928_001
    # MSRN is convolutions on the LR grid plus the upsampler: ~2 FLOPs per weight per LR pixel
    assert rows[0]["gflops"] == pytest.approx(776.69, rel=1e-3)
    assert rows[0]["mpix_per_s"] is None


def test_small_msrn_counts_match_its_layers():
    """MSRN small at x2 (16 features, 3 blocks): its layers, and the parameters and FLOPs of the table
    worked out by hand from them."""
    with torch.device("meta"):
        net = get_network("msrn", preset="small", scale=2, in_channels=1, out_channels=1)
    weights = [(n.removesuffix(".weight"), tuple(p.shape)) for n, p in net.named_parameters() if n.endswith("weight")]
    assert weights == [
        ("head", (16, 1, 3, 3)),
        *[(f"blocks.{i}.{name}", shape) for i in range(3) for name, shape in MSRB_16],
        ("fusion.0", (16, 64, 1, 1)),  # the head's and the 3 blocks' outputs, concatenated
        ("fusion.1", (16, 16, 3, 3)),
        ("upsample.body.0", (64, 16, 3, 3)),  # 16 x 2² channels for the PixelShuffle
        ("tail", (1, 16, 3, 3)),
    ]
    (row,) = summarise(networks=["msrn"], presets=["small"], time_it=False)
    # weights + biases: head 144 + 16, each block 44_544 + 112, fusion 3_328 + 32, upsampler 9_216 + 64, tail 144 + 1
    assert row["params"] == 146_913 == 160 + 3 * 44_656 + 3_360 + 9_280 + 145
    # 2 FLOPs per weight per output pixel: 146_320 weights on the 256² LR grid, the tail's 144 on the 512² SR grid
    assert 2 * (146_320 * 256**2 + 144 * 512**2) == 19_253_952_512
    assert row["gflops"] == pytest.approx(19.253952512, rel=1e-9)
    line = "| msrn | small | 0.147 | 19.3 | n/a | n/a | n/a | n/a |  |"
    assert format_table([row]).splitlines()[-1] == line


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
    assert len(rows) == 1 and rows[0]["params"] == 2_084_450  # two 5-level U-Nets of 16 to 128 features
    lines = text.splitlines()
    assert lines[2] == (
        "| network | preset | params (M) | GFLOPs / 256² LR slice | timed LR slice | batch | ms / slice "
        "| output MP/s | note |"
    )
    assert lines[4].startswith("| casnet | small | 2.084 | 5.8 | 256x256 | 4 | ")


def test_unavailable_network_gets_a_row():
    networks.register("summary_broken_net", "mrsr.networks.no_such_module:X")
    try:
        (row,) = summarise(networks=["summary_broken_net"], presets=["small"], time_it=False)
    finally:
        networks.unregister("summary_broken_net")
    assert row["params"] is None and row["note"].startswith("unavailable")
    assert "n/a" in format_table([row])
