"""Load a volume from NIfTI, DICOM, a ``.npy`` array or a headerless raw file; save one to NIfTI or a
DICOM series, atomically.

All go through MONAI: ``LoadImage`` with ``NibabelReader``, :class:`~mrsr.data.dicom.DicomReader`,
:class:`NumpyVolumeReader` or :class:`RawReader`, and ``NibabelWriter``. Every failure a user can
cause becomes an :class:`~mrsr.errors.MrsrError` with a one-line message.

Files without a header (raw pixels, ``.npy`` arrays) say nothing or little about their layout; a
:class:`RawLayout` gives it explicitly, nothing is guessed. In a manifest entry it is the
``"image_layout"`` key (``LoadVolumed`` reads ``<key>_layout``)::

    {"image": "pkg:matplotlib/mpl-data/sample_data/s1045.ima.gz", "name": "matplotlib_s1045_head",
     "image_layout": {"shape": [256, 256], "dtype": ">u2"}}
"""

from __future__ import annotations

import gzip
import logging
import math
import os
import warnings
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import torch
from monai.config import KeysCollection
from monai.data import MetaTensor, NibabelReader, NibabelWriter, NumpyReader
from monai.data.image_reader import ImageReader
from monai.transforms import LoadImage, MapTransform, Orientation
from monai.utils import MetaKeys, SpaceKeys

from mrsr.errors import MrsrError
from mrsr.paths import atomic_path, check_input_path, check_output_path, is_nifti_path

from .dicom import DICOM_META_KEY, SLICE_GEOMETRY_KEY, DicomReader, is_dicom_file, write_dicom_series

# MONAI warns on every LoadImage that its optional GPU DICOM decoder (nvImageCodec) is missing: noise for us
logging.getLogger("monai.data.nvimgcodec_pydicom_plugin").setLevel(logging.ERROR)

__all__ = [
    "load_volume",
    "LoadVolumed",
    "save_volume",
    "RawLayout",
    "RawReader",
    "NumpyVolumeReader",
    "NiftiVolumeReader",
    "is_nifti_path",
    "check_output_path",
    "check_fits_output",
    "check_affine",
    "shear_degrees",
]

DESCRIPTION_KEY = "mrsr_description"  # provenance line of an output: NIfTI descrip, DICOM DerivationDescription
NUMPY_SUFFIX = ".npy"
GZIP_MAGIC = b"\x1f\x8b"
# deflate expands at most 1032-fold (a 258-byte match costs at least 2 bits): the most a gzip file can hold
MAX_DEFLATE_RATIO = 1032
# voxel axes closer than this to one plane (|det| over the product of their lengths) place no volume
SINGULAR_TOLERANCE = 1e-6
# axes this far from perpendicular count as sheared: below it a qform (no shear) moves no voxel by 0.01 mm in 500 mm
SHEAR_TOLERANCE_DEG = 1e-3
# NIfTI sform/qform codes of a volume whose input had none (DICOM, raw, .npy): scanner-based, as mrsr always wrote
DEFAULT_XFORM_CODES = (1, 1)


# ------------------------------------------------------------------------------------- headerless files


