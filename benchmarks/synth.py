"""Speed and sharpness of the synthetic MR generator (mrsr.data.synth).

    python benchmarks/synth.py [--threads 1] [--samples 40] [--repeats 5] [--energy]

Prints a Markdown table of samples/s (median of ``--repeats`` runs of ``--samples`` items each, after
a warm-up) for 2D and 2.5D slab sizes. A training DataLoader needs the generator well above the
network's samples/s, so it is measured on one thread, as one worker gets. The label sources are the
MNI152 tissue maps and k-means maps of the MNI152 T1 (nilearn), or, without nilearn, a phantom of
soft concentric shells.

``--energy`` adds the fraction of in-plane spectral energy above half the Nyquist frequency
(:func:`mrsr.data.synth.high_band_energy`) of synthetic slabs, with and without noise, against
real slices: the MNI152 T1 template and mrsr's bundled T1 head scan.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from mrsr.data import load_volume, sample_path
from mrsr.data.synth import SynthMRDataset, default_maps, high_band_energy, mni152_t1
from mrsr.errors import MrsrError

SIZES = ((64, 64, 1), (96, 96, 5), (160, 160, 1))


def phantom_maps(size: int = 128) -> torch.Tensor:
    """(3, size, size, size) soft shells (CSF outside GM outside WM) with a wavy cortex, summing to at most 1."""
    axis = torch.linspace(-1, 1, size)
    x, y, z = torch.meshgrid(axis, axis, axis, indexing="ij")
    r = torch.sqrt(x * x + y * y + z * z) + 0.04 * torch.sin(20 * torch.atan2(y, x)) * torch.cos(9 * z)
    edges = [torch.sigmoid((b - r) / 0.01) for b in (0.8, 0.7, 0.5)]  # brain, inside CSF, inside GM
    return torch.stack([edges[0] - edges[1], edges[1] - edges[2], edges[2]])


def label_sources() -> tuple[list[torch.Tensor], str]:
    try:
        return default_maps(), "MNI152 tissue maps + k-means maps of the MNI152 T1"
    except MrsrError:
        return [phantom_maps()], "phantom shells (nilearn not installed)"


def samples_per_second(dataset: SynthMRDataset, samples: int, repeats: int) -> float:
    dataset[0]  # warm-up: caches, first-call allocations
    rates = []
    for r in range(repeats):
        start = time.perf_counter()
        for i in range(samples):
            dataset[r * samples + i]
        rates.append(samples / (time.perf_counter() - start))
    return statistics.median(rates)


def energy_table(maps: list[torch.Tensor], count: int) -> None:
    print("\n| images | high-band energy (|k| > 0.25 cyc/px) |")
    print("|---|---:|")
    for noise, label in ((True, "synthetic 96x96x5, default"), (False, "synthetic 96x96x5, no noise (snr_range=None)")):
        kwargs = {} if noise else {"snr_range": None}
        dataset = SynthMRDataset(maps, count, spatial_size=(96, 96, 5), **kwargs)
        print(f"| {label} | {np.mean([high_band_energy(dataset[i]) for i in range(count)]):.4f} |")
    try:
        t1 = mni152_t1()
        print(f"| MNI152 T1 template, all axial slices | {high_band_energy(t1):.4f} |")
        crops = t1[:, 50:146, 68:164, 40:150]  # 96x96 in-plane, on the brain
        print(f"| MNI152 T1 template, central 96x96 of axial slices 40-149 | {high_band_energy(crops):.4f} |")
    except MrsrError:
        print("| MNI152 T1 template | (nilearn not installed) |")
    print(f"| bundled T1 head scan (2x2x3 mm, axial slices) | {high_band_energy(load_volume(sample_path())):.4f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: what one DataLoader worker gets)")
    parser.add_argument("--samples", type=int, default=40, help="items per timed run")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per size (median reported)")
    parser.add_argument("--energy", action="store_true", help="also print the high-band energy comparison")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    maps, source = label_sources()
    print(f"label sources: {source}; torch threads {torch.get_num_threads()}; median of {args.repeats} runs of "
          f"{args.samples} items\n")  # fmt: skip
    print("| spatial size | samples/s | ms/sample |")
    print("|---|---:|---:|")
    for size in SIZES:
        rate = samples_per_second(SynthMRDataset(maps, 10**6, spatial_size=size), args.samples, args.repeats)
        print(f"| {size} | {rate:.0f} | {1000 / rate:.1f} |")
    if args.energy:
        energy_table(maps, args.samples)


if __name__ == "__main__":
    main()
