"""``mrsr benchmark``: every bundle and both baselines under one protocol, side by side.

Quality, per scale and held-out image: each HR volume is normalised (0.5th/99.5th percentiles to
0/1), cropped in-plane to a multiple of the scale, k-space truncated in-plane (no window, no noise)
and super-resolved back by every method; :func:`mrsr.metrics.evaluate` scores it (PSNR of the
volume and mean per slice, SSIM as the mean over slices, both also over the foreground mask; the HR
volume's data range; ``scale`` border pixels cropped). Each network is scored three ways: as it is,
with data consistency and the bundle's ``detail`` (``+dc``, the ``mrsr infer`` default) and after test-time adaptation
(``+dc +adapt``, :func:`mrsr.adapt.adapt`); the Markdown gives every image's margin over zerofill.

Speed and cost, per method, device and precision (float32; AMP: bfloat16 on CPU, float16 on CUDA):

- parameters; GFLOPs per output megapixel (``FlopCounterMode``, 2 per multiply-accumulate, on a
  128x128 LR slice);
- throughput: output megavoxels per second of :func:`mrsr.inference.super_resolve` on a random LR
  volume (whole slices; the network's slice batch and memory format), the median of ``repeats``
  runs after ``warmup`` runs;
- the fraction of the machine's convolution peak that reaches: GFLOPs per megapixel x megapixels
  per second over the GFLOP/s of a large channels-last 3x3 convolution (64 -> 64 channels on
  8 x 128 x 128) timed in the same run;
- tiled inference (float32, ``tile``: 80x80 LR tiles, overlap 0.05) against whole slices, as a
  speed ratio on the same volume;
- the PSNR change with AMP on the quality volumes;
- peak memory of super-resolving a 256x256x108 HR volume's LR (x2: 128x128x108 in): on CUDA
  ``max_memory_allocated``; on the CPU the growth of the peak RSS of a fresh child process.

Outputs in ``out``: ``benchmark.md`` (also copied to ``docs``), ``benchmark.csv`` (one row per
measurement), ``quality_vs_speed.png`` and ``panel.png`` (the same slice from every method with
its error map).
"""

from __future__ import annotations

import copy
import csv
import json
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mrsr.bundle import TOO_SMALL
from mrsr.errors import MrsrError
from mrsr.networks.baselines import BASELINES, get_baseline, is_trained_network

__all__ = ["BenchmarkConfig", "run_benchmark", "conv_peak_gflops", "quality_rows", "speed_row"]

MEMORY_HR_SHAPE = (256, 256, 108)


