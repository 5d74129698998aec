"""Which inference options pay off: throughput of every bundle network under each variant, as ratios.

    python benchmarks/inference_variants.py [--bundles msrn wasa] [--slices 8] [--repeats 5] [--compile]

Input: ``--slices`` middle slices of mrsr's real T1 sample (128x128 in-plane, normalised) as the LR
volume, super-resolved x2 by :func:`mrsr.inference.super_resolve` with the bundle's x2 weights.
Each row: output Mvoxel/s (median of ``--repeats`` runs after one warm-up, the variants timed
round-robin), the ratio to the
default (float32, the network's preferred memory format and slices per batch, whole slices), and
how far the output moves from the default's (mean and max absolute difference, in % of the
normalised intensity range). Variants: channels_last and contiguous forced; 1, 2, 4, 8 and 32
slices per batch; AMP (bfloat16 on CPU, float16 on CUDA); sliding-window tiles (``even_tiles``: the fewest
tiles, shrunk evenly) with the computed area over the slice area; ``torch.compile`` (with
``--compile``: slow to build on a CPU). Ratios are comparable within one run only; run it on an
otherwise idle machine.
"""

from __future__ import annotations

import argparse
import copy
import functools
import statistics
import time
from collections.abc import Callable

import torch

from mrsr.bundle import SUFFIX, list_bundles, load_bundle_network
from mrsr.data import load_volume, sample_path
from mrsr.inference import even_tiles, super_resolve
from mrsr.transforms import RobustNormalize

TILES = ((80, 0.05), (64, 0.125), (32, 0.25))  # (LR tile side, overlap fraction)


def interleaved_seconds(
    runs: dict[str, Callable[[], torch.Tensor]], repeats: int
) -> dict[str, tuple[float, torch.Tensor]]:
    """Median seconds and output of each run, timed round-robin (one warm-up round first), so that
    drift in the machine's speed (other load, memory state) reaches every variant alike."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    outputs = {name: run() for name, run in runs.items()}  # warm-up round
    for _ in range(repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    return {name: (statistics.median(times[name]), outputs[name]) for name in runs}


def variants(size: tuple[int, int], with_compile: bool) -> dict[str, dict]:
    table = {
        "default": {},
        "channels_last": {"channels_last": True},
        "contiguous": {"channels_last": False},
        "1 slice per batch": {"slice_batch": 1},
        "2 slices per batch": {"slice_batch": 2},
        "4 slices per batch": {"slice_batch": 4},
        "8 slices per batch": {"slice_batch": 8},
        "32 slices per batch": {"slice_batch": 32},
        "AMP": {"amp": True},
    }
    for side, overlap in TILES:
        tiles, _ = even_tiles(size, (side, side), overlap)
        table[f"tiles {side}x{side}, overlap {overlap} (run as {tiles[0]}x{tiles[1]})"] = {
            "roi_size": (side, side),
            "overlap": overlap,
        }
    if with_compile:
        table["torch.compile"] = {"compile": True}
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundles", nargs="+", help="default: every bundle")
    parser.add_argument("--slices", type=int, default=8, help="middle slices of the sample to run")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile")
    args = parser.parse_args()
    names = args.bundles or [b.name[: -len(SUFFIX)] for b in list_bundles()]
    sample = RobustNormalize()(load_volume(sample_path()))
    middle = sample.shape[-1] // 2
    volume = sample[..., middle - args.slices // 2 : middle - args.slices // 2 + args.slices]
    size = tuple(volume.shape[1:3])
    print(f"x2, real T1 sample {size[0]}x{size[1]}x{volume.shape[-1]} as LR, {args.device}, "
          f"{torch.get_num_threads()} threads, torch {torch.__version__}; "
          f"median of {args.repeats} after 1 warm-up\n")  # fmt: skip
    print("| network | variant | output Mvoxel/s | vs default | mean / max abs diff (% of range) |")
    print("|---|---|---:|---:|---:|")
    out_voxels = 4 * volume[0].numel()
    for name in names:
        net, channels = load_bundle_network(name, 2)
        runs = {}
        for variant, options in variants(size, args.compile).items():
            options = dict(options)
            model = torch.compile(copy.deepcopy(net)) if options.pop("compile", False) else copy.deepcopy(net)
            options.update(in_channels=channels, device=args.device)
            runs[variant] = functools.partial(super_resolve, volume, model, 2, **options)
        results = interleaved_seconds(runs, args.repeats)
        base_seconds, base_out = results["default"]
        for variant, (seconds, out) in results.items():
            diff = (out - base_out).abs()
            print(f"| {name} | {variant} | {out_voxels / seconds / 1e6:.3f} | {base_seconds / seconds:.2f} | "
                  f"{100 * diff.mean():.3f} / {100 * diff.max():.2f} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
