"""The band-limit guard on validation images made band-limited as a scanner's zero-filled reconstruction would be.

    python benchmarks/band_limit.py [--bundles msrn wasa durn iconet casnet] [--scale 2] [--fraction 0.33]
                                    [--section validation] [--threads 1] [--markdown band_limit.md]

Scanners often acquire fewer k-space samples than the matrix they reconstruct (zero-filled
interpolation), and reformats interpolate again: along such an axis an image holds nothing beyond the
acquired band but a floor of noise and rounding, and an SR network's added detail there is error.
This script makes that case from the manifest's validation images (the test section decides
nothing): each HR volume as it is, and "acquired" with ``--fraction`` of its k-space samples along one
in-plane axis (:func:`~mrsr.transforms.bandlimit.zero_filled_acquisition`: complex noise in the
acquired band, zero-filled back, magnitude, rounded to 1/1000 of the range). Each is degraded as
usual (:func:`mrsr.bundle.evaluation.held_out_pairs`) and every bundle's default output (data
consistency on) is scored with the guard off and on
(:mod:`mrsr.transforms.bandlimit`), as the margin over zerofill in dB, with the input's band-edge
ratio per axis: the smallest over the ladder of candidate edges (the guard keeps an axis of at least
16 samples in band below 0.1). ``--fraction 0.2`` puts the LR band's edge at 0.4 of its Nyquist
frequency at x2, ``--scale 4 --fraction 0.1`` at x4.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from mrsr.bundle import load_bundle_network
from mrsr.bundle.evaluation import held_out_pairs
from mrsr.engines.data import VolumePairDataset
from mrsr.inference import super_resolve
from mrsr.metrics import evaluate
from mrsr.networks.baselines import ZeroFill
from mrsr.transforms.bandlimit import BandLimitGuard, band_edge_ratio, band_limited_dims, zero_filled_acquisition


def variants(hr: torch.Tensor, fraction: float) -> dict[str, torch.Tensor]:
    """The HR volume as it is and acquired at ``fraction`` along each in-plane axis."""
    out = {"as is": hr}
    for axis in (0, 1):
        out[f"axis {axis} at {fraction:g}"] = zero_filled_acquisition(hr, axis + 1, fraction, seed=axis)
    return out


def score(pair: dict, network, channels: int, scale: int) -> dict[str, float]:
    """PSNR of zerofill and of the network with data consistency, guard off and on.

    The guarded output is the unguarded one put through :class:`~mrsr.transforms.BandLimitGuard`, which is
    what ``super_resolve`` does with the guard on (tests/test_inference.py checks it): one network run, not two.
    """
    lr, hr = pair["image"], pair["label"]
    zerofill = super_resolve(lr, ZeroFill(scale=scale), scale, slice_axis=2)
    plain = super_resolve(lr, network, scale, slice_axis=2, in_channels=channels, data_consistency=True,
                          band_limit=False)  # fmt: skip
    guarded = BandLimitGuard(axes=(0, 1))(plain, lr)
    return {name: evaluate(sr, hr, border=scale).psnr for name, sr in
            (("zerofill", zerofill), ("off", plain), ("on", guarded))}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundles", nargs="+", default=["msrn", "wasa", "durn", "iconet", "casnet"])
    parser.add_argument("--scale", type=int, default=2)
    parser.add_argument("--fraction", type=float, default=0.33, help="acquired fraction of k-space along one axis")
    parser.add_argument("--section", default="validation")
    parser.add_argument("--manifest", default="data_manifests/real_data.json")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    networks = {name: load_bundle_network(name, args.scale) for name in args.bundles}
    lines = ["| image | variant | band-edge ratio (axis 0, 1) | kept in band | " + " | ".join(
        f"{name} off / on" for name in networks) + " |", "|" + "---|" * (4 + len(networks))]  # fmt: skip
    for image, pair in held_out_pairs(args.manifest, args.scale, args.section):
        for variant, hr in variants(pair["label"], args.fraction).items():
            vpair = VolumePairDataset([hr], args.scale)[0] if variant != "as is" else pair
            ratios = ", ".join(f"{band_edge_ratio(vpair['image'][0], d):.3f}" for d in (0, 1))
            axes = band_limited_dims(vpair["image"][0], (0, 1))
            cells = []
            for network, channels in networks.values():
                s = score(vpair, network, channels, args.scale)
                cells.append(f"{s['off'] - s['zerofill']:+.2f} / {s['on'] - s['zerofill']:+.2f}")
            lines.append(f"| {image} | {variant} | {ratios} | {', '.join(map(str, axes)) or '-'} | "
                         + " | ".join(cells) + " |")  # fmt: skip
            print(lines[-1], flush=True)
    text = "\n".join(lines) + "\n"
    print("\n" + text)
    if args.markdown:
        args.markdown.write_text(text)


if __name__ == "__main__":
    main()
