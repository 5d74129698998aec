"""Choose each bundle's ``detail`` (the share of its added detail it keeps) on validation, worst image first.

    python benchmarks/detail.py [--bundles msrn wasa durn iconet casnet] [--scales 2 4] [--threads 2]
                                [--weights runs/iconet_x2/model_best.pt ...]
                                [--sections validation validation_extra]
                                [--markdown detail.md]

An SR network adds detail beyond its input's k-space band. Where the scan holds such detail, that is
the gain; where it does not (a scan reconstructed on a finer grid than it was acquired on, whose detail
ends just beyond what the LR keeps), all of it is error, and nothing in the LR image tells the two
apart. ``super_resolve(..., detail=d)`` keeps ``d`` of it: wrong detail then costs ``d²`` of its error,
right detail keeps ``d (2 - d)`` of its gain.

Each validation image (the manifest's "validation" and "validation_extra" sections; the test section decides
nothing) is scored as it is and "acquired" with its detail ending at 1.1 and at 1.4 times the LR band's edge on
both in-plane axes
(:func:`~mrsr.transforms.bandlimit.zero_filled_acquisition` with a fraction ``ends / scale`` of the
samples: complex noise in the band, zero-filled back, magnitude, rounded), degraded as usual
(:func:`mrsr.bundle.evaluation.held_out_pairs`), and super-resolved by each bundle with data consistency
(the default output) once; each ``detail`` of the grid is applied to that output. Cells: the margin over
zerofill in dB. The chosen ``detail`` has the best worst margin over all images and variants (the
do-no-harm goal is per image); a tie within 0.01 dB goes to the higher mean.

``--weights`` scores trained weights (as ``mrsr train`` writes them) next to the bundles, each at its own
scale, so that retrained candidates are compared with the shipped weights by the same rule, each at its
own best share.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from mrsr.bundle import load_bundle_network
from mrsr.bundle.evaluation import held_out_pairs
from mrsr.checkpoint import load_network
from mrsr.engines.data import VolumePairDataset
from mrsr.errors import MrsrError
from mrsr.inference import super_resolve
from mrsr.metrics import evaluate
from mrsr.networks.baselines import ZeroFill
from mrsr.transforms.bandlimit import scale_detail, zero_filled_acquisition

DETAILS = (1.0, 0.875, 0.75, 0.625, 0.5, 0.375, 0.25)
ENDS = (1.1, 1.4)  # where the variants' detail ends, in units of the LR band's edge


def variants(pair: dict, scale: int) -> dict[str, dict]:
    """The held-out pair as it is, and with its HR's detail ending at each of :data:`ENDS` (both in-plane axes)."""
    out = {"as is": pair}
    for ends in ENDS:
        hr = pair["label"]
        for axis in (1, 2):
            hr = zero_filled_acquisition(hr, axis, ends / scale, seed=axis)
        out[f"ends {ends:g}"] = VolumePairDataset([hr], scale)[0]
    return out


def margins(pair: dict, network, channels: int, scale: int) -> list[float]:
    """Margin over zerofill (dB) of the default output at each of :data:`DETAILS`.

    ``super_resolve(..., detail=d)`` is :func:`~mrsr.transforms.bandlimit.scale_detail` of this output (the
    test in tests/test_inference.py checks it), so one network run serves every ``d``.
    """
    lr, hr = pair["image"], pair["label"]
    zerofill = evaluate(super_resolve(lr, ZeroFill(scale=scale), scale, slice_axis=2), hr, border=scale).psnr
    out = super_resolve(lr, network, scale, slice_axis=2, in_channels=channels, data_consistency=True).as_tensor()
    size = list(lr.shape[1:3])
    return [evaluate(scale_detail(out, size, [1, 2], d), hr, border=scale).psnr - zerofill for d in DETAILS]


def choose(table: dict[str, list[float]]) -> float:
    """The detail with the best worst margin over the table's columns; within 0.01 dB, the best mean."""
    worst = [min(column[i] for column in table.values()) for i in range(len(DETAILS))]
    mean = [sum(column[i] for column in table.values()) / len(table) for i in range(len(DETAILS))]
    best = max(worst)
    return max((mean[i], DETAILS[i]) for i in range(len(DETAILS)) if worst[i] >= best - 0.01)[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundles", nargs="+", default=["msrn", "wasa", "durn", "iconet", "casnet"])
    parser.add_argument("--scales", nargs="+", type=int, default=[2, 4])
    parser.add_argument("--weights", nargs="+", type=Path, default=[], help="trained weights to score too")
    parser.add_argument("--sections", nargs="+", default=["validation", "validation_extra"])
    parser.add_argument("--manifest", default="data_manifests/real_data.json")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    weights = {}  # each file read once, whatever the number of scales
    for path in args.weights:
        try:
            network, _, kwargs = load_network(path)
        except MrsrError as err:
            raise SystemExit(f"detail.py: error: {err}") from None
        if kwargs.get("scale") not in args.scales:
            print(f"{path}: weights for x{kwargs.get('scale')}, not among --scales; skipped", flush=True)
        weights[str(path)] = (network, kwargs.get("in_channels", 1), kwargs.get("scale"))
    lines = []
    for scale in args.scales:
        pairs = {f"{image} {v}": p for section in args.sections
                 for image, pair in held_out_pairs(args.manifest, scale, section)
                 for v, p in variants(pair, scale).items()}  # fmt: skip
        models = {name: load_bundle_network(name, scale) for name in args.bundles}
        models.update({path: (net, channels) for path, (net, channels, s) in weights.items() if s == scale})
        for name, (network, channels) in models.items():
            table = {column: margins(pair, network, channels, scale) for column, pair in pairs.items()}
            chosen = choose(table)
            header = "| detail | " + " | ".join(table) + " | mean | worst |"
            lines += [f"**{name} x{scale}**: detail {chosen:g}", "", header, "|---" * (len(table) + 3) + "|"]
            for i, d in enumerate(DETAILS):
                cells = [column[i] for column in table.values()]
                mark = "**" if d == chosen else ""
                lines.append(f"| {mark}{d:g}{mark} | " + " | ".join(f"{c:+.2f}" for c in cells)
                             + f" | {sum(cells) / len(cells):+.2f} | {min(cells):+.2f} |")  # fmt: skip
            lines.append("")
            print("\n".join(lines[-len(DETAILS) - 5 :]), flush=True)
    if args.markdown:
        args.markdown.write_text("\n".join(lines))


if __name__ == "__main__":
    main()