@dataclass(frozen=True)
class RawLayout:
    """The layout of a file that has no header (or, for ``.npy``, no voxel size), given explicitly.

    Array axes are (X, Y[, Z]) as in NIfTI: in a raw file X varies fastest (the order NIfTI,
    Analyze and MetaImage store voxels; for an image of rows, X is the column and Y the row); a
    ``.npy`` array is taken as indexed ``array[x, y(, z)]``, as nibabel returns voxel arrays. A 2D
    image is a one-slice volume. The affine is diagonal (``spacing``), with no orientation: such
    files carry none.

    Args:
        shape: (X, Y) or (X, Y, Z) voxels. Needed for raw files; for ``.npy`` the file's own shape,
            checked if given.
        dtype: a NumPy dtype string; for raw files a byte order is needed for multi-byte types
            (``">u2"``: big-endian uint16, ``"<f4"``: little-endian float32, ``"u1"``). For ``.npy``
            the file's own, checked if given.
        spacing: voxel size in mm, one per axis (a 2D image may add its slice thickness as a third);
            default 1 mm.

    >>> RawLayout.from_dict({"shape": [256, 256], "dtype": ">u2"})
    RawLayout(shape=(256, 256), dtype='>u2', spacing=None)
    """

    shape: tuple[int, ...] | None = None
    dtype: str | None = None
    spacing: tuple[float, ...] | None = None

    KEYS = ("shape", "dtype", "spacing")

    def __post_init__(self) -> None:
        if self.shape is not None:
            shape = tuple(self.shape)
            if not 2 <= len(shape) <= 3 or not all(_is_int(n) and n > 0 for n in shape):
                raise MrsrError(f"layout shape {list(shape)}: give 2 or 3 positive whole numbers (X, Y[, Z]).")
            object.__setattr__(self, "shape", tuple(int(n) for n in shape))
        if self.dtype is not None:
            try:
                dtype = np.dtype(self.dtype)
            except TypeError:
                raise MrsrError(
                    f"layout dtype {self.dtype!r} is not a NumPy dtype (e.g. '>u2', '<f4', 'u1')."
                ) from None
            if dtype.kind not in "uif":
                raise MrsrError(f"layout dtype {self.dtype!r}: give an integer or float type (e.g. '>u2', '<f4').")
            # a dtype object keeps its byte order only in .str ('<u2'); a string is kept as written
            object.__setattr__(self, "dtype", self.dtype if isinstance(self.dtype, str) else dtype.str)
        if self.spacing is not None:
            try:
                spacing = tuple(float(v) for v in self.spacing)
            except (TypeError, ValueError):
                raise MrsrError(f"layout spacing {self.spacing!r}: give 2 or 3 numbers in mm.") from None
            if not 2 <= len(spacing) <= 3 or not all(np.isfinite(spacing)) or min(spacing) <= 0:
                raise MrsrError(f"layout spacing {list(spacing)}: give 2 or 3 positive sizes in mm.")
            if self.shape is not None and len(spacing) < len(self.shape):
                raise MrsrError(f"layout spacing {list(spacing)} has fewer values than shape {list(self.shape)}.")
            object.__setattr__(self, "spacing", spacing)

    @classmethod
    def from_dict(cls, value: RawLayout | Mapping | None) -> RawLayout | None:
        """A layout from a manifest entry's mapping (``{"shape", "dtype", "spacing"}``); ``None`` stays ``None``."""
        if value is None or isinstance(value, RawLayout):
            return value
        if not isinstance(value, Mapping):
            raise MrsrError(f"a layout is a mapping with keys {', '.join(cls.KEYS)}, got {value!r}.")
        unknown = sorted(set(value) - set(cls.KEYS))
        if unknown:
            raise MrsrError(f"unknown layout key(s) {', '.join(map(repr, unknown))}; use {', '.join(cls.KEYS)}.")
        return cls(**value)

    def affine(self) -> np.ndarray:
        """The diagonal voxel-to-mm affine: ``spacing``, 1 mm where it gives none."""
        spacing = [*(self.spacing or ()), 1.0, 1.0, 1.0][:3]
        return np.diag([*spacing, 1.0])


def _is_int(n) -> bool:
    return isinstance(n, (int, np.integer)) and not isinstance(n, bool)


def _headerless_meta(volume: np.ndarray, layout: RawLayout, path: str) -> dict:
    affine = layout.affine()
    return {
        MetaKeys.AFFINE: affine,
        MetaKeys.ORIGINAL_AFFINE: affine.copy(),
        MetaKeys.SPATIAL_SHAPE: np.asarray(volume.shape),
        MetaKeys.ORIGINAL_CHANNEL_DIM: float("nan"),
        MetaKeys.SPACE: SpaceKeys.RAS,
        "filename_or_obj": path,
    }


