"""Write data_manifests/real_data.json: the real scans that ship inside Python packages (DATA.md).

    python data_manifests/real_data.py --overwrite

The paths are ``pkg:`` paths, so the manifest needs no ``--data-root``; ``pip install 'mrsr[data]'``
installs nilearn and dipy. The file is committed; this script regenerates it.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from mrsr.data.manifest import manifest_parser, real_data_datalist, resolve_datalist, run_manifest_cli

SPLIT = (
    "Split: training = nilearn's MNI152 T1 template and dipy's S0_10slices b0; validation = dipy's aniso_vox b0; "
    "test (held out, never trained on) = mrsr's T1 head sample and nibabel's anatomical.nii."
)


def build_parser():
    default = str(Path(__file__).with_name("real_data.json"))
    return manifest_parser("real_data.py", f"Real-data manifest (MONAI datalist, pkg: paths). {SPLIT}", default)


def main(argv: Sequence[str] | None = None) -> int:
    def build(args):
        datalist = real_data_datalist()
        resolve_datalist(datalist, source="real_data")  # every file installed, or one error naming what is missing
        return datalist

    return run_manifest_cli(build_parser(), build, argv)


if __name__ == "__main__":
    sys.exit(main())
