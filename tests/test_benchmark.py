"""mrsr.benchmark: the protocol's numbers, the outputs, the cost model."""

from __future__ import annotations

import csv
import json

import pytest
import torch

from mrsr.benchmark import BenchmarkConfig, conv_peak_gflops, gflops_per_megapixel, peak_memory_mib, run_benchmark
from mrsr.bundle import evaluate_bundle, load_bundle_network
from mrsr.cli import main
from mrsr.networks.baselines import ZeroFill
from mrsr.networks.summary import count_flops

VAL_IMAGE = "pkg:nibabel/tests/data/anatomical.nii"


@pytest.fixture
def small_manifest(tmp_path):
    path = tmp_path / "m.json"
    path.write_text(json.dumps({"test": [{"image": VAL_IMAGE, "name": "anat"}]}))
    return str(path)


def test_benchmark_writes_tables_csv_and_figures(small_manifest, tmp_path, monkeypatch):
    monkeypatch.setattr("mrsr.benchmark.amp_supported", lambda device: True)  # time AMP even where it is emulated
    config = BenchmarkConfig(manifest=small_manifest, scales=[2], bundles=["msrn"], devices=["cpu"], amp=True,
                             repeats=1, warmup=0, speed_volume=(24, 20, 2), tile=(12, 0.25), memory=False,
                             out=str(tmp_path / "b"), adapt_steps=2,
                             docs=str(tmp_path / "docs" / "BENCHMARKS.md"))  # fmt: skip
    from mrsr.benchmark import KEEP_MARKER

    (tmp_path / "docs").mkdir()
    kept = f"{KEEP_MARKER}\n\n## Through-plane SR\n\nother numbers\n"
    (tmp_path / "docs" / "BENCHMARKS.md").write_text("# an old run\n\nold tables\n" + kept)
    markdown = run_benchmark(config, progress=lambda _: None)
    out = tmp_path / "b"
    assert sorted(p.name for p in out.iterdir()) == [
        "benchmark.csv",
        "benchmark.md",
        "panel.png",
        "quality_vs_speed.png",
    ]
    assert (out / "panel.png").read_bytes()[:4] == b"\x89PNG"
    assert "## Quality at x2" in markdown and "| msrn | x2 | cpu | bfloat16 AMP |" in markdown
    docs = (tmp_path / "docs" / "BENCHMARKS.md").read_text()
    assert docs.startswith(markdown) and "![panel](benchmark_panel.png)" in docs
    assert docs.endswith(kept) and "old tables" not in docs  # other benchmarks' sections survive, the old run not
    assert (tmp_path / "docs" / "benchmark_panel.png").read_bytes()[:4] == b"\x89PNG"
    rows = list(csv.DictReader(open(out / "benchmark.csv")))
    quality = {r["method"]: float(r["psnr"]) for r in rows if r["table"] == "quality"}
    assert set(quality) == {"zerofill", "bicubic", "msrn", "msrn +dc", "msrn +dc +adapt"}
    adapted = next(r for r in rows if r["method"] == "msrn +dc +adapt")
    assert adapted["adapt_choice"] == "too small"  # nibabel's 33x41 brain: the default output is scored
    assert float(adapted["psnr"]) == pytest.approx(quality["msrn +dc"], abs=1e-6)
    assert "### Margins over zerofill at x2" in markdown and "| msrn +dc +adapt | " in markdown
    # the same protocol as the model cards' numbers
    report = evaluate_bundle("msrn", small_manifest, scale=2, device="cpu", adapt_steps=2)
    for method, psnr in quality.items():
        assert psnr == pytest.approx(report["volumes"]["anat"][method]["psnr"], abs=1e-4)
    speed = [r for r in rows if r["table"] == "speed"]
    assert {(r["method"], r["precision"]) for r in speed} == {
        (m, p) for m in ("zerofill", "bicubic", "msrn") for p in ("float32", "bfloat16 AMP")
    }
    assert all(float(r["mvox_per_s"]) > 0 for r in speed)
    tiled = {(r["method"], r["precision"]): r["tiled_vs_whole"] for r in speed}
    assert float(tiled[("msrn", "float32")]) > 0 and tiled[("msrn", "bfloat16 AMP")] == ""  # float32 networks only
    assert {r["method"]: r["memory_format"] for r in speed}["msrn"] == "channels_last"  # its measured preference
    amp = {r["method"]: r["psnr_amp"] for r in rows if r["table"] == "quality"}
    assert amp["zerofill"] == "" and abs(float(amp["msrn"]) - quality["msrn"]) < 0.1  # bf16 costs little


def test_amp_is_skipped_where_the_cpu_only_emulates_bfloat16(small_manifest, tmp_path, monkeypatch):
    monkeypatch.setattr("mrsr.benchmark.amp_supported", lambda device: False)
    config = BenchmarkConfig(manifest=small_manifest, scales=[2], bundles=["msrn"], devices=["cpu"], amp=True,
                             repeats=1, warmup=0, speed_volume=(24, 20, 2), tile=(12, 0.25), memory=False,
                             out=str(tmp_path / "b"))  # fmt: skip
    markdown = run_benchmark(config, progress=lambda _: None)
    assert "AMP" not in markdown.split("## Speed and cost")[1].replace("AMP: mean PSNR change", "")
    assert "Not measured on cpu: no native bfloat16" in markdown


def test_gflops_per_megapixel_counts_the_network():
    net, _ = load_bundle_network("msrn", 2)
    per_mp = gflops_per_megapixel(net, 2, 1, size=64)
    expected = count_flops(net.to("meta"), 64) / 1e9 / (128 * 128 / 1e6)
    assert per_mp == pytest.approx(expected)
    assert gflops_per_megapixel(ZeroFill(scale=2), 2, 1) is None


def test_conv_peak_is_measured():
    assert 0.1 < conv_peak_gflops("cpu", repeats=1) < 1e5


def test_peak_memory_counts_the_output_volume():
    # the LR of a 256x256x108 volume at x2 -> a 256x256x108 float32 output: 27 MiB
    mib = peak_memory_mib("zerofill", ZeroFill(scale=2), 1, 2, "cpu")
    assert 27 <= mib < 27 + 200


def test_benchmark_cli_refuses_to_replace_results(tmp_path, capsys):
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "benchmark.md").write_text("mine")
    assert main(["benchmark", "-o", str(tmp_path / "b"), "--scales", "2"]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert (tmp_path / "b" / "benchmark.md").read_text() == "mine"
    assert main(["benchmark", "-o", str(tmp_path / "c"), "--scales", "3", "--bundles", "msrn"]) == 2
    assert "no x3 weights" in capsys.readouterr().err


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_benchmark_times_cuda(small_manifest, tmp_path):
    config = BenchmarkConfig(manifest=small_manifest, scales=[2], bundles=["msrn"], devices=["cuda"], repeats=1,
                             speed_volume=(24, 20, 2), memory=True, out=str(tmp_path / "b"))  # fmt: skip
    markdown = run_benchmark(config, progress=lambda _: None)
    assert "| msrn | x2 | cuda | float16 AMP |" in markdown
