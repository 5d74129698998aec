"""A MONAI Deploy application: an mrsr bundle super-resolves a DICOM series or a NIfTI volume.

Run it as every MONAI Deploy App SDK application runs (deploy/README.md)::

    python deploy/app.py -i INPUT -o OUTPUT_FOLDER -m bundles/wasa_mr_sr

or with ``HOLOSCAN_INPUT_PATH``, ``HOLOSCAN_OUTPUT_PATH`` and ``HOLOSCAN_MODEL_PATH`` instead of ``-i``, ``-o``
and ``-m`` (the flags win). INPUT is a DICOM folder, or a ``.nii``/``.nii.gz`` file or a folder holding one; the
model path is an mrsr bundle folder, or a folder holding one (a MAP's ``/opt/holoscan/models``). ``MRSR_SCALE``
(default 2), ``MRSR_DEVICE`` (``auto``, ``cpu``, ``cuda``), ``MRSR_BUNDLE`` (which bundle of a folder holding
several) and ``MRSR_OVERWRITE`` (``1``: replace existing outputs) set the rest.

The operators, DICOM in::

    DICOMDataLoaderOperator -> DICOMSeriesSelectorOperator -> DICOMSeriesToVolumeOperator   (the SDK's)
      -> SeriesVolumeOperator (+ the selected series)    SDK Image -> mrsr volume: axes, geometry, DICOM tags
      -> SuperResolveOperator                            the bundle's network in mrsr.inference.VolumeInferer
      -> VolumeWriterOperator                            a derived DICOM series and a NIfTI file, float intensities

NIfTI in: ``NiftiVolumeLoaderOperator`` (mrsr's reader, the header's affine kept) -> the same two.

Both outputs go to OUTPUT_FOLDER, named as the bundles name theirs: ``<input>_sr_x<scale>.nii.gz`` and the
series folder ``<input>_sr_x<scale>/`` (new SeriesInstanceUID, ImageType DERIVED, the SR grid's geometry,
patient and study carried over from a DICOM input).
"""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from monai.data import MetaTensor
from monai.deploy.conditions import CountCondition
from monai.deploy.core import AppContext, Application, Fragment, Image, Operator, OperatorSpec
from monai.deploy.core.domain.dicom_series_selection import StudySelectedSeries
from monai.deploy.operators.dicom_data_loader_operator import DICOMDataLoaderOperator
from monai.deploy.operators.dicom_series_selector_operator import DICOMSeriesSelectorOperator
from monai.deploy.operators.dicom_series_to_volume_operator import DICOMSeriesToVolumeOperator
from monai.transforms import Compose
from monai.utils import MetaKeys, SpaceKeys

from mrsr.bundle import find_bundle
from mrsr.data import derived_output_path, load_volume, save_volume
from mrsr.data.dicom import CARRIED_TAGS, DICOM_META_KEY, LPS_TO_RAS
from mrsr.errors import MrsrError
from mrsr.inference import DESCRIPTION_KEY, resolve_device, resolve_slice_axis
from mrsr.paths import check_output_path, is_nifti_path
from mrsr.pipeline import InferOptions, build_predictor, options_chain
from mrsr.settings import InferSettings

LOG = logging.getLogger("mrsr.deploy")
BUNDLE_SUFFIX = "_mr_sr"

# One series is super-resolved: the first MR or CT series of the study (a folder should hold one series).
SERIES_RULES = """
{
    "selections": [
        {
            "name": "MR or CT series",
            "conditions": {"Modality": "(?i)(MR|CT)"}
        }
    ]
}
"""


