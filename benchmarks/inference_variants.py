"""Which inference options pay off: throughput of every bundle network under each variant, as ratios.

    python benchmarks/inference_variants.py [--bundles msrn wasa] [--volume 64 64 16] [--repeats 5] [--compile]

Each row: ``mrsr.inference.super_resolve`` of a random LR volume (x2, the bundle's x2 weights),
median of ``--repeats`` runs after one warm-up, in output Mvoxel/s and as a ratio to the default
(float32, contiguous, 8 slices per batch, whole slices). Variants: channels_last; 1 and 32 slices
per batch; AMP (bfloat16 on CPU, float16 on CUDA); sliding-window tiles of 32x32 LR pixels (must stay
within 10% of whole slices); ``torch.compile`` (with ``--compile``: slow to build on a CPU).
Ratios are comparable within one run only; run on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from monai.data import MetaTensor

from mrsr.bundle import SUFFIX, list_bundles, load_bundle_network
from mrsr.inference import super_resolve


def throughput(net, volume, scale, repeats, **options) -> float:
    times = []
    for i in range(repeats + 1):
        start = time.perf_counter()
        super_resolve(volume, net, scale, **options)
        if i:
            times.append(time.perf_counter() - start)
    out_voxels = scale * volume.shape[1] * scale * volume.shape[2] * volume.shape[3]
    return out_voxels / statistics.median(times) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundles", nargs="+", help="default: every bundle")
    parser.add_argument("--volume", type=int, nargs=3, default=(64, 64, 16), help="LR volume H W D")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile")
    args = parser.parse_args()
    names = args.bundles or [b.name[: -len(SUFFIX)] for b in list_bundles()]
    volume = MetaTensor(torch.rand(1, *args.volume, generator=torch.Generator().manual_seed(0)))
    print(f"x2, LR volume {'x'.join(map(str, args.volume))}, {args.device}, {torch.get_num_threads()} threads, "
          f"torch {torch.__version__}; median of {args.repeats} after 1 warm-up\n")  # fmt: skip
    print("| network | variant | output Mvoxel/s | vs default |")
    print("|---|---|---:|---:|")
    for name in names:
        net, channels = load_bundle_network(name, 2)
        common = {"in_channels": channels, "device": args.device}
        variants = {
            "default (float32, 8 slices/batch, whole slices)": {},
            "channels_last": {},
            "1 slice per batch": {"slice_batch": 1},
            "32 slices per batch": {"slice_batch": 32},
            "AMP": {"amp": True},
            "tiles 32x32 (overlap 0.25)": {"roi_size": (32, 32)},
        }
        if args.compile:
            variants["torch.compile"] = {}
        base = None
        for variant, options in variants.items():
            fmt = torch.channels_last if variant == "channels_last" else torch.contiguous_format
            model = net.to(memory_format=fmt)  # in place: every variant sets the format it needs
            model = torch.compile(model) if variant == "torch.compile" else model
            mvox = throughput(model, volume, 2, args.repeats, **common, **options)
            base = base or mvox
            print(f"| {name} | {variant} | {mvox:.3f} | {mvox / base:.2f} |", flush=True)


if __name__ == "__main__":
    main()
