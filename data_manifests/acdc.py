"""Write the ACDC cardiac cine manifest (ED/ES frames) from your copy of ACDC.

    python data_manifests/acdc.py --acdc-root ~/data/ACDC/database --out data_manifests/acdc.json

Train with ``--manifest data_manifests/acdc.json --data-root ~/data/ACDC/database``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from mrsr.data.datasets.acdc import acdc_datalist
from mrsr.data.manifest import manifest_parser, run_manifest_cli

SPLIT = (
    "The ED and ES frames (patientNNN_frameNN.nii.gz; not the _gt labels, which entries carry as 'label', nor the "
    "_4d cine) of each patient. Split: patients 001-100 (training/) are training, of which the last --num-val "
    "(default 10: 091-100) are validation; patients 101-150 (testing/) are test. Paths are relative to --acdc-root."
)


def build_parser():
    parser = manifest_parser("acdc.py", f"ACDC cine manifest (MONAI datalist). {SPLIT}")
    parser.add_argument("--acdc-root", required=True, help="folder holding training/ and testing/ (or database/)")
    parser.add_argument("--num-val", type=int, default=10, help="training patients held out as validation")
    parser.add_argument(
        "--allow-partial", action="store_true", help="accept a copy without all 150 patients' two frames"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    def build(args):
        return acdc_datalist(args.acdc_root, args.num_val, args.allow_partial)

    return run_manifest_cli(build_parser(), build, argv)


if __name__ == "__main__":
    sys.exit(main())