def _one_file(data) -> str:
    names = [data] if isinstance(data, (str, os.PathLike)) else list(data)
    if len(names) != 1:
        raise MrsrError("Give one file at a time to a raw or .npy reader.")
    return str(names[0])


def _magnitude(array: np.ndarray, path) -> np.ndarray:
    """A complex array's magnitude, said in one warning line; any other array as it is.

    MR reconstructions are often saved complex. ``LoadImage``'s cast to float32 would keep only the
    real part (after NumPy's ComplexWarning), which depends on the phase; the magnitude is what the
    scanner's magnitude image shows.
    """
    if not np.iscomplexobj(array):
        return array
    warnings.warn(f"{path} holds complex values; using their magnitude (what a magnitude image of the scan shows).")
    return np.abs(array)


class NiftiVolumeReader(NibabelReader):
    """MONAI's ``NibabelReader``, but a complex image is read as its magnitude, with a warning.

    The header stays in the meta as ``NibabelReader`` leaves it (``sform_code``, ``qform_code``, ...):
    :func:`save_volume` keeps its codes in what is written from the volume.
    """

    def get_data(self, img) -> tuple[np.ndarray, dict]:
        data, meta = super().get_data(img)
        return _magnitude(data, self.filenames[0] if len(self.filenames) == 1 else self.filenames), meta


class RawReader(ImageReader):
    """MONAI ``ImageReader`` for a headerless raw image whose :class:`RawLayout` is given.

    The file holds exactly ``prod(shape)`` values of ``dtype``, X fastest; a gzip-compressed file
    (``.gz``, told by its first bytes) is decompressed first. The output is (X, Y, Z) with a 2D
    image as one slice, the layout's diagonal affine in the meta.

    Args:
        layout: the file's layout; ``shape`` and ``dtype`` are required.

    Raises:
        MrsrError: a layout without shape or dtype, a multi-byte dtype without byte order, or a file
            whose size does not match the layout.

    >>> import matplotlib.cbook
    >>> path = matplotlib.cbook.get_sample_data("s1045.ima.gz", asfileobj=False)
    >>> img = LoadImage(image_only=True)(path, reader=RawReader({"shape": [256, 256], "dtype": ">u2"}))
    >>> tuple(img.shape)
    (256, 256, 1)
    """

    def __init__(self, layout: RawLayout | Mapping) -> None:
        super().__init__()
        layout = RawLayout.from_dict(layout)
        if layout is None or layout.shape is None or layout.dtype is None:
            raise MrsrError(
                "a raw file's layout needs its shape and dtype, e.g. {'shape': [256, 256], 'dtype': '>u2'}."
            )
        dtype = np.dtype(layout.dtype)
        if dtype.itemsize > 1 and layout.dtype[:1] not in "<>":
            raise MrsrError(f"layout dtype {layout.dtype!r}: give the byte order, '>{dtype.str[1:]}' (big-endian) "
                            f"or '<{dtype.str[1:]}' (little-endian).")  # fmt: skip
        self.layout = layout

    def verify_suffix(self, filename: Sequence[str | os.PathLike] | str | os.PathLike) -> bool:
        return True  # a raw file has no signature: the layout, given explicitly, says what it is

    def read(self, data: Sequence[str | os.PathLike] | str | os.PathLike, **kwargs) -> tuple[bytes, str]:
        path = _one_file(data)
        with open(path, "rb") as f:
            head = f.read(2)
        opener = gzip.open if head == GZIP_MAGIC else open
        with opener(path, "rb") as f:
            return f.read(), path

    def get_data(self, img: tuple[bytes, str]) -> tuple[np.ndarray, dict]:
        raw, path = img
        shape, dtype = self.layout.shape, np.dtype(self.layout.dtype)
        need = int(np.prod(shape)) * dtype.itemsize
        if len(raw) != need:
            raise MrsrError(
                f"{path}: {len(raw)} bytes, but the raw layout {list(shape)} {self.layout.dtype} needs {need}; "
                "check its shape and dtype."
            )
        volume = np.frombuffer(raw, dtype=dtype).reshape(shape[::-1]).T  # X fastest in the file
        volume = volume.astype(dtype.newbyteorder("="))
        if volume.ndim == 2:
            volume = volume[..., None]
        return np.ascontiguousarray(volume), _headerless_meta(volume, self.layout, path)


