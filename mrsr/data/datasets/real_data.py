"""The real-data manifest: real MR scans that ship inside Python packages, read in place.

:func:`real_data_datalist` lists them (``pkg:`` paths, no data root): training (nilearn's MNI152 T1
template, a dipy b0), validation (what recipe choices use), validation_extra (more of it for the
detail share only) and a held-out test set from
pydicom-data, pydicom, dipy and matplotlib. Each entry names its source and licence (BSD-3-Clause,
MIT, Apache-2.0, matplotlib's PSF-based licence, or as nilearn states for the template); nothing is
copied or downloaded. ``data_manifests/real_data.py`` writes it to :data:`REAL_DATA_MANIFEST`,
which is committed.
"""

from __future__ import annotations

import json
from pathlib import Path

from mrsr.data.manifest import Datalist

__all__ = ["REAL_DATA", "REAL_DATA_MANIFEST", "real_data_datalist"]

# in a source checkout (data_manifests/ is not installed with the package)
REAL_DATA_MANIFEST = Path(__file__).resolve().parents[3] / "data_manifests" / "real_data.json"

_NILEARN_MNI = "pkg:nilearn/datasets/data/mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz"
# Training and validation: what recipes were trained and chosen on. Test: images no training run or
# recipe choice has seen, kept for reporting only; from other packages, anatomy and contrasts.
REAL_DATA = {
    "training": [
        {
            "image": _NILEARN_MNI,
            "name": "mni152_t1",
            "source": "nilearn: MNI ICBM152 2009 T1 template, skull-stripped, 197x233x189, 1 mm (many-subject average)",
            "licence": "as nilearn states (BSD-3-Clause package); read in place, not copied",
            "anatomy": "brain (template)",
            "contrast": "T1-weighted",
        },
        {
            "image": "pkg:dipy/data/files/S0_10slices.nii.gz",
            "name": "dipy_s0_10slices",
            "source": "dipy: diffusion b0 brain, 128x128x10(x1), 2 mm in-plane; its affine is sheared through-plane",
            "licence": "BSD-3-Clause (dipy)",
            "anatomy": "brain",
            "contrast": "diffusion b0 (T2-weighted EPI)",
        },
    ],
    "validation": [
        {
            "image": "pkg:dipy/data/files/aniso_vox.nii.gz",
            "name": "dipy_aniso_vox",
            "source": "dipy: diffusion b0 brain, 58x58x24, 4x4x5 mm",
            "licence": "BSD-3-Clause (dipy)",
            "anatomy": "brain",
            "contrast": "diffusion b0 (T2-weighted EPI)",
        },
        {
            "image": "pkg:mrsr/data/sample_t1_head.nii.gz",
            "name": "itk_t1_head",
            "source": "mrsr's bundled sample: ITK KmeansTest_T1UCharRaw, real T1 head, 128x128x62, 2x2x3 mm",
            "licence": "Apache-2.0 (see mrsr/data/NOTICE)",
            "anatomy": "head",
            "contrast": "T1-weighted",
        },
        {
            "image": "pkg:nibabel/tests/data/anatomical.nii",
            "name": "nibabel_anatomical",
            "source": "nibabel test data: real brain, 33x41x25, 2 mm",
            "licence": "MIT (nibabel)",
            "anatomy": "brain (cropped)",
            "contrast": "T1-weighted in appearance (not stated)",
        },
    ],
    # More validation for the choices made after training (each bundle's detail share), kept out of the
    # "validation" section so that training's model selection, and so the recipes, reproduce as recorded.
    "validation_extra": [
        {
            "image": "pkg:nibabel/nicom/tests/data/slicethickness_empty_string.dcm",
            "name": "nibabel_tof_neck_mip",
            "source": (
                "nibabel test data (nicom): Siemens 3D time-of-flight angiogram of the neck, one maximum-intensity "
                "projection (a derived image), 384x384, 0.52 mm; acquired with 202 phase-encoding steps of 384"
            ),
            "licence": "MIT (nibabel)",
            "anatomy": "neck (carotid and vertebral arteries)",
            "contrast": "time-of-flight angiography (bright inflowing blood), maximum-intensity projection",
        },
    ],
    "test": [
        {
            "image": "pkg:data_store/data/MR2_UNCR.dcm",
            "name": "pydicom_data_mr2_shoulder",
            "source": (
                "pydicom-data: MR2_UNCR (NEMA WG04 sample; the uncompressed original, MR2_UNCI is the same slice after "
                "lossy JPEG 2000), Philips 1.5 T, one oblique coronal slice, 1024x1024, 0.195 mm, 6 mm thick; "
                "reconstructed from 512 phase-encoding steps, so along Y (image rows) its spectrum stops at half the "
                "band"
            ),
            "licence": "MIT (pydicom-data)",
            "anatomy": "shoulder",
            "contrast": "T1-weighted spin echo (TR 350 ms, TE 27 ms)",
        },
        {
            "image": "pkg:data_store/data/MR-SIEMENS-DICOM-WithOverlays.dcm",
            "name": "pydicom_data_siemens_abdomen",
            "source": (
                "pydicom-data (from GDCM): Siemens Avanto 1.5 T, one axial MPR slice of a 3D VIBE, 484x484, 0.72 mm, 4 "
                "mm thick; its lesion marks are overlay planes, not in the pixels"
            ),
            "licence": "MIT (pydicom-data)",
            "anatomy": "abdomen (liver, kidneys)",
            "contrast": "T1-weighted 3D gradient echo, fat-suppressed, after gadolinium (TR 5.5 ms, TE 2.8 ms)",
        },
        {
            "image": "pkg:data_store/data/emri_small.dcm",
            "name": "pydicom_data_emri_head",
            "source": (
                "pydicom-data: enhanced multi-frame MR, Philips 3 T, a 64x64x10 crop of a 3D acquisition; the file has "
                "no pixel spacing or position: loads as 1x1 mm in-plane (nominal), 1.2 mm between slices"
            ),
            "licence": "MIT (pydicom-data)",
            "anatomy": "brain (a crop of cortex and white matter)",
            "contrast": "T1-weighted 3D turbo field echo",
        },
        {
            "image": "pkg:pydicom/data/test_files/MR_small.dcm",
            "name": "pydicom_mr_small",
            "source": (
                "pydicom test file: Toshiba MR, one slice downsized to 64x64 from NEMA WG04 MR1 (pydicom's test-file "
                "notes); its header keeps 0.3125 mm pixels and 0.8 mm slices, which may be the original's"
            ),
            "licence": "MIT (pydicom)",
            "anatomy": "not stated in the file (a small field of fluid-bright structures)",
            "contrast": "heavily T2-weighted 3D spin echo (TR 4000 ms, TE 240 ms)",
        },
        {
            "image": "pkg:dipy/data/files/t1_coronal_slice.npy",
            "name": "dipy_t1_coronal_slice",
            "source": (
                "dipy: one coronal slice of a T1-weighted brain MRI (its registration tests), skull-stripped, 256x256 "
                "float64 in [0, 1] (123 grey levels); .npy, no voxel size: 1 mm nominal"
            ),
            "licence": "BSD-3-Clause (dipy)",
            "anatomy": "brain (coronal, skull-stripped)",
            "contrast": "T1-weighted",
        },
        {
            "image": "pkg:matplotlib/mpl-data/sample_data/s1045.ima.gz",
            "name": "matplotlib_s1045_head",
            "source": (
                "matplotlib sample data (its MRI gallery examples): one sagittal head slice, 256x256, 8-bit values "
                "stored as big-endian uint16, gzip, no header: read with image_layout, 1 mm nominal"
            ),
            "licence": "matplotlib licence (PSF-based; matplotlib)",
            "anatomy": "head (sagittal, with neck)",
            "contrast": "T1-weighted in appearance (not stated)",
            "image_layout": {"shape": [256, 256], "dtype": ">u2"},
        },
    ],
}


