"""The datalists of the data sets mrsr has manifests for, one module each.

Modules:

- :mod:`~mrsr.data.datasets.ixi`: :func:`ixi_datalist`, IXI's Hammersmith Hospital protocol (T1, T2 or PD);
- :mod:`~mrsr.data.datasets.fastmri`: :func:`fastmri_knee_datalist`, fastMRI knee single-coil, converted to
  NIfTI by :func:`convert_fastmri_h5` (voxel size: :func:`fastmri_spacing`);
- :mod:`~mrsr.data.datasets.acdc`: :func:`acdc_datalist`, ACDC cardiac cine ED/ES frames;
- :mod:`~mrsr.data.datasets.real_data`: :func:`real_data_datalist`, the real scans that ship inside
  Python packages, committed as :data:`REAL_DATA_MANIFEST`.

Each reads the user's copy (or the installed packages) and returns a datalist with a fixed split,
which :func:`mrsr.data.manifest.write_manifest` writes; the scripts in ``data_manifests/`` call them.
Like :mod:`mrsr.data.manifest`, none of them imports torch or MONAI.
"""

from .acdc import ACDC_TEST_PATIENTS, ACDC_TRAIN_PATIENTS, acdc_datalist
from .fastmri import (
    FASTMRI_DEFAULT_SPACING,
    FASTMRI_SPLITS,
    convert_fastmri_h5,
    fastmri_knee_datalist,
    fastmri_spacing,
)
from .ixi import IXI_CONTRASTS, IXI_HH_SUBJECTS, IXI_TRAIN_SUBJECTS, ixi_datalist
from .real_data import REAL_DATA, REAL_DATA_MANIFEST, real_data_datalist

__all__ = [
    "ACDC_TEST_PATIENTS",
    "ACDC_TRAIN_PATIENTS",
    "FASTMRI_DEFAULT_SPACING",
    "FASTMRI_SPLITS",
    "IXI_CONTRASTS",
    "IXI_HH_SUBJECTS",
    "IXI_TRAIN_SUBJECTS",
    "REAL_DATA",
    "REAL_DATA_MANIFEST",
    "acdc_datalist",
    "convert_fastmri_h5",
    "fastmri_knee_datalist",
    "fastmri_spacing",
    "ixi_datalist",
    "real_data_datalist",
]