# ------------------------------------------------------------------------------------- settings


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def resolve_bundle_path(model_path: str | os.PathLike, choice: str | None = None) -> Path:
    """The bundle folder at ``model_path``: the folder itself, or the one bundle inside it (``choice`` names
    one of several: ``wasa`` or ``wasa_mr_sr``).

    Raises:
        MrsrError: no bundle there, or several and no ``choice`` among them.
    """
    path = Path(model_path)
    if (path / "configs" / "inference.json").is_file():
        return find_bundle(path)
    inside = sorted(p for p in path.iterdir() if (p / "configs" / "inference.json").is_file()) if path.is_dir() else []
    if choice:
        wanted = {choice, choice + BUNDLE_SUFFIX}
        inside = [p for p in inside if p.name in wanted]
    if len(inside) == 1:
        return find_bundle(inside[0])
    names = ", ".join(p.name for p in inside)
    if not inside:
        raise MrsrError(f"No mrsr bundle at the model path {path}{f' named {choice!r}' if choice else ''}: give a "
                        "bundle folder (one with configs/inference.json) or a folder holding one.")  # fmt: skip
    raise MrsrError(f"The model path {path} holds several bundles ({names}); name one with MRSR_BUNDLE.")


def resolve_input(path: str | os.PathLike) -> Path:
    """The input: a NIfTI file, the one NIfTI file of a folder (a MAP's input folder holding a volume), or a
    DICOM folder.

    Raises:
        MrsrError: no such file or folder, a file that is not NIfTI, or a folder of several NIfTI files.
    """
    path = Path(path)
    if path.is_file() and is_nifti_path(path):
        return path
    if not path.is_dir():
        raise MrsrError(f"The input {path} is neither a DICOM folder nor a .nii/.nii.gz file or a folder holding one.")
    volumes = sorted(p for p in path.iterdir() if p.is_file() and is_nifti_path(p))
    if len(volumes) > 1:
        raise MrsrError(f"The input folder {path} holds {len(volumes)} NIfTI files; give one volume per run.")
    return volumes[0] if volumes else path


def output_paths(input_path: Path, output_folder: Path, scale: int) -> tuple[Path, Path]:
    """(NIfTI file, DICOM series folder) of the output, named after the input as the bundles name outputs."""
    postfix = f"sr_x{scale}"
    return (derived_output_path(input_path, output_folder, postfix, ".nii.gz"),
            derived_output_path(input_path, output_folder, postfix, ""))  # fmt: skip


# ------------------------------------------------------------------------------------- SDK image -> mrsr volume


def _floats(values) -> np.ndarray:
    return np.asarray([float(v) for v in values], dtype=float)


def series_datasets(selection: list[StudySelectedSeries]) -> list:
    """The pydicom datasets of the selected series, in the SDK's slice order (after DICOMSeriesToVolumeOperator)."""
    if not selection or not selection[0].selected_series:
        raise MrsrError("No MR or CT image series in the input folder.")
    return [sop.get_native_sop_instance() for sop in selection[0].selected_series[0].series.get_sop_instances()]


def sdk_image_affine(meta: dict, first) -> np.ndarray:
    """The voxel-to-RAS affine, over (column, row, slice) indices, of a DICOMSeriesToVolumeOperator image.

    The SDK's own ``nifti_affine_transform`` multiplies the row direction by PixelSpacing[0], the spacing
    between rows, and the column direction by PixelSpacing[1]: the in-plane spacings are swapped, which
    misplaces every voxel of a series with non-square pixels. Here the row direction (along which the
    column index grows) takes the spacing between columns, as in DICOM PS3.3 C.7.6.2.1.1 and mrsr's
    reader. The slice axis is the slice normal times the mean slice step along it (the step of the
    SDK's first and last slice positions projected on the normal), the origin the first slice's
    position: what :class:`mrsr.data.DicomReader` computes from the same files.

    Args:
        meta: the SDK image's metadata (``row_direction_cosine``, ``col_direction_cosine``,
            ``row_pixel_spacing``, ``col_pixel_spacing``, ``dicom_affine_transform``).
        first: the dataset of the first slice (position and thickness of a one-slice series).
    """
    row, col = _floats(meta["row_direction_cosine"]), _floats(meta["col_direction_cosine"])
    between_rows, between_columns = float(meta["row_pixel_spacing"]), float(meta["col_pixel_spacing"])
    normal = np.cross(row, col)
    lps = np.eye(4)
    lps[:3, 0] = row * between_columns
    lps[:3, 1] = col * between_rows
    stack = meta.get("dicom_affine_transform")  # the SDK sets it for two slices or more
    if stack is not None:
        stack = np.asarray(stack, dtype=float)
        lps[:3, 2] = normal * float(stack[:3, 2] @ normal)
        lps[:3, 3] = stack[:3, 3]
    else:
        step = first.get("SpacingBetweenSlices") or first.get("SliceThickness") or 1.0
        lps[:3, 2] = normal * float(step)
        lps[:3, 3] = _floats(first.ImagePositionPatient)
    return LPS_TO_RAS @ lps