def real_data_datalist() -> Datalist:
    """The real scans that ship inside packages: what the demonstration weights train on, and a held-out test set.

    Training: the MNI152 T1 template (nilearn) and dipy's 10-slice b0. Validation, which recipe
    choices use: dipy's anisotropic b0, mrsr's T1 head sample and nibabel's anatomical brain. Validation_extra,
    which the detail share is chosen on too but training does not use: nibabel's time-of-flight neck MIP. Test,
    for reporting only (no training run or recipe choice has seen it): six MR images from
    pydicom-data, pydicom, dipy and matplotlib (shoulder, abdomen, brain and head; T1, T2 and
    post-contrast fat-suppressed T1). All paths are ``pkg:`` paths; the headerless matplotlib slice
    carries its ``image_layout`` (:class:`mrsr.data.io.RawLayout`), which ``LoadVolumed`` reads.
    """
    description = (
        "Real MR scans shipped inside Python packages (pkg: paths, no data root). Training: nilearn MNI152 T1 "
        "template, dipy S0_10slices b0. Validation (what recipe choices use): dipy aniso_vox b0, mrsr's T1 head "
        "sample, nibabel anatomical.nii. Validation_extra (with validation, what each bundle's detail share is "
        "chosen on; not used by training): nibabel's time-of-flight neck MIP. Test (for reporting only, never "
        "trained on or used to choose anything): pydicom-data MR2 shoulder T1, Siemens abdomen post-contrast "
        "fat-suppressed T1, emri T1 brain crop, pydicom MR_small T2, dipy T1 coronal brain slice (.npy), "
        "matplotlib s1045 sagittal head (raw; load it with its image_layout, e.g. LoadVolumed)."
    )
    return {"description": description, **{k: [json.loads(json.dumps(e)) for e in v] for k, v in REAL_DATA.items()}}