class NumpyVolumeReader(NumpyReader):
    """MONAI ``NumpyReader`` for one ``.npy`` array as a volume: ``array[x, y(, z)]``, a 2D array as one
    slice, a diagonal affine of the layout's spacing (1 mm if none is given).

    ``.npz`` files and pickled arrays are refused; a layout's ``shape`` and ``dtype``, if given, must
    be the file's.

    >>> import dipy.data
    >>> path = dipy.data.get_fnames(name="t1_coronal_slice")
    >>> tuple(LoadImage(image_only=True)(path, reader=NumpyVolumeReader()).shape)
    (256, 256, 1)
    """

    def __init__(self, layout: RawLayout | Mapping | None = None) -> None:
        super().__init__(channel_dim=None, allow_pickle=False)
        self.layout = RawLayout.from_dict(layout) or RawLayout()

    def verify_suffix(self, filename: Sequence[str | os.PathLike] | str | os.PathLike) -> bool:
        names = [filename] if isinstance(filename, (str, os.PathLike)) else list(filename)
        return all(str(n).lower().endswith(NUMPY_SUFFIX) for n in names)

    def read(self, data: Sequence[str | os.PathLike] | str | os.PathLike, **kwargs) -> tuple[np.ndarray, str]:
        path = _one_file(data)
        if not self.verify_suffix(path):
            raise MrsrError(
                f"{path}: NumpyVolumeReader reads .npy files (one array), not {Path(path).suffix or 'this'}."
            )
        return super().read(path, **kwargs), path

    def get_data(self, img: tuple[np.ndarray, str]) -> tuple[np.ndarray, dict]:
        array, path = img
        if not isinstance(array, np.ndarray) or array.dtype.kind not in "uifcb":
            raise MrsrError(f"{path} does not hold a numeric array.")
        if array.ndim not in (2, 3):
            raise MrsrError(f"{path} holds an array of shape {array.shape}; give a 2D image or a 3D volume.")
        layout = self.layout
        if layout.shape is not None and tuple(array.shape) != layout.shape:
            raise MrsrError(
                f"{path} holds an array of shape {list(array.shape)}, not the layout's {list(layout.shape)}."
            )
        if layout.dtype is not None and array.dtype != np.dtype(layout.dtype):
            raise MrsrError(f"{path} holds {array.dtype.str} values, not the layout's {layout.dtype}.")
        if layout.spacing is not None and len(layout.spacing) < array.ndim:
            raise MrsrError(
                f"layout spacing {list(layout.spacing)} has fewer values than {path} has axes ({array.ndim})."
            )
        array = _magnitude(array, path)
        volume = array.astype(array.dtype.newbyteorder("=")) if array.dtype.kind != "b" else array.astype(np.uint8)
        if volume.ndim == 2:
            volume = volume[..., None]
        return np.ascontiguousarray(volume), _headerless_meta(volume, layout, path)


# ------------------------------------------------------------------------------------- loading


def _reader_for(path: Path, layout: RawLayout | None):
    if path.is_dir() or is_dicom_file(path):
        reader = DicomReader()
    else:
        reader = NiftiVolumeReader() if is_nifti_path(path) else None
    if reader is not None:
        if layout is not None:
            raise MrsrError(f"{path} has its own header; a layout is only for raw and .npy files, drop it.")
        return reader
    if path.name.lower().endswith(NUMPY_SUFFIX):
        return NumpyVolumeReader(layout)
    if layout is not None:
        return RawReader(layout)
    raise MrsrError(
        f"{path}: unsupported format; give a .nii/.nii.gz file, a DICOM file or series folder, a .npy array, "
        "or a headerless raw file with its layout (shape and dtype)."
    )