@dataclass
class BenchmarkConfig:
    """What ``mrsr benchmark`` measures (see the module docstring)."""

    manifest: str | None = None  # default: data_manifests/real_data.json
    section: str = "test"
    data_root: str | None = None
    scales: Sequence[int] = (2, 4)
    bundles: Sequence[str] | None = None  # default: every bundle with weights
    devices: Sequence[str] = field(default_factory=lambda: ["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
    amp: bool = True
    repeats: int = 5
    warmup: int = 1
    speed_volume: tuple[int, int, int] = (128, 128, 8)  # LR volume of the throughput runs
    tile: tuple[int, float] = (80, 0.05)  # LR tile side and overlap of the tiled-inference run
    memory: bool = True
    out: str = "benchmark"
    docs: str | None = None
    adapt_steps: int = 300  # test-time adaptation steps of the "+dc +adapt" rows (0: none)
    adapt_scales: Sequence[int] = (2,)  # scales with "+dc +adapt" rows


def _methods(scale: int, bundles: Sequence[str] | None) -> dict[str, tuple[Any, int]]:
    """Baselines and bundle networks at ``scale``: name -> (predictor, in_channels)."""
    from mrsr.bundle import SUFFIX, bundle_scales, list_bundles, load_bundle_network

    methods: dict[str, tuple[Any, int]] = {n: (get_baseline(n, scale), 1) for n in BASELINES}
    chosen = [b.name[: -len(SUFFIX)] for b in list_bundles()] if bundles is None else list(bundles)
    for name in chosen:
        if scale in bundle_scales(name):
            methods[name] = load_bundle_network(name, scale)
        elif bundles is not None:
            raise MrsrError(f"The {name} bundle has no x{scale} weights; drop it or choose --scales it has.")
    return methods


def quality_rows(config: BenchmarkConfig, scale: int, methods: dict[str, tuple[Any, int]]) -> tuple[list[dict], dict]:
    """Scores of every method on every volume of the manifest section at ``scale``.

    Each network is scored as it is, with data consistency (``NAME +dc``, ``mrsr infer``'s default) and,
    at ``config.adapt_scales``, after test-time adaptation with data consistency (``NAME +dc +adapt``:
    the adaptation's choice and time are in the row); :func:`mrsr.bundle.score_methods`, as the model cards.

    Returns:
        (rows ``{method, scale, volume, psnr, psnr_slice_mean, ssim, psnr_fg, ssim_fg, seconds[, psnr_amp,
        adapt_choice, adapt_seconds]}``, the middle slice of the first volume ``{"hr": array, method: array}``
        for the panel).
    """
    from mrsr.bundle import ADAPT, bundle_detail, held_out_pairs, score_methods
    from mrsr.data.datasets.real_data import REAL_DATA_MANIFEST
    from mrsr.networks.baselines import is_trained_network

    pairs = held_out_pairs(config.manifest or REAL_DATA_MANIFEST, scale, config.section, config.data_root)
    device = config.devices[0]
    adapt_steps = config.adapt_steps if scale in config.adapt_scales else 0
    amp = config.amp and amp_supported(device)
    details = {name: bundle_detail(name, scale) for name, (p, _) in methods.items() if is_trained_network(p)}
    rows, panel = [], {}
    for i, (name, pair) in enumerate(pairs):
        middle = pair["label"].shape[-1] // 2
        if i == 0:
            panel["hr"] = pair["label"][0, :, :, middle].numpy()
        for label, scores, sr in score_methods(pair, methods, scale, device, adapt_steps, amp, details):
            rows.append({"method": label, "scale": scale, "volume": name, **scores})
            if i == 0 and not label.endswith(ADAPT):
                panel[label] = sr[0, :, :, middle].numpy()
    return rows, panel


def conv_peak_gflops(device: str, amp: bool = False, repeats: int = 5) -> float:
    """GFLOP/s of a large channels-last 3x3 convolution (64 -> 64 channels, 8 x 128 x 128): the machine's peak."""
    dev = torch.device(device)
    conv = torch.nn.Conv2d(64, 64, 3, padding=1).to(dev).to(memory_format=torch.channels_last).eval()
    x = torch.rand(8, 64, 128, 128, device=dev).to(memory_format=torch.channels_last)
    flops = 2 * 64 * 64 * 9 * 8 * 128 * 128
    return flops / _median_seconds(lambda: conv(x), dev, amp, repeats, warmup=2) / 1e9


def _median_seconds(fn, dev: torch.device, amp: bool, repeats: int, warmup: int) -> float:
    times = []
    from mrsr.inference import autocast_context

    with torch.inference_mode(), autocast_context(dev, amp):
        for i in range(warmup + max(1, repeats)):
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            start = time.perf_counter()
            fn()
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            if i >= warmup:
                times.append(time.perf_counter() - start)
    return statistics.median(times)


def gflops_per_megapixel(predictor: Any, scale: int, in_channels: int, size: int = 128) -> float | None:
    """GFLOPs per output megapixel of a network (``None`` for a baseline: not a convolution network)."""
    from mrsr.networks.summary import count_flops

    if not is_trained_network(predictor):
        return None
    meta = copy.deepcopy(predictor).to("meta")
    return count_flops(meta, size, in_channels=in_channels) / 1e9 / ((scale * size) ** 2 / 1e6)


def speed_row(name: str, predictor: Any, in_channels: int, scale: int, device: str, amp: bool,
              config: BenchmarkConfig, peak: float) -> dict[str, Any]:  # fmt: skip
    """Parameters, GFLOPs/MP, throughput and the fraction of the convolution peak of one method.

    In float32 also the speed of tiled inference (``config.tile``) relative to whole slices, timed
    in the same way on the same volume.
    """
    from monai.data import MetaTensor

    from mrsr.inference import prefers_channels_last, super_resolve

    dev = torch.device(device)
    h, w, d = config.speed_volume
    volume = MetaTensor(torch.rand(1, h, w, d, generator=torch.Generator().manual_seed(0)))
    if isinstance(predictor, torch.nn.Module):
        predictor = predictor.to(dev)

    def seconds_per_run(**options) -> float:  # super_resolve sets up autocast itself
        def run():
            super_resolve(volume, predictor, scale, in_channels=in_channels, device=dev, amp=amp, **options)

        return _median_seconds(run, dev, False, config.repeats, config.warmup)

    seconds = seconds_per_run()
    tiled = None
    if not amp and isinstance(predictor, torch.nn.Module):
        side, overlap = config.tile
        tiled = seconds / seconds_per_run(roi_size=(side, side), overlap=overlap)
    mvox = scale * h * scale * w * d / 1e6 / seconds
    gflops = gflops_per_megapixel(predictor, scale, in_channels)
    params = sum(p.numel() for p in predictor.parameters()) if isinstance(predictor, torch.nn.Module) else 0
    return {"method": name, "scale": scale, "device": device, "precision": _precision(dev, amp), "params": params,
            "gflops_per_mp": gflops, "mvox_per_s": mvox,
            "peak_fraction": None if gflops is None else gflops * mvox / peak,
            "memory_format": "channels_last" if prefers_channels_last(predictor) else "contiguous",
            "tiled_vs_whole": tiled}  # fmt: skip


def amp_supported(device: str | torch.device) -> bool:
    """Whether AMP is worth timing on ``device``: CUDA, or a CPU with native bfloat16 (oneDNN).

    Without native bfloat16 the CPU emulates it, tens of times slower than float32: timing that
    measures the emulation, not the network (and takes most of the benchmark's time).
    """
    dev = torch.device(device)
    if dev.type != "cpu":
        return True
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
    except OSError:
        names = []
    return names[0] if names else platform.processor() or platform.machine()


def _precision(dev: torch.device, amp: bool) -> str:
    return ("float16 AMP" if dev.type == "cuda" else "bfloat16 AMP") if amp else "float32"


MEMORY_CHILD = r"""
import json, sys, torch
from monai.data import MetaTensor
from mrsr.benchmark import _methods
from mrsr.inference import super_resolve
name, scale, h, w, d = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
predictor, channels = _methods(scale, [] if name in ("zerofill", "bicubic") else [name])[name]
super_resolve(MetaTensor(torch.rand(1, h, w, 2)), predictor, scale, in_channels=channels)  # warm-up
volume = MetaTensor(torch.rand(1, h, w, d))
def status(key):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(key)) / 1024
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # resets the peak RSS (VmHWM) to the current RSS: the imports' peak does not count
before = status("VmRSS")
super_resolve(volume, predictor, scale, in_channels=channels)
print(json.dumps({"peak_mib": status("VmHWM"), "before_mib": before}))
"""


def peak_memory_mib(name: str, predictor: Any, in_channels: int, scale: int, device: str) -> float:
    """Peak memory (MiB) of super-resolving the LR of a 256x256x108 HR volume at ``scale``.

    CUDA: the allocator's peak during the run. CPU (Linux): a fresh process's peak RSS over the run
    minus its RSS before (the input volume is already there; the output and the working memory
    count; the libraries and the network are loaded before).
    """
    from monai.data import MetaTensor

    from mrsr.inference import super_resolve

    h, w, d = MEMORY_HR_SHAPE[0] // scale, MEMORY_HR_SHAPE[1] // scale, MEMORY_HR_SHAPE[2]
    if device.startswith("cuda"):
        dev = torch.device(device)
        volume = MetaTensor(torch.rand(1, h, w, d))
        torch.cuda.reset_peak_memory_stats(dev)
        start = torch.cuda.memory_allocated(dev)
        super_resolve(volume, predictor, scale, in_channels=in_channels, device=dev)
        return (torch.cuda.max_memory_allocated(dev) - start) / 2**20
    cmd = [sys.executable, "-c", MEMORY_CHILD, name, str(scale), str(h), str(w), str(d)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return result["peak_mib"] - result["before_mib"]


def _header(config: BenchmarkConfig, peaks: dict[tuple[str, bool], float]) -> str:
    from mrsr.data.datasets.real_data import REAL_DATA_MANIFEST

    manifest = Path(config.manifest or REAL_DATA_MANIFEST)
    cpu = _cpu_name()
    lines = [
        "# mrsr benchmark",
        "",
        f"Command: `mrsr benchmark {' '.join(sys.argv[2:]) if sys.argv[1:2] == ['benchmark'] else ''}`".rstrip() + "",
        "",
        f"- Data: `{manifest.name}` [{config.section}]; each HR volume normalised (0.5th/99.5th percentiles), cropped "
        "in-plane to a multiple of the scale and k-space truncated in-plane (no window, no noise); "
        "scores by `mrsr.metrics.evaluate`: the HR volume's data range, `scale` border pixels cropped, "
        "foreground = HR above 10% of its range.",
        "- `+dc`: with data consistency, its band-limit guard and the bundle's `detail` (the share of the detail it "
        "adds beyond the input's band that it keeps; docs/CONVENTIONS.md), the default of `mrsr infer` and the "
        "bundles; `+dc +adapt`: after test-time adaptation too.",
        f"- Machine: {cpu}, {torch.get_num_threads()} CPU threads, "
        + (torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU")
        + f"; torch {torch.__version__}.",
        f"- Throughput: `super_resolve` of a random {'x'.join(map(str, config.speed_volume))} LR volume (whole "
        f"slices; each network's measured slice batch and memory format), median of {config.repeats} runs after "
        f"{config.warmup} warm-up; output Mvoxel/s. Tiled / whole: the same in float32 with {config.tile[0]}x"
        f"{config.tile[0]} LR tiles at overlap {config.tile[1]} (`even_tiles`, core kept), whole-slice time over "
        "tiled time (>= 0.9 is within 10%).",
        "- AMP: mean PSNR change: the networks' scores with AMP minus in float32, on the same volumes."
        + "".join(
            f" Not measured on {dev}: no native bfloat16 (emulated, far slower than float32)."
            for dev in config.devices
            if config.amp and not amp_supported(dev)
        ),
        "- Convolution peak (3x3, 64 -> 64, 8 x 128 x 128, channels-last): "
        + ", ".join(f"{dev} {_precision(torch.device(dev), amp)} {g:.1f} GFLOP/s" for (dev, amp), g in peaks.items())
        + ".",
        f"- Peak memory: super-resolving the LR of a {'x'.join(map(str, MEMORY_HR_SHAPE))} HR volume.",
    ]
    return "\n".join(lines)


def _fmt(value: Any, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def format_markdown(header: str, quality: list[dict], speed: list[dict]) -> str:
    """The benchmark's Markdown: header, per-image quality and margins over zerofill (per scale), speed table."""
    out = [header, ""]
    for scale in sorted({r["scale"] for r in quality}):
        rows = [r for r in quality if r["scale"] == scale]
        volumes = list(dict.fromkeys(r["volume"] for r in rows))
        methods = list(dict.fromkeys(r["method"] for r in rows))
        table = {(r["method"], r["volume"]): r for r in rows}
        out += [f"## Quality at x{scale}", "", "PSNR (dB) / SSIM of each test image; the foreground scores and the "
                "slice-mean PSNR are in benchmark.csv.", "",
                "| method | " + " | ".join(volumes) + " | mean PSNR | mean SSIM | AMP: mean PSNR change |",
                "|---|" + "---:|" * (len(volumes) + 3)]  # fmt: skip
        for method in methods:
            mine = [table[method, v] for v in volumes]
            amp = [m["psnr_amp"] - m["psnr"] for m in mine if "psnr_amp" in m]
            out.append(f"| {method} | " + " | ".join(f"{m['psnr']:.2f} / {m['ssim']:.4f}" for m in mine)
                       + f" | {np.mean([m['psnr'] for m in mine]):.2f} | {np.mean([m['ssim'] for m in mine]):.4f} | "
                       f"{_fmt(float(np.mean(amp)) if amp else None, '+.3f')} |")  # fmt: skip
        out += ["", f"### Margins over zerofill at x{scale}", "",
                "PSNR minus zerofill's PSNR (dB) on each test image; `+dc +adapt` cells add the adaptation's choice "
                "and its time.", "",
                "| method | " + " | ".join(volumes) + " | mean | worst |",
                "|---|" + "---:|" * (len(volumes) + 2)]  # fmt: skip
        for method in methods:
            if method == "zerofill":
                continue
            margins = [table[method, v]["psnr"] - table["zerofill", v]["psnr"] for v in volumes]
            cells = []
            for margin, v in zip(margins, volumes):
                r = table[method, v]
                note = f" ({r['adapt_choice']}, {float(r['adapt_seconds']):.0f} s)" if r.get("adapt_choice") else ""
                note = " (too small: default)" if r.get("adapt_choice") == TOO_SMALL else note
                cells.append(f"{margin:+.2f}{note}")
            out.append(f"| {method} | " + " | ".join(cells) + f" | {np.mean(margins):+.2f} | {min(margins):+.2f} |")
        out.append("")
    out += ["## Speed and cost", "",
            "| method | scale | device | precision | memory format | params | GFLOPs / output MP | output Mvoxel/s | "
            "% of conv peak | tiled / whole speed | peak memory (MiB) |",
            "|---|---:|---|---|---|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    for r in speed:
        out.append(f"| {r['method']} | x{r['scale']} | {r['device']} | {r['precision']} | {r['memory_format']} | "
                   f"{r['params']:,} | {_fmt(r['gflops_per_mp'], '.1f')} | {r['mvox_per_s']:.3f} | "
                   f"{_fmt(None if r['peak_fraction'] is None else 100 * r['peak_fraction'], '.1f')} | "
                   f"{_fmt(r.get('tiled_vs_whole'), '.2f')} | {_fmt(r.get('peak_memory_mib'), '.0f')} |")  # fmt: skip
    return "\n".join(out) + "\n"


def _figures(out: Path, quality: list[dict], speed: list[dict], panel: dict, scale: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.5))
    fast = {r["method"]: r["mvox_per_s"] for r in speed if r["scale"] == scale and r["precision"] == "float32"
            and r["device"] == speed[0]["device"]}  # fmt: skip
    for method, mvox in fast.items():
        psnr = float(np.mean([r["psnr"] for r in quality if r["method"] == method and r["scale"] == scale]))
        ax.scatter(mvox, psnr)
        ax.annotate(method, (mvox, psnr), textcoords="offset points", xytext=(4, 4))
    ax.set_xscale("log")
    ax.set_xlabel(f"output Mvoxel/s ({speed[0]['device']}, float32)")
    ax.set_ylabel(f"mean test PSNR at x{scale} (dB)")
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / "quality_vs_speed.png", dpi=120)
    plt.close(fig)

    methods = [m for m in panel if m != "hr"]
    hr = panel["hr"]
    vmin, vmax = np.percentile(hr, [0.5, 99.5])
    fig, axes = plt.subplots(2, len(methods) + 1, figsize=(2.6 * (len(methods) + 1), 5.4))
    axes[0, 0].imshow(hr.T, cmap="gray", vmin=vmin, vmax=vmax)
    axes[0, 0].set_title("HR")
    axes[1, 0].axis("off")
    for i, method in enumerate(methods, start=1):
        axes[0, i].imshow(panel[method].T, cmap="gray", vmin=vmin, vmax=vmax)
        axes[0, i].set_title(method)
        axes[1, i].imshow(np.abs(panel[method] - hr).T * 4, cmap="magma", vmin=0, vmax=vmax - vmin)
        axes[1, i].set_title("|error| x4")
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"x{scale}, middle slice of the first test volume")
    fig.tight_layout()
    fig.savefig(out / "panel.png", dpi=110)
    plt.close(fig)


def run_benchmark(config: BenchmarkConfig, progress=print) -> str:
    """Measure everything, write the outputs; returns the Markdown."""
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    peaks = {}
    for device in config.devices:
        for amp in (False, True) if config.amp and amp_supported(device) else (False,):
            progress(f"convolution peak: {device}, {_precision(torch.device(device), amp)}")
            peaks[(device, amp)] = conv_peak_gflops(device, amp, config.repeats)
    quality, speed, panel = [], [], {}
    for scale in config.scales:
        methods = _methods(scale, config.bundles)
        progress(f"quality at x{scale}: {', '.join(methods)}")
        rows, first = quality_rows(config, scale, methods)
        quality += rows
        panel = panel or first
        for name, (predictor, channels) in methods.items():
            for (device, amp), peak in peaks.items():
                progress(f"speed at x{scale}: {name}, {device}, {_precision(torch.device(device), amp)}")
                row = speed_row(name, predictor, channels, scale, device, amp, config, peak)
                if config.memory and not amp and scale == config.scales[0]:
                    row["peak_memory_mib"] = peak_memory_mib(name, predictor, channels, scale, device)
                speed.append(row)
    markdown = format_markdown(_header(config, peaks), quality, speed)
    (out / "benchmark.md").write_text(markdown)
    with open(out / "benchmark.csv", "w", newline="") as f:
        keys = list(dict.fromkeys(k for r in quality + speed for k in r))
        writer = csv.DictWriter(f, fieldnames=["table", *keys])
        writer.writeheader()
        for table, rows in (("quality", quality), ("speed", speed)):
            for r in rows:
                writer.writerow({"table": table, **r})
    _figures(out, quality, speed, panel, config.scales[0])
    if config.docs:  # the Markdown and the figures next to it, linked
        docs = Path(config.docs)
        docs.parent.mkdir(parents=True, exist_ok=True)
        figures = []
        for png in ("quality_vs_speed.png", "panel.png"):
            shutil.copyfile(out / png, docs.parent / f"benchmark_{png}")
            figures.append(f"![{png[:-4].replace('_', ' ')}](benchmark_{png})")
        docs.write_text(markdown + "\n## Figures\n\n" + "\n\n".join(figures) + "\n" + kept_sections(docs))
    return markdown


# what the other benchmark scripts write into the same page, below this line, survives a new run
KEEP_MARKER = "<!-- sections below come from other benchmarks: mrsr benchmark keeps them -->"


def kept_sections(docs: Path) -> str:
    """The part of an existing ``docs`` page from :data:`KEEP_MARKER` on ("" without one), to write back."""
    text = docs.read_text() if docs.is_file() else ""
    at = text.find(KEEP_MARKER)
    return "\n" + text[at:] if at >= 0 else ""
