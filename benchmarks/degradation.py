"""Degradation speed: mrsr's k-space truncation against a plain numpy implementation, same run.

    python benchmarks/degradation.py [--size 256] [--repeats 5]

Prints a Markdown table of the median time of several runs (after one warm-up) and the
throughput ratio. The numpy reference is the textbook form: complex FFT over the in-plane axes,
fftshift, crop the centre, inverse FFT, rescale, magnitude.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from mrsr.transforms import KSpaceTruncate, truncated_size


def numpy_degrade(x: np.ndarray, factor: int) -> np.ndarray:
    """Plain numpy: fft2 over axes (0, 1), keep the centre, ifft2, rescale, magnitude."""
    n0, n1 = (truncated_size(s, factor) for s in x.shape[:2])
    spec = np.fft.fftshift(np.fft.fft2(x, axes=(0, 1)), axes=(0, 1))
    c0, c1 = x.shape[0] // 2 - n0 // 2, x.shape[1] // 2 - n1 // 2
    spec = spec[c0 : c0 + n0, c1 : c1 + n1]
    lr = np.fft.ifft2(np.fft.ifftshift(spec, axes=(0, 1)), axes=(0, 1))
    return np.abs(lr) * (n0 * n1) / (x.shape[0] * x.shape[1])


def median_seconds(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=256, help="edge of the cubic test volume")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per method (median reported)")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    volume = rng.random((args.size,) * 3, dtype=np.float32)
    tensor = torch.from_numpy(volume)[None]
    megavoxels = volume.size / 1e6
    print(f"volume {args.size}^3 float32, in-plane degradation (axes 0, 1), torch threads {torch.get_num_threads()}, "
          f"median of {args.repeats} runs\n")  # fmt: skip
    print("| factor | numpy (s) | mrsr (s) | numpy Mvox/s | mrsr Mvox/s | speed-up | max abs diff |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for factor in (2, 4):
        truncate = KSpaceTruncate(factor=factor, axes=(0, 1))
        t_np = median_seconds(lambda f=factor: numpy_degrade(volume, f), args.repeats)
        t_mrsr = median_seconds(lambda t=truncate: t(tensor), args.repeats)
        # the two agree except for the unpaired Nyquist bin, which mrsr splits symmetrically
        diff = float(np.abs(truncate(tensor)[0].numpy() - numpy_degrade(volume, factor)).max())
        print(f"| x{factor} | {t_np:.3f} | {t_mrsr:.3f} | {megavoxels / t_np:.1f} | {megavoxels / t_mrsr:.1f} | "
              f"{t_np / t_mrsr:.1f}x | {diff:.3g} |")  # fmt: skip


if __name__ == "__main__":
    main()