def volume_from_sdk_image(image: Image, datasets: list, source: str = "dicom") -> MetaTensor:
    """An SDK image of DICOMSeriesToVolumeOperator as mrsr's (1, X, Y, Z) float32 volume.

    The SDK's array is (slice, row, column) with the rescale (modality LUT) applied; mrsr's is
    (column, row, slice), as :func:`mrsr.data.load_volume` reads the same series. The meta carries the
    series' patient and study tags (``mrsr_dicom_tags``) for the derived series.

    Raises:
        MrsrError: slices that are not parallel (one affine cannot hold them), or no pixel geometry.
    """
    meta = image.metadata()
    array = np.asarray(image.asnumpy())
    if array.ndim != 3:
        raise MrsrError(f"The selected series is an image of shape {array.shape}; a volume of single-frame slices "
                        "is needed (the SDK's series-to-volume operator reads no multi-frame files).")  # fmt: skip
    missing = [k for k in ("row_direction_cosine", "col_direction_cosine", "row_pixel_spacing") if meta.get(k) is None]
    if missing or "ImagePositionPatient" not in datasets[0]:
        raise MrsrError("The selected series has no ImageOrientationPatient, ImagePositionPatient or PixelSpacing: "
                        "its slices cannot be placed in the world.")  # fmt: skip
    first = _floats(datasets[0].ImageOrientationPatient)
    if any(not np.allclose(_floats(ds.ImageOrientationPatient), first, atol=1e-4) for ds in datasets):
        raise MrsrError("The series' slices are not parallel (a radial or localizer set); the SDK stacks them as one "
                        "volume, which misplaces them: run `mrsr infer` on the folder instead.")  # fmt: skip
    affine = sdk_image_affine(meta, datasets[0])
    volume = np.ascontiguousarray(array.transpose(2, 1, 0)).astype(np.float32)
    tags = {t: str(datasets[0].get(t)) for t in CARRIED_TAGS if datasets[0].get(t) not in (None, "")}
    mrsr_meta = {
        MetaKeys.AFFINE: torch.as_tensor(affine, dtype=torch.float64),
        MetaKeys.ORIGINAL_AFFINE: affine.copy(),
        MetaKeys.SPATIAL_SHAPE: np.asarray(volume.shape),
        MetaKeys.ORIGINAL_CHANNEL_DIM: float("nan"),
        MetaKeys.SPACE: SpaceKeys.RAS,
        "filename_or_obj": source,
        DICOM_META_KEY: tags,
    }
    return MetaTensor(torch.from_numpy(volume)[None], meta=mrsr_meta)


# ------------------------------------------------------------------------------------- operators


class NiftiVolumeLoaderOperator(Operator):
    """Load a NIfTI file as mrsr's (1, X, Y, Z) volume with its affine (:func:`mrsr.data.load_volume`).

    The SDK's NiftiDataLoader emits a bare array and drops the affine, which the SR grid is built from.

    Named output:
        volume: the MetaTensor.
    """

    def __init__(self, fragment: Fragment, *args, input_path: Path, **kwargs) -> None:
        self.input_path = Path(input_path)
        super().__init__(fragment, *args, **kwargs)

    def setup(self, spec: OperatorSpec) -> None:
        spec.output("volume")

    def compute(self, op_input, op_output, context) -> None:
        op_output.emit(load_volume(self.input_path), "volume")


