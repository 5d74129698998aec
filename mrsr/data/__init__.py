"""Reading (NIfTI, DICOM, .npy, headerless raw), writing, outputs named after inputs, the bundled sample, and
synthetic MR training images (:mod:`mrsr.data.synth`)."""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "sample_path",
    "load_volume",
    "LoadVolumed",
    "save_volume",
    "RawLayout",
    "RawReader",
    "NumpyVolumeReader",
    "NiftiVolumeReader",
    "DicomReader",
    "write_dicom_series",
    "SaveVolumed",
    "as_datalist",
    "derived_output_path",
    "RandSynthMR",
    "RandSynthMRd",
    "SynthMRDataset",
    "mni152_tissue_maps",
    "kmeans_tissue_maps",
    "high_band_energy",
    "write_examples",
]

# imported on first use: `mrsr.data.manifest` (and the manifest scripts) must not pay for torch and MONAI
_LAZY = {
    "load_volume": ".io",
    "LoadVolumed": ".io",
    "save_volume": ".io",
    "RawLayout": ".io",
    "RawReader": ".io",
    "NumpyVolumeReader": ".io",
    "NiftiVolumeReader": ".io",
    "DicomReader": ".dicom",
    "write_dicom_series": ".dicom",
    "SaveVolumed": ".outputs",
    "as_datalist": ".outputs",
    "derived_output_path": ".outputs",
    "RandSynthMR": ".synth",
    "RandSynthMRd": ".synth",
    "SynthMRDataset": ".synth",
    "mni152_tissue_maps": ".synth",
    "kmeans_tissue_maps": ".synth",
    "high_band_energy": ".synth",
    "write_examples": ".synth",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def sample_path() -> Path:
    """Path of the bundled real T1 head MRI (128x128x62, 2x2x3 mm, int16; Apache-2.0, see NOTICE).

    >>> sample_path().name
    'sample_t1_head.nii.gz'
    """
    return Path(__file__).with_name("sample_t1_head.nii.gz")
