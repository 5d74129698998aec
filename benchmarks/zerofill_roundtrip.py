"""The zerofill baseline before and after it became the right inverse of the degradation (issue 29, item 5).

    python benchmarks/zerofill_roundtrip.py [--manifest data_manifests/real_data.json] [--section test]
                                            [--scales 2 4] [--threads 2]

Each volume of the manifest section is degraded as the benchmark and the model cards do
(:func:`mrsr.bundle.evaluation.held_out_pairs`: normalised, cropped in-plane to a multiple of the scale,
k-space truncated in-plane) and super-resolved by zero-filling through :func:`mrsr.inference.super_resolve`
(no data consistency, as baselines are scored), twice:

- ``old``: the zero-padding mrsr used before, which put half of an even LR grid's Nyquist value on each of
  the HR bins ``+n/2`` and ``-n/2`` (a local copy of the old formula, :func:`old_zero_pad_last`, kept here
  only to measure the change);
- ``new``: :class:`mrsr.networks.baselines.ZeroFill` as it is now, the pseudo-inverse of the truncation
  (that value on both bins at full weight; docs/CONVENTIONS.md).

Printed per image and scale: the LR in-plane size, the PSNR of each against the HR volume
(:func:`mrsr.metrics.evaluate`, ``scale`` border pixels cropped, as in docs/BENCHMARKS.md) and its change,
the change had the LR image been the signed truncation instead of its magnitude (``magnitude=False``), and
the round-trip error ``|KSpaceTruncate(zerofill(lr)) - lr| / |lr|`` (L2 over the volume) of each, with the
share of the old error's energy that lies on the LR grid's Nyquist row and column of k-space.

On the signed LR image the new zerofill is the orthogonal projection of the HR image onto the kept band,
so it cannot lose to the old one; on the magnitude, where truncation rings below zero next to a dark
background, the absolute value adds energy at the LR's Nyquist frequency, which the new zerofill passes on
at full weight and the old one at half.
"""

from __future__ import annotations

import argparse

import torch
from monai.data import MetaTensor

from mrsr.bundle.evaluation import held_out_pairs
from mrsr.data.datasets.real_data import REAL_DATA_MANIFEST
from mrsr.inference import super_resolve
from mrsr.metrics import evaluate
from mrsr.networks.baselines import ZeroFill
from mrsr.transforms import KSpaceTruncate


def old_zero_pad_last(x: torch.Tensor, n_out: int) -> torch.Tensor:
    """THE OLD FORMULA (before issue 29), for the "before" numbers only: zero-pad the last axis from n to
    ``n_out`` samples, halving an even input's Nyquist bin so that +n/2 and -n/2 get half of it each."""
    n = x.shape[-1]
    spec = torch.fft.rfft(x, dim=-1)
    if n_out > n and n % 2 == 0:
        spec = spec.clone()
        spec[..., -1] *= 0.5
    return torch.fft.irfft(spec, n=n_out, dim=-1) * (n_out / n)


class OldZeroFill(ZeroFill):
    """The zerofill baseline with :func:`old_zero_pad_last` (float64 inside, float32 out)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out_h, out_w = self.output_size(x.shape[2], x.shape[3])
        y = self.centre(x).double()
        y = old_zero_pad_last(y, out_w)
        y = old_zero_pad_last(y.transpose(-1, -2), out_h).transpose(-1, -2)
        return y.float()


def round_trip(sr: torch.Tensor, lr: torch.Tensor, scale: int) -> tuple[float, float]:
    """(relative L2 error of degrading ``sr`` back to ``lr``'s grid, share of its energy on the Nyquist row/column)."""
    back = KSpaceTruncate(scale, axes=(0, 1), magnitude=False)(sr.as_tensor().double())
    error = back - lr.as_tensor().double()
    relative = float(error.norm() / lr.as_tensor().double().norm())
    power = torch.fft.fft2(error, dim=(1, 2)).abs() ** 2
    h, w = error.shape[1:3]
    nyquist = torch.zeros(h, w, dtype=torch.bool)
    if h % 2 == 0:
        nyquist[h // 2] = True
    if w % 2 == 0:
        nyquist[:, w // 2] = True
    share = float(power[:, nyquist].sum() / power.sum()) if float(power.sum()) > 0 else 0.0
    return relative, share


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--manifest", default=str(REAL_DATA_MANIFEST))
    parser.add_argument("--section", default="test")
    parser.add_argument("--scales", type=int, nargs="+", default=[2, 4])
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    header = (
        "| scale | image | LR size | PSNR old | PSNR new | change (dB) | change, signed LR | round trip old "
        "| on Nyquist | round trip new |"
    )
    print(header)
    print("|---" * (header.count("|") - 1) + "|")
    for scale in args.scales:
        changes, signed_changes = [], []
        for name, pair in held_out_pairs(args.manifest, scale, args.section):
            lr, hr = pair["image"], pair["label"]
            signed = MetaTensor(KSpaceTruncate(scale, axes=(0, 1), magnitude=False)(hr.as_tensor()), meta=lr.meta)
            scores, trips = {}, {}
            for label, predictor in (("old", OldZeroFill(scale=scale)), ("new", ZeroFill(scale=scale))):
                sr = super_resolve(lr, predictor, scale, slice_axis=2, data_consistency=False)
                scores[label] = evaluate(sr, hr, border=scale).psnr
                trips[label] = round_trip(sr, lr, scale)
                sr = super_resolve(signed, predictor, scale, slice_axis=2, data_consistency=False)
                scores[label + " signed"] = evaluate(sr, hr, border=scale).psnr
            changes.append(scores["new"] - scores["old"])
            signed_changes.append(scores["new signed"] - scores["old signed"])
            size = "x".join(str(n) for n in lr.shape[1:3])
            print(f"| x{scale} | {name} | {size} | {scores['old']:.3f} | {scores['new']:.3f} | {changes[-1]:+.4f} | "
                  f"{signed_changes[-1]:+.4f} | {trips['old'][0]:.2e} | {trips['old'][1]:.0%} | "
                  f"{trips['new'][0]:.1e} |")  # fmt: skip
        mean, signed_mean = sum(changes) / len(changes), sum(signed_changes) / len(signed_changes)
        print(f"| x{scale} | mean of {len(changes)} | | | | {mean:+.4f} | {signed_mean:+.4f} | | | |")


if __name__ == "__main__":
    main()