class SeriesVolumeOperator(Operator):
    """DICOMSeriesToVolumeOperator's image as mrsr's volume (:func:`volume_from_sdk_image`).

    Named inputs:
        image: the SDK Image.
        study_selected_series_list: the selected series (its datasets give the tags and check the geometry).

    Named output:
        volume: the (1, X, Y, Z) MetaTensor.
    """

    def __init__(self, fragment: Fragment, *args, source: str = "dicom", **kwargs) -> None:
        self.source = source
        super().__init__(fragment, *args, **kwargs)

    def setup(self, spec: OperatorSpec) -> None:
        spec.input("image")
        spec.input("study_selected_series_list")
        spec.output("volume")

    def compute(self, op_input, op_output, context) -> None:
        image = op_input.receive("image")
        datasets = series_datasets(op_input.receive("study_selected_series_list"))
        op_output.emit(volume_from_sdk_image(image, datasets, self.source), "volume")


class SuperResolveOperator(Operator):
    """Super-resolve a volume with an mrsr bundle, as ``mrsr infer IN -o OUT --bundle BUNDLE`` does.

    The bundle's own network and weights (:func:`mrsr.pipeline.build_predictor`, its ``network_def`` and
    ``models/model*.pt``) run in the chain of :func:`mrsr.pipeline.options_chain`: RobustNormalized,
    :class:`mrsr.inference.VolumeInferer` (slice by slice, data consistency on, the bundle's share of
    detail) and RestoreVolumed (the input's intensities, the SR grid's affine). Saving is left to
    :class:`VolumeWriterOperator`.

    Named input:
        volume: (1, X, Y, Z) MetaTensor.

    Named output:
        sr: (1, X', Y', Z') float32 MetaTensor on the SR grid, its provenance line under ``mrsr_description``.
    """

    def __init__(self, fragment: Fragment, *args, bundle: Path, scale: int = 2, device: str = "auto", **kwargs):
        self.options = InferOptions(bundle=str(bundle), settings=InferSettings(scale=float(scale), device=device))
        self.device = resolve_device(device)
        self.predictor = build_predictor(self.options)
        name = Path(bundle).name
        self.predictor.method = f"bundle {name[: -len(BUNDLE_SUFFIX)] if name.endswith(BUNDLE_SUFFIX) else name}"
        super().__init__(fragment, *args, **kwargs)

    def setup(self, spec: OperatorSpec) -> None:
        spec.input("volume")
        spec.output("sr")

    def super_resolve(self, volume: MetaTensor) -> MetaTensor:
        """The SR volume of ``volume``, the steps of :func:`mrsr.pipeline.super_resolve_file` less its file I/O."""
        options, predictor = self.options, self.predictor
        chain = options_chain(options, predictor, progress=False)
        normalise = Compose(chain.preprocessing.transforms[1:])  # LoadVolumed is the loader operators' work
        restore = Compose(chain.postprocessing.transforms[:1])  # RestoreVolumed; VolumeWriterOperator saves
        d = normalise({"image": volume})
        axis = resolve_slice_axis(d["image"], options.settings.slice_axis)
        spacing = ", ".join(f"{v:g}" for v in d["image"].pixdim.tolist())
        LOG.info(f"{predictor.method}: {tuple(volume.shape[1:])} at {spacing} mm, slices across axis {axis}, "
                 f"x{predictor.scale:g} in-plane on {self.device}")  # fmt: skip
        d = chain.infer(d, predictor.module(volume.shape[1:], axis, options.settings.out_size), self.device)
        return restore(d)["pred"]

    def compute(self, op_input, op_output, context) -> None:
        volume = op_input.receive("volume")
        start = time.perf_counter()
        sr = self.super_resolve(volume)
        LOG.info(f"{tuple(volume.shape[1:])} -> {tuple(sr.shape[1:])} in {time.perf_counter() - start:.1f} s "
                 f"({sr.meta[DESCRIPTION_KEY]})")  # fmt: skip
        op_output.emit(sr, "sr")


