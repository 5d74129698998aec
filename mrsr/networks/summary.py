"""Size, cost and CPU speed of every registered SR network: the table behind ``mrsr networks``.

For each network (``durn``, ``wasa``, ``iconet``, ``msrn``, ``casnet``) and preset (``default``,
``small``), at one scale (x2 unless asked otherwise), with one input channel:

- parameters;
- GFLOPs per 256x256 LR slice, counted by ``torch.utils.flop_counter.FlopCounterMode`` on the meta
  device (no memory, no time): 2 FLOPs per multiply-accumulate of convolutions, transposed
  convolutions, matmuls and attention; element-wise ops, pooling and PixelShuffle not counted;
- measured CPU throughput in output megapixels per second: the median of ``repeats`` timed
  forwards (after ``warmup`` untimed ones) of a batch of LR slices, eval mode, float32,
  ``torch.inference_mode``, with the current ``torch.get_num_threads()``. The timed slice is
  256x256 when a batch of two (or four) fits ``flop_budget`` GFLOPs per forward, otherwise
  128x128 or 64x64; the table says which.

>>> rows = summarise(networks=["msrn"], presets=["small"], repeats=1, warmup=0)  # doctest: +SKIP
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, TextIO

import torch

__all__ = ["count_flops", "measure_throughput", "pick_timing_size", "summarise", "format_table", "main"]

TIMING_SIZES = (256, 128, 64)
BATCHES = (4, 2)


def _build(name: str, preset: str, scale: int, device: str | torch.device = "cpu") -> torch.nn.Module:
    from mrsr.networks import get_network

    with torch.device(device):
        net = get_network(name, preset=preset, scale=scale, in_channels=1, out_channels=1)
    return net.eval()


def count_flops(net_meta: torch.nn.Module, size: int, batch: int = 1, in_channels: int = 1) -> float:
    """FLOPs of one forward of ``net_meta`` (on the meta device) on a (batch, in_channels, size, size) input.

    Args:
        net_meta: the network, built on (or moved to) the meta device.
        size: LR slice side.
        batch: batch size.
        in_channels: input channels.

    Returns:
        Total FLOPs as counted by ``FlopCounterMode`` (2 per multiply-accumulate).
    """
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.empty(batch, in_channels, size, size, device="meta")
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        net_meta(x)
    return float(counter.get_total_flops())


def pick_timing_size(
    net_meta: torch.nn.Module, flop_budget: float, sizes: Sequence[int] = TIMING_SIZES, batches: Sequence[int] = BATCHES
) -> tuple[int, int, float]:
    """The largest LR slice side (then batch) whose forward costs at most ``flop_budget`` GFLOPs.

    Returns:
        (size, batch, GFLOPs of one slice at that size); (smallest size, 1, ...) when nothing fits.
    """
    per_slice = 0.0
    for size in sizes:
        per_slice = count_flops(net_meta, size) / 1e9
        for batch in batches:
            if per_slice * batch <= flop_budget:
                return size, batch, per_slice
    return sizes[-1], 1, per_slice


def measure_throughput(
    net: torch.nn.Module, size: int, batch: int, scale: int, repeats: int = 5, warmup: int = 1, seed: int = 0
) -> tuple[float, float]:
    """Median wall time of a forward and the output megapixels per second.

    Args:
        net: the network (eval mode, CPU).
        size: LR slice side.
        batch: slices per forward.
        scale: SR factor (output side = scale * size).
        repeats: timed forwards.
        warmup: untimed forwards first.
        seed: seed of the random input.

    Returns:
        (median seconds per forward, output megapixels per second).
    """
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(batch, 1, size, size, generator=gen)
    times = []
    with torch.inference_mode():
        for _ in range(warmup):
            net(x)
        for _ in range(max(1, repeats)):
            start = time.perf_counter()
            net(x)
            times.append(time.perf_counter() - start)
    median = statistics.median(times)
    return median, batch * (scale * size) ** 2 / 1e6 / median


def summarise(
    networks: Sequence[str] | None = None,
    presets: Sequence[str] = ("default", "small"),
    scale: int = 2,
    flop_size: int = 256,
    flop_budget: float = 250.0,
    repeats: int = 5,
    warmup: int = 1,
    time_it: bool = True,
    progress: Callable[[str], None] | None = None,
) -> list[dict[str, Any]]:
    """One row per (network, preset): see the module docstring for the columns.

    Args:
        networks: registry names; None: every SR network (:data:`mrsr.networks.SR_NETWORKS`).
        presets: preset names.
        scale: SR factor.
        flop_size: LR slice side of the FLOP count.
        flop_budget: GFLOPs allowed per timed forward (chooses the timed slice size and batch).
        repeats: timed forwards per row.
        warmup: untimed forwards per row.
        time_it: measure throughput (False: parameters and FLOPs only).
        progress: called with a line as each row starts (timing takes minutes in all).

    Returns:
        A list of dicts with keys ``network, preset, params, gflops, timed_size, batch, seconds,
        mpix_per_s, note``; a network that cannot be built gets a row with ``note`` set and
        ``None`` elsewhere.
    """
    from mrsr.networks import SR_NETWORKS

    rows: list[dict[str, Any]] = []
    names = list(networks or SR_NETWORKS)
    for n, (name, preset) in enumerate([(name, preset) for name in names for preset in presets], 1):
        if progress is not None:
            doing = "building and timing" if time_it else "building"
            progress(f"[{n}/{len(names) * len(presets)}] {doing} {name} ({preset})")
        row: dict[str, Any] = dict.fromkeys(
            ("params", "gflops", "timed_size", "batch", "seconds", "mpix_per_s"), None
        )
        row.update(network=name, preset=preset, note="")
        try:
            meta = _build(name, preset, scale, "meta")
        except Exception as e:  # a network that is missing or broken gets a row that says so
            row["note"] = f"unavailable: {type(e).__name__}: {e}"
            rows.append(row)
            continue
        row["params"] = sum(p.numel() for p in meta.parameters())
        row["gflops"] = count_flops(meta, flop_size) / 1e9
        if time_it:
            size, batch, _ = pick_timing_size(meta, flop_budget)
            torch.manual_seed(0)
            net = _build(name, preset, scale, "cpu")
            seconds, mpix = measure_throughput(net, size, batch, scale, repeats, warmup)
            row.update(timed_size=size, batch=batch, seconds=seconds, mpix_per_s=mpix)
            if size != flop_size:
                row["note"] = f"timed on {size}x{size} LR slices: {flop_size}x{flop_size} exceeds the budget"
            del net
        rows.append(row)
    return rows


def _fmt(value: Any, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def format_table(rows: Sequence[dict[str, Any]], scale: int = 2, flop_size: int = 256) -> str:
    """The rows as a markdown table (with a header line saying how they were measured)."""
    header = (
        f"SR networks at x{scale}, 1 input channel; GFLOPs per {flop_size}x{flop_size} LR slice "
        f"(FlopCounterMode, 2 per MAC); CPU throughput: median forward, float32, "
        f"{torch.get_num_threads()} threads, torch {torch.__version__}\n\n"
    )
    lines = [
        f"| network | preset | params (M) | GFLOPs / {flop_size}² LR slice | timed LR slice | batch "
        "| ms / slice | output MP/s | note |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        per_slice_ms = None if r["seconds"] is None else 1e3 * r["seconds"] / r["batch"]
        size = None if r["timed_size"] is None else f"{r['timed_size']}x{r['timed_size']}"
        params = None if r["params"] is None else r["params"] / 1e6
        lines.append(
            f"| {r['network']} | {r['preset']} | {_fmt(params, '.3f')} | {_fmt(r['gflops'], '.1f')} "
            f"| {size or 'n/a'} | {_fmt(r['batch'], 'd')} | {_fmt(per_slice_ms, '.1f')} "
            f"| {_fmt(r['mpix_per_s'], '.3f')} | {r['note']} |"
        )
    return header + "\n".join(lines) + "\n"


def main(
    networks: Sequence[str] | None = None,
    presets: Sequence[str] = ("default", "small"),
    scale: int = 2,
    flop_size: int = 256,
    flop_budget: float = 250.0,
    repeats: int = 5,
    warmup: int = 1,
    time_it: bool = True,
    file: TextIO | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[dict[str, Any]]:
    """Print the markdown table of :func:`summarise` and return its rows.

    Takes keyword arguments only from Python (it never reads ``sys.argv``); the command-line
    wrapper is ``benchmarks/networks.py`` (and ``mrsr networks``).
    """
    rows = summarise(networks, presets, scale, flop_size, flop_budget, repeats, warmup, time_it, progress)
    print(format_table(rows, scale, flop_size), file=file or sys.stdout, end="")
    return rows
