"""Convert fastMRI knee single-coil reconstructions to NIfTI and write their manifest.

    python data_manifests/fastmri_knee.py --fastmri-root ~/data/knee --nifti-dir ~/data/knee_nifti \
        --out data_manifests/fastmri_knee_singlecoil.json

Train with ``--manifest data_manifests/fastmri_knee_singlecoil.json --data-root ~/data/knee_nifti``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from mrsr.data.datasets.fastmri import fastmri_knee_datalist
from mrsr.data.manifest import manifest_parser, run_manifest_cli

SPLIT = (
    "Each singlecoil_train/*.h5 and singlecoil_val/*.h5 file's reconstruction_esc images become one NIfTI volume "
    "(X, Y, slices) under --nifti-dir (files already there are kept). Split: official train = training; official "
    "val sorted by file name, first half = validation, second half = test (the official test files have no "
    "reconstructions). Paths are relative to --nifti-dir. Needs h5py."
)


def build_parser():
    parser = manifest_parser("fastmri_knee.py", f"fastMRI knee single-coil manifest (MONAI datalist). {SPLIT}")
    parser.add_argument("--fastmri-root", required=True, help="folder holding singlecoil_train/ and singlecoil_val/")
    parser.add_argument("--nifti-dir", required=True, help="folder for the converted NIfTI volumes (the data root)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    def build(args):
        return fastmri_knee_datalist(args.fastmri_root, args.nifti_dir, progress=not args.no_progress)

    return run_manifest_cli(build_parser(), build, argv)


if __name__ == "__main__":
    sys.exit(main())