class VolumeWriterOperator(Operator):
    """Write the SR volume as a NIfTI file and a derived DICOM series, atomically (:func:`mrsr.data.save_volume`).

    The NIfTI file keeps the float32 intensities; the series stores uint16 pixels with one
    RescaleSlope/RescaleIntercept, so its modality values are the float intensities to within half a
    step of (max - min) / 65535. Both carry the provenance line (NIfTI ``descrip``, DICOM
    DerivationDescription).

    Named input:
        sr: the (1, X', Y', Z') MetaTensor.
    """

    def __init__(self, fragment: Fragment, *args, nifti: Path, dicom: Path, overwrite: bool = False, **kwargs):
        self.nifti, self.dicom, self.overwrite = Path(nifti), Path(dicom), overwrite
        super().__init__(fragment, *args, **kwargs)

    def setup(self, spec: OperatorSpec) -> None:
        spec.input("sr")

    def compute(self, op_input, op_output, context) -> None:
        sr = op_input.receive("sr")
        for out in (self.nifti, self.dicom):
            save_volume(sr, out, overwrite=self.overwrite)
            LOG.info(f"wrote {out}")


# ------------------------------------------------------------------------------------- the application


class MrsrSuperResolutionApp(Application):
    """Super-resolve a DICOM series or a NIfTI volume with an mrsr bundle (the module's docstring)."""

    def compose(self) -> None:
        context: AppContext = Application.init_app_context(self.argv)
        input_path, output_folder = resolve_input(context.input_path), Path(context.output_path)
        bundle = resolve_bundle_path(context.model_path, os.environ.get("MRSR_BUNDLE") or None)
        scale = os.environ.get("MRSR_SCALE", "2").strip()
        if not scale.isdigit() or int(scale) < 2:
            raise MrsrError(f"MRSR_SCALE={scale!r}: give the bundle's integer SR factor, 2 or 4.")
        scale = int(scale)
        overwrite = _env_flag("MRSR_OVERWRITE")
        nifti, dicom = output_paths(input_path, output_folder, scale)
        output_folder.mkdir(parents=True, exist_ok=True)
        for out in (nifti, dicom):  # before any work: an output that exists or would replace the input
            check_output_path(out, overwrite, inputs=(input_path,), overwrite_hint="set MRSR_OVERWRITE=1")
        LOG.info(f"mrsr: {input_path} -> {nifti} and {dicom} with {bundle} x{scale}")

        sr_op = SuperResolveOperator(self, bundle=bundle, scale=scale, device=os.environ.get("MRSR_DEVICE", "auto"),
                                     name="super_resolve_op")  # fmt: skip
        writer_op = VolumeWriterOperator(self, nifti=nifti, dicom=dicom, overwrite=overwrite, name="writer_op")
        if is_nifti_path(input_path):
            loader_op = NiftiVolumeLoaderOperator(self, CountCondition(self, 1), input_path=input_path,
                                                  name="nifti_loader_op")  # fmt: skip
            self.add_flow(loader_op, sr_op, {("volume", "volume")})
        else:
            study_loader_op = DICOMDataLoaderOperator(self, CountCondition(self, 1), input_folder=input_path,
                                                      name="study_loader_op")  # fmt: skip
            selector_op = DICOMSeriesSelectorOperator(self, rules=SERIES_RULES, name="series_selector_op")
            to_volume_op = DICOMSeriesToVolumeOperator(self, name="series_to_volume_op")
            volume_op = SeriesVolumeOperator(self, source=str(input_path), name="series_volume_op")
            self.add_flow(study_loader_op, selector_op, {("dicom_study_list", "dicom_study_list")})
            self.add_flow(selector_op, to_volume_op, {("study_selected_series_list", "study_selected_series_list")})
            self.add_flow(to_volume_op, volume_op, {("image", "image")})
            self.add_flow(selector_op, volume_op, {("study_selected_series_list", "study_selected_series_list")})
            self.add_flow(volume_op, sr_op, {("volume", "volume")})
        self.add_flow(sr_op, writer_op, {("sr", "sr")})


def main() -> int:
    """Run the application; bad input, settings or outputs end with one line on stderr and exit code 2, as
    ``mrsr`` commands end (``MRSR_TRACEBACK=1`` shows the traceback)."""
    try:
        MrsrSuperResolutionApp().run()
    except MrsrError as err:
        if _env_flag("MRSR_TRACEBACK"):
            raise
        print(f"mrsr: error: {err}", file=sys.stderr, flush=True)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
