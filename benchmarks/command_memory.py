"""Peak memory of whole commands: `mrsr infer --bundle` and `mrsr selfsr` on large volumes.

    python benchmarks/command_memory.py [--bundle msrn] [--infer-sizes 128 128 256 256 256 30 256 256 300]
        [--selfsr-sizes 256 256 256 512 512 300] [--selfsr-steps 10] [--work DIR]

Each command runs in its own process; its peak resident memory is the kernel's count for that process
(``os.wait4``). The volumes are the bundled real T1 sample resampled (trilinear) to each size at 1 mm:

- ``mrsr infer --bundle B --scale 2`` takes the volume as its input and writes twice its in-plane size: the
  default sizes give outputs of 256 x 256 x 256, 512 x 512 x 30 and 512 x 512 x 300.
  Working memory is the peak minus the input and output volumes (float32) minus the imports' baseline
  (torch, MONAI, mrsr, measured in a process that only imports them); it should not grow with the
  number of slices.
- ``mrsr selfsr`` takes the volume given as 4 mm box slices along its last axis (made with ``mrsr degrade``)
  and writes it back on the size's grid, trained for ``--selfsr-steps`` steps (memory does not depend on
  the number of steps).

Prints a Markdown table (docs/BENCHMARKS.md, "Memory of whole commands").
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import torch
import torch.nn.functional as F

from mrsr.data import load_volume, sample_path

MIB = 2**20


def sized_sample(shape: tuple[int, int, int], path: Path) -> Path:
    """The real T1 sample resampled to ``shape`` at 1 mm, written as float32 NIfTI."""
    vol = load_volume(sample_path()).float()[None]  # (1, 1, X, Y, Z)
    data = F.interpolate(vol.as_tensor(), size=shape, mode="trilinear", align_corners=False)[0, 0]
    nib.save(nib.Nifti1Image(data.numpy().astype(np.float32), np.eye(4)), path)
    return path


def peak_rss(cmd: list[str]) -> tuple[float, float]:
    """(peak resident memory in MiB, wall seconds) of one command run to its end; fails if it fails."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read() if proc.stderr else ""
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}): {err.strip()[-500:]}")
    return usage.ru_maxrss / 1024, time.perf_counter() - start


def mib(shape: tuple[int, ...]) -> float:
    return float(np.prod(shape)) * 4 / MIB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", default="msrn", help="bundle of `mrsr infer --bundle`")
    parser.add_argument("--infer-sizes", type=int, nargs="+", default=[128, 128, 256, 256, 256, 30, 256, 256, 300])
    parser.add_argument("--selfsr-sizes", type=int, nargs="+", default=[256, 256, 256, 512, 512, 300])
    parser.add_argument("--selfsr-steps", type=int, default=10)
    parser.add_argument("--work", help="folder for the volumes (default: a temporary one)")
    args = parser.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="mrsr-memory-"))
    work.mkdir(parents=True, exist_ok=True)
    mrsr = [sys.executable, "-m", "mrsr"]
    baseline, _ = peak_rss([sys.executable, "-c", "import torch, monai, mrsr.pipeline, mrsr.inference, mrsr.selfsr"])
    print(f"CPU, torch {torch.__version__}, {torch.get_num_threads()} threads; imports alone: {baseline:.0f} MiB\n")
    print("| command | input | output | wall (s) | peak RSS (MiB) | input + output (MiB) | working (MiB) |")
    print("|---|---|---|---:|---:|---:|---:|")

    def row(name: str, cmd: list[str], shape_in: tuple[int, ...], shape_out: tuple[int, ...]) -> None:
        peak, wall = peak_rss(cmd)
        volumes = mib(shape_in) + mib(shape_out)
        fmt = "x".join
        print(
            f"| {name} | {fmt(map(str, shape_in))} | {fmt(map(str, shape_out))} | {wall:.0f} | {peak:.0f} | "
            f"{volumes:.0f} | {peak - volumes - baseline:.0f} |",
            flush=True,
        )

    for shape in zip(*[iter(args.infer_sizes)] * 3):
        src = sized_sample(shape, work / f"t1_{'x'.join(map(str, shape))}.nii.gz")
        out = work / f"sr_{src.name}"
        cmd = [*mrsr, "infer", str(src), "-o", str(out), "--bundle", args.bundle, "--scale", "2", "--overwrite"]
        row(f"infer --bundle {args.bundle} x2", cmd, shape, (shape[0] * 2, shape[1] * 2, shape[2]))
    for shape in zip(*[iter(args.selfsr_sizes)] * 3):
        hr = sized_sample(shape, work / f"hr_{'x'.join(map(str, shape))}.nii.gz")
        thick = work / f"thick_{hr.name}"
        degrade = [*mrsr, "degrade", str(hr), "-o", str(thick), "--axes", "2", "--scale", "4",
                   "--slice-profile", "box", "--overwrite"]  # fmt: skip
        subprocess.run(degrade, check=True, stdout=subprocess.DEVNULL)
        shape_in = nib.load(thick).shape
        out = work / f"iso_{hr.name}"
        cmd = [*mrsr, "selfsr", str(thick), "-o", str(out), "--steps", str(args.selfsr_steps), "--overwrite"]
        row(f"selfsr --steps {args.selfsr_steps}", cmd, shape_in, shape)


if __name__ == "__main__":
    main()
