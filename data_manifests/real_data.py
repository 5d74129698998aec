"""Write data_manifests/real_data.json: the real MR scans that ship inside Python packages.

    python data_manifests/real_data.py --overwrite

The paths are ``pkg:`` paths, so the manifest needs no ``--data-root``; the files come with nilearn,
dipy, nibabel, pydicom, pydicom-data and matplotlib. The file is committed; this script regenerates
it and checks that every file is installed.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from mrsr.data.datasets.real_data import real_data_datalist
from mrsr.data.manifest import datalist_sections, manifest_parser, resolve_datalist, run_manifest_cli

SPLIT = (
    "Split: training = nilearn's MNI152 T1 template and dipy's S0_10slices b0; validation (what recipe choices "
    "use) = dipy's aniso_vox b0, mrsr's T1 head sample and nibabel's anatomical.nii; validation_extra (the detail "
    "share is chosen on it too; training does not use it) = nibabel's time-of-flight neck MIP; test (held out, for "
    "reporting only: never trained on, never used to choose a recipe) = six MR images from pydicom-data, "
    "pydicom, dipy and matplotlib: a T1 shoulder, a post-contrast fat-suppressed T1 abdomen, a T1 brain crop, "
    "a T2 slice, a T1 coronal brain slice (.npy) and a sagittal head slice (headerless raw)."
)


def build_parser():
    default = str(Path(__file__).with_name("real_data.json"))
    return manifest_parser("real_data.py", f"Real-data manifest (MONAI datalist, pkg: paths). {SPLIT}", default)


def main(argv: Sequence[str] | None = None) -> int:
    def build(args):
        datalist = real_data_datalist()
        # every file of every section installed, or one error naming what is missing
        resolve_datalist(datalist, sections=datalist_sections(datalist), source="real_data")
        return datalist

    return run_manifest_cli(build_parser(), build, argv)


if __name__ == "__main__":
    sys.exit(main())
