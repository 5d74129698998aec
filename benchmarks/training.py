"""Training throughput: samples per second of every network, small and default presets, 2D and 2.5D.

Each row runs the real training engine (:func:`mrsr.engines.trainer.build_training`: the MONAI
``SupervisedTrainer`` or ``MedGANTrainer``, the network's own loss, Adam) on real patch pairs
(the bundled T1 head, k-space truncated per slice by :class:`mrsr.engines.data.PairedPatchDataset`)
and times whole iterations, data included: ``warmup`` steps, then ``steps`` timed steps, repeated
``repeats`` times; the median step time gives samples/s.

    python benchmarks/training.py                       # every network, small + default, 2D + 2.5D
    python benchmarks/training.py --networks msrn durn --presets small --batch-size 16
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch
from ignite.engine import Events
from torch.utils.data import DataLoader

from mrsr.engines import TrainConfig
from mrsr.engines.data import PairedPatchDataset, SampleSampler
from mrsr.engines.distributed import DistContext
from mrsr.engines.trainer import build_training
from mrsr.networks import get_spec

# no VGG-19 weights offline: the losses with VGG terms are timed without them (a loss kind -> its options)
NO_VGG_LOSS = {"medgan": {"style_weight": 0, "content_weight": 0}}


def _volume() -> torch.Tensor:
    from mrsr.data import load_volume, sample_path
    from mrsr.transforms import RobustNormalize

    return RobustNormalize()(load_volume(sample_path()))


def time_training(network: str, preset: str, neighbours: int, args: argparse.Namespace, volume: torch.Tensor) -> float:
    """Median seconds per training step (``args.steps`` timed steps after ``args.warmup``)."""
    config = TrainConfig(
        network, "-", preset=preset, neighbours=neighbours, scale=args.scale, patch_size=args.patch_size,
        batch_size=args.batch_size, progress=False, device=args.device,
        loss=NO_VGG_LOSS.get(get_spec(network).loss, {}),
    )  # fmt: skip
    steps = args.warmup + args.steps
    dataset = PairedPatchDataset([volume], args.scale, args.patch_size, neighbours, steps * args.batch_size, seed=0)
    loader = DataLoader(dataset, batch_size=args.batch_size, sampler=SampleSampler(dataset), drop_last=True)
    ctx = DistContext(device=torch.device(args.device))
    medians = []
    for _ in range(args.repeats):
        run = build_training(config, ctx, loader, epochs=1, steps=steps)
        stamps: list[float] = []
        run.trainer.add_event_handler(Events.ITERATION_COMPLETED, lambda e, s=stamps: s.append(time.perf_counter()))
        run.trainer.run()
        medians.append(statistics.median(b - a for a, b in zip(stamps[args.warmup - 1 : -1], stamps[args.warmup :])))
    return statistics.median(medians)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--networks", nargs="+", default=["durn", "wasa", "iconet", "msrn", "casnet"])
    p.add_argument("--presets", nargs="+", default=["small", "default"])
    p.add_argument("--neighbours", nargs="+", type=int, default=[0, 1], help="k: 0 is 2D, 1 is 2.5D (3 channels)")
    p.add_argument("--scale", type=int, default=2)
    p.add_argument("--patch-size", type=int, default=32, help="LR patch side")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = p.parse_args(argv)
    if args.warmup < 1 or args.steps < 1:
        p.error("--warmup and --steps must be >= 1")
    volume = _volume()
    print(
        f"training throughput: x{args.scale}, LR patch {args.patch_size} (HR {args.scale * args.patch_size}), "
        f"batch {args.batch_size}, {args.device}, {torch.get_num_threads()} threads, fp32; median of "
        f"{args.steps} steps after {args.warmup} warm-up, x{args.repeats}\n"
    )
    print("| network | preset | input | s/step | samples/s |")
    print("|---|---|---|---:|---:|")
    for net in args.networks:
        for preset in args.presets:
            for k in args.neighbours:
                sec = time_training(net, preset, k, args, volume)
                kind = "2D" if k == 0 else f"2.5D ({2 * k + 1} ch)"
                print(f"| {net} | {preset} | {kind} | {sec:.3f} | {args.batch_size / sec:.1f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
