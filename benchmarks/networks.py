"""Parameters, GFLOPs and CPU throughput of every registered SR network (markdown table).

    python benchmarks/networks.py                       # all SR networks, presets default and small, x2
    python benchmarks/networks.py --networks msrn durn --presets small --scale 4 --json out.json

The table is the one ``mrsr networks`` prints (:func:`mrsr.networks.summary.main`); see that module
for how each column is measured.
"""

from __future__ import annotations

import argparse
import json

from mrsr.networks.summary import main  # mrsr installed (pip install -e .), as the other benchmarks assume


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--networks", nargs="+", default=None, help="registry names (default: every SR network)")
    p.add_argument("--presets", nargs="+", default=["default", "small"])
    p.add_argument("--scale", type=int, default=2)
    p.add_argument("--flop-size", type=int, default=256, help="LR slice side of the FLOP count")
    p.add_argument("--flop-budget", type=float, default=250.0, help="GFLOPs per timed forward (picks the timed size)")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    p.add_argument("--no-timing", action="store_true", help="parameters and FLOPs only")
    p.add_argument("--json", default=None, help="also write the rows to this JSON file")
    return p.parse_args(argv)


if __name__ == "__main__":
    args = parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    rows = main(
        networks=args.networks,
        presets=args.presets,
        scale=args.scale,
        flop_size=args.flop_size,
        flop_budget=args.flop_budget,
        repeats=args.repeats,
        warmup=args.warmup,
        time_it=not args.no_timing,
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