def load_volume(
    path: str | os.PathLike, orientation: str | None = None, layout: RawLayout | Mapping | None = None
) -> MetaTensor:
    """Load a NIfTI file, DICOM file or series folder, ``.npy`` array or raw file as a (1, X, Y, Z)
    float32 MetaTensor.

    A 2D image becomes a one-slice volume (1, X, Y, 1); the affine (voxel to RAS, mm) and spacing
    stay in the meta. A file that is none of NIfTI, DICOM or ``.npy`` is read as raw pixels when
    ``layout`` is given (:class:`RawReader`), gzip-compressed or not; ``.npy`` arrays take the
    layout's spacing (default 1 mm). Complex values (NIfTI, ``.npy``) are read as their magnitude,
    with a warning. A NIfTI header's shape is checked against the file's size before any voxel is
    read. A sheared affine is accepted (see :func:`save_volume` for how it is written).

    Args:
        path: the file or folder.
        orientation: optional axis codes (e.g. ``"RAS"``) to reorient to; ``None`` keeps the stored order.
        layout: a :class:`RawLayout` or its mapping (``{"shape": [256, 256], "dtype": ">u2"}``) for
            raw and ``.npy`` files; refused for files with a header.

    Raises:
        MrsrError: missing, unreadable or truncated input, several DICOM series, a DICOM file with no
            image, more than one volume (4D), NaN/Inf voxels, a singular or non-finite affine, a bad
            layout, a raw file whose size does not match its layout, or a NIfTI header whose shape
            needs more bytes than the file holds.
    """
    path = check_input_path(path)
    try:
        layout = RawLayout.from_dict(layout)
        reader = _reader_for(path, layout)
    except MrsrError as err:
        raise err if str(err).startswith(str(path)) else MrsrError(f"{path}: {err}") from None
    if isinstance(reader, NibabelReader):
        _check_nifti_size(path)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*nvImageCodec.*")
            # the reader is given per call so LoadImage does not fall back to other readers on bad input
            img = LoadImage(image_only=True, ensure_channel_first=True, dtype=np.float32)(str(path), reader=reader)
    except MrsrError:
        raise
    except Exception as err:  # nibabel/zlib/gzip/OS errors for damaged files come in many types
        cause = err.__cause__ or err
        if isinstance(cause, MrsrError):
            raise cause from None
        if isinstance(cause, MemoryError):
            raise MrsrError(f"Cannot read {path}: its voxels do not fit in memory; crop it first or use a machine "
                            "with more memory.") from None  # fmt: skip
        kind = "truncated or damaged" if isinstance(cause, (EOFError, zlib.error, gzip.BadGzipFile)) else "unreadable"
        raise MrsrError(f"Cannot read {path}: the file is {kind} ({type(cause).__name__}: {cause}).") from None
    img = _as_volume(img, path)
    if orientation:
        img = Orientation(axcodes=orientation)(img)
    return img


