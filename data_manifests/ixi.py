"""Write the IXI Hammersmith Hospital (HH) manifest from your copy of IXI.

    python data_manifests/ixi.py --ixi-root ~/data/IXI-T1 --contrast T1 --out data_manifests/ixi_hh_t1.json

Train with ``--manifest data_manifests/ixi_hh_t1.json --data-root ~/data/IXI-T1``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from mrsr.data.datasets.ixi import IXI_CONTRASTS, ixi_datalist
from mrsr.data.manifest import manifest_parser, run_manifest_cli

SPLIT = (
    "Split: the 185 HH subjects sorted by subject id; the first 150 are training, of which the last --num-val "
    "(default 10) are held out as validation; the remaining 35 are test. Paths are relative to --ixi-root."
)


def build_parser():
    parser = manifest_parser("ixi.py", f"IXI HH T1/T2/PD manifest (MONAI datalist). {SPLIT}")
    parser.add_argument("--ixi-root", required=True, help="folder holding IXInnn-HH-nnnn-<contrast>.nii.gz files")
    parser.add_argument("--contrast", default="T1", choices=IXI_CONTRASTS, type=str.upper, help="IXI contrast")
    parser.add_argument("--num-val", type=int, default=10, help="training subjects held out as validation")
    parser.add_argument(
        "--allow-partial",
        action="store_true",
        help="split a copy without all 185 HH volumes in the same proportion (not the published split)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    def build(args):
        return ixi_datalist(args.ixi_root, args.contrast, args.num_val, args.allow_partial)

    return run_manifest_cli(build_parser(), build, argv)


if __name__ == "__main__":
    sys.exit(main())
