"""Inference memory: peak working memory of `super_resolve` for volumes with few and many slices.

    python benchmarks/inference_memory.py [--network bicubic] [--slices 16 64 256]

Each volume runs in its own process. Peak RSS (ru_maxrss) minus the RSS just before the call
(input already in memory) minus the output volume itself is the working memory; it should not
grow with the number of slices. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import torch

CHILD = r"""
import json, resource, sys, torch
from monai.data import MetaTensor
from mrsr.inference import super_resolve
from mrsr.networks import get_baseline
name, h, w, d, scale = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
roi = None if sys.argv[6] == 'none' else (int(sys.argv[6]),) * 2
vol = MetaTensor(torch.rand(1, h, w, d))
from mrsr.networks import SR_NETWORKS, get_network
predictor = get_network(name, preset="small", scale=scale) if name in SR_NETWORKS else get_baseline(name, scale)
super_resolve(MetaTensor(torch.rand(1, h, w, 2)), predictor, scale)  # warm-up: libraries, caches
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
"""
CHILD += r"""
def rss_kib():
    with open('/proc/self/status') as f:
        return next(int(l.split()[1]) for l in f if l.startswith('VmRSS'))
now = rss_kib()
out = super_resolve(vol, predictor, scale, slice_batch=8, roi_size=roi)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"rss_before_mib": now / 1024, "peak_mib": peak / 1024,
                  "input_mib": vol.numel() * 4 / 2**20, "output_mib": out.numel() * 4 / 2**20}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--network", default="bicubic", help="zerofill, bicubic or a network (small preset)")
    parser.add_argument("--size", type=int, nargs=2, default=(256, 256), help="LR in-plane size")
    parser.add_argument("--slices", type=int, nargs="+", default=[16, 64, 256], help="numbers of slices to try")
    parser.add_argument("--scale", type=int, default=2)
    parser.add_argument("--roi", type=int, help="square tile size for sliding-window inference (default: whole slices)")
    args = parser.parse_args()
    h, w = args.size
    print(
        f"{args.network}, LR {h}x{w}xD -> SR {h * args.scale}x{w * args.scale}xD, slice batch 8, "
        f"roi {args.roi or 'whole slice'}, CPU, torch {torch.__version__}\n"
    )
    print("| slices D | input (MiB) | output (MiB) | peak RSS (MiB) | working memory (MiB) |")
    print("|---:|---:|---:|---:|---:|")
    for d in args.slices:
        child = [args.network, str(h), str(w), str(d), str(args.scale), str(args.roi or "none")]
        done = subprocess.run([sys.executable, "-c", CHILD, *child], capture_output=True, text=True, check=True)
        r = json.loads(done.stdout.strip().splitlines()[-1])
        working = r["peak_mib"] - r["rss_before_mib"] - r["output_mib"]
        print(f"| {d} | {r['input_mib']:.0f} | {r['output_mib']:.0f} | {r['peak_mib']:.0f} | {working:.0f} |")


if __name__ == "__main__":
    main()