def _nbytes(n: int) -> str:
    """A byte count for people: exact below 10 kB (``1024 B``), else 3 digits (``4 TB``)."""
    if n < 10_000:
        return f"{n} B"
    exponent = min(int(math.log10(n)) // 3, 4)
    return f"{n / 1000**exponent:.3g} {('kB', 'MB', 'GB', 'TB')[exponent - 1]}"


def _check_nifti_size(path: Path) -> None:
    """Refuse a NIfTI file whose header's shape needs more bytes than the file can hold, before any voxel is read.

    An uncompressed file must hold ``prod(shape) x itemsize`` bytes after ``vox_offset``. A gzip
    file's own size field counts modulo 4 GiB, so it is bounded instead: deflate expands at most
    :data:`MAX_DEFLATE_RATIO`-fold. A tiny file then never makes a huge array (a damaged file within
    the bound is still found truncated when it is read).

    Raises:
        MrsrError: the header's shape does not match the file's size.
    """
    try:
        voxels = nib.load(str(path)).dataobj  # reads the header only
        shape, dtype = tuple(int(n) for n in voxels.shape), np.dtype(voxels.dtype)
        offset = int(voxels.offset)  # where nibabel reads them from (a vox_offset of 0 means after the header)
    except Exception:  # a header nibabel cannot parse: the reader says what is wrong with it
        return
    need = math.prod(shape) * dtype.itemsize
    size = path.stat().st_size
    with open(path, "rb") as f:
        compressed = f.read(2) == GZIP_MAGIC
    have = size * MAX_DEFLATE_RATIO if compressed else max(size - offset, 0)
    if need > have:
        holds = f"a {_nbytes(size)} gzip file holds at most" if compressed else "the file holds"
        raise MrsrError(
            f"{path}: the header's shape {' x '.join(map(str, shape))} ({dtype.name}) does not match the file's "
            f"size: it needs {_nbytes(need)} of voxels, {holds} {_nbytes(have)}; the file is truncated or its "
            "header is wrong."
        )


class LoadVolumed(MapTransform):
    """Dictionary transform: replace each path under ``keys`` by its volume, as :func:`load_volume`.

    For MONAI pipelines and datalists (``{"image": path}``), e.g. in front of a ``CacheDataset``.
    The layout of a raw or ``.npy`` file under ``key`` is read from ``<key>_<layout_postfix>``
    (``"image_layout"``) when the data has it, as manifest entries carry it (see :class:`RawLayout`);
    the key is kept.

    Args:
        keys: keys holding file or DICOM folder paths.
        orientation: optional axis codes to reorient to (see :func:`load_volume`).
        allow_missing_keys: don't raise for keys missing from the data.
        layout_postfix: the postfix of the keys holding layouts; ``None``: read no layouts.

    >>> from mrsr.data import sample_path
    >>> LoadVolumed("image")({"image": sample_path()})["image"].shape
    torch.Size([1, 128, 128, 62])
    """

    def __init__(
        self,
        keys: KeysCollection,
        orientation: str | None = None,
        allow_missing_keys: bool = False,
        layout_postfix: str | None = "layout",
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.orientation = orientation
        self.layout_postfix = layout_postfix

    def __call__(self, data: dict) -> dict:
        d = dict(data)
        for key in self.key_iterator(d):
            layout = d.get(f"{key}_{self.layout_postfix}") if self.layout_postfix else None
            d[key] = load_volume(d[key], self.orientation, layout)
        return d


def _file_shape(img: MetaTensor) -> tuple[int, ...]:
    """The array shape as the file stores it: LoadImage moved the file's channel (time) axis first."""
    shape = list(img.shape[1:])
    channel_dim = img.meta.get(MetaKeys.ORIGINAL_CHANNEL_DIM)
    if img.shape[0] == 1 and not isinstance(channel_dim, int):
        return tuple(shape)
    if isinstance(channel_dim, int):
        shape.insert(channel_dim % (len(shape) + 1), img.shape[0])
    else:
        shape.insert(0, img.shape[0])
    return tuple(shape)


def _as_volume(img: MetaTensor, path: Path) -> MetaTensor:
    if img.ndim == 3:  # (1, X, Y): a 2D image is a one-slice volume
        img = img.unsqueeze(-1)
    if img.ndim != 4 or img.shape[0] != 1:
        raise MrsrError(
            f"{path} holds an image of shape {_file_shape(img)}; mrsr needs one 3D volume (extract a single volume "
            "first)."
        )
    bad = int((~torch.isfinite(img)).sum())  # after the readers took the magnitude of complex values
    if bad:
        raise MrsrError(f"{path} has {bad} NaN/Inf voxels; replace them (e.g. with 0) before super-resolving.")
    check_affine(img.affine, f"{path}: its affine (voxel to world)")
    return img.float()


def check_affine(affine: torch.Tensor | np.ndarray, subject: str) -> None:
    """Refuse an affine that places no volume in the world: NaN/Inf entries, or voxel axes of zero length
    or in one plane (a singular 3x3 part). ``subject`` begins the message (``"scan.nii: its affine"``).

    Raises:
        MrsrError: a non-finite or singular affine.
    """
    affine = np.asarray(affine, dtype=float)
    fix = "fix the header's sform/qform (or the DICOM geometry) before super-resolving"
    if not np.all(np.isfinite(affine)):
        raise MrsrError(f"{subject} has NaN/Inf entries; {fix}.")
    linear = affine[:3, :3]
    if abs(np.linalg.det(linear)) <= SINGULAR_TOLERANCE * np.prod(np.linalg.norm(linear, axis=0)):
        raise MrsrError(f"{subject} is singular (a voxel axis has zero length or the axes lie in one plane); {fix}.")


def shear_degrees(affine: torch.Tensor | np.ndarray) -> float:
    """How far the voxel axes of ``affine`` are from perpendicular, in degrees.

    0 when its 3x3 part is a rotation (or reflection) times a diagonal scaling: what a NIfTI qform and a
    DICOM series can hold. Any more is a shear, which only a NIfTI sform can hold.

    >>> round(shear_degrees(np.array([[2.0, 0.5, 0, 0], [0, 2, 0, 0], [0, 0, 3, 0], [0, 0, 0, 1]])), 2)
    14.04
    """
    linear = np.asarray(affine, dtype=float)[:3, :3]
    axes = linear / np.linalg.norm(linear, axis=0)
    cosine = float(np.abs(axes.T @ axes - np.eye(3)).max())
    return math.degrees(math.asin(min(cosine, 1.0)))


def check_fits_output(img: torch.Tensor, out: str | os.PathLike) -> None:
    """Refuse, before any work, a volume its output format cannot hold.

    Raises:
        MrsrError: a singular or non-finite affine (no format holds it); a DICOM series whose slices
            are not parallel, to be written as NIfTI; a sheared affine, to be written as DICOM.
    """
    if not isinstance(img, MetaTensor):
        return
    check_affine(img.affine, f"Cannot write {out}: the volume's affine (voxel to world)")
    parallel = img.meta.get(SLICE_GEOMETRY_KEY) is None
    if is_nifti_path(out) and not parallel:
        raise MrsrError("This series' slices are not parallel (a radial or localizer set) and have no "
                        "single affine; write a DICOM folder instead of NIfTI.")  # fmt: skip
    angle = shear_degrees(img.affine)
    if not is_nifti_path(out) and parallel and angle > SHEAR_TOLERANCE_DEG:
        raise MrsrError(f"Cannot write {out}: the affine is sheared ({angle:.2g}° from perpendicular) and DICOM "
                        "cannot hold it; write NIfTI (.nii.gz) instead.")  # fmt: skip


def save_volume(img: torch.Tensor, out: str | os.PathLike, overwrite: bool = False) -> Path:
    """Save a (1, X, Y, Z) MetaTensor as NIfTI (``.nii``/``.nii.gz``) or as a DICOM series (a folder).

    Writing is atomic: a temporary file or folder next to ``out`` is renamed into place, so an
    interrupted run leaves nothing half-written and an existing output survives a failure.

    A NIfTI output has the affine in its sform and qform, with the sform and qform codes of the
    NIfTI input the volume came from (``sform_code``/``qform_code`` in its meta, as MONAI's
    ``NibabelReader`` leaves them), so that an output of an aligned (2) or template (4) image says
    so too; other volumes, and inputs with both codes 0, are written scanner-based (1, 1). A sheared
    affine (axes not perpendicular, :func:`shear_degrees`) is written in the sform only, with qform
    code 0: a qform cannot hold a shear, and one that drops it would place the volume elsewhere for
    readers that prefer the qform (ITK-based tools, which then refuse the file instead). A
    warning says so when the input had a qform code. A sheared volume cannot be written as DICOM.

    Args:
        img: the volume; a MetaTensor's affine (and DICOM tags, if it came from DICOM) are used.
        out: output file (NIfTI) or folder (DICOM series).
        overwrite: replace an existing output. Without it an output that another run wrote while this
            one worked is kept, and :class:`~mrsr.errors.OutputExistsError` says so.

    Raises:
        MrsrError: an output that exists (without ``overwrite``) or cannot be written, or a volume it
            cannot hold (:func:`check_fits_output`).
    """
    out = check_output_path(out, overwrite)
    meta = img.meta if isinstance(img, MetaTensor) else {}
    affine = np.asarray(img.affine if isinstance(img, MetaTensor) else np.eye(4), dtype=float)
    data = img.detach().cpu().numpy() if isinstance(img, torch.Tensor) else np.asarray(img)
    nifti = is_nifti_path(out)
    suffix = (".nii.gz" if out.name.lower().endswith(".gz") else ".nii") if nifti else ""
    try:
        check_fits_output(img, out)
        with atomic_path(out, suffix=suffix, replace=overwrite) as tmp:
            if nifti:
                _write_nifti(data[0], affine, tmp, meta.get(DESCRIPTION_KEY), _xform_codes(meta), out)
            else:
                write_dicom_series(data, affine, tmp, meta.get(DICOM_META_KEY), meta.get(SLICE_GEOMETRY_KEY),
                                   derivation=meta.get(DESCRIPTION_KEY))  # fmt: skip
    except OSError as err:
        raise MrsrError(f"Cannot write {out}: {err.strerror or err}.") from None
    return out


def _xform_codes(meta: Mapping) -> tuple[int, int]:
    """The (sform, qform) codes to write: the NIfTI input's, else :data:`DEFAULT_XFORM_CODES`.

    Both 0 also gives the default: the input's affine was then nibabel's guess from its voxel sizes,
    centred on its grid, which an output of another shape would not reproduce.
    """
    codes = []
    for key in ("sform_code", "qform_code"):
        try:
            codes.append(int(np.asarray(meta.get(key)).ravel()[0]))  # a 0-d array; a batch's meta holds one per item
        except (TypeError, ValueError, IndexError):
            return DEFAULT_XFORM_CODES
    if not all(c in nib.nifti1.xform_codes.value_set() for c in codes) or not any(codes):
        return DEFAULT_XFORM_CODES
    return codes[0], codes[1]


def _write_nifti(
    data: np.ndarray, affine: np.ndarray, path: Path, description: str | None, codes: tuple[int, int], out: Path
) -> None:
    """Write (X, Y, Z) float32 data as NIfTI with this affine, ``descrip`` and (sform, qform) ``codes``.

    A sheared affine goes in the sform only (see :func:`save_volume`); ``out`` is the name the
    warning gives (``path`` is the temporary file). MONAI's ``NibabelWriter`` builds the image; its
    ``write`` is not used because it squeezes trailing singleton axes, which would turn a one-slice
    volume into a 2D image and lose its slice thickness.
    """
    sform_code, qform_code = codes
    angle = shear_degrees(affine)
    if angle > SHEAR_TOLERANCE_DEG:
        if qform_code:  # a qform was due (the input had one, or the default): say why there is none
            warnings.warn(f"{out}: the affine is sheared ({angle:.2g}° from perpendicular), which a qform cannot hold; "
                          "written in the sform only (qform code 0), which ITK-based tools cannot read.")  # fmt: skip
        sform_code, qform_code = sform_code or 2, 0  # the sform must then hold it: aligned, as nibabel writes it
    header = nib.Nifti1Header()
    if description:
        header["descrip"] = description.encode("ascii", "replace")[:79]
    image = NibabelWriter.create_backend_obj(data, affine=affine, dtype=np.float32, header=header)
    image.set_sform(affine, code=sform_code)
    image.set_qform(affine, code=qform_code)  # sets pixdim too, even with code 0
    nib.save(image, str(path))
