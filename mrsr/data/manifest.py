"""Data manifests: MONAI datalists with a fixed, documented split, and the functions that make them.

A manifest is a MONAI datalist (the JSON ``monai.data.load_decathlon_datalist`` reads)::

    {"description": "...", "training": [{"image": "IXI002-Guys-0828-T1.nii.gz", "name": ...}],
     "validation": [...], "test": [...]}

Paths are relative to a data root the user passes (``--data-root``), absolute, or ``pkg:NAME/...``
for files that ship inside an installed Python package (``pkg:nilearn/datasets/data/...``), found
without importing the package. The scripts in ``data_manifests/`` call the ``*_datalist`` functions
here to write manifests for a user's copy of IXI, fastMRI knee and ACDC, and ``real_data.json``.

>>> entries = load_manifest(REAL_DATA_MANIFEST, sections="validation", check=False)["validation"]
>>> [e["name"] for e in entries]
['dipy_aniso_vox', 'itk_t1_head', 'nibabel_anatomical']
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import sys
import warnings
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np

from mrsr.errors import MrsrError
from mrsr.paths import atomic_path, write_text_atomic

__all__ = [
    "PATH_KEYS",
    "PIP_NAMES",
    "PKG_SCHEME",
    "REAL_DATA_MANIFEST",
    "SECTIONS",
    "acdc_datalist",
    "convert_fastmri_h5",
    "fastmri_knee_datalist",
    "fastmri_spacing",
    "ixi_datalist",
    "load_manifest",
    "manifest_parser",
    "real_data_datalist",
    "resolve_datalist",
    "resolve_path",
    "run_manifest_cli",
    "write_manifest",
]

SECTIONS = ("training", "validation", "test")
PATH_KEYS = ("image", "label", "mask")  # entry keys holding paths; every other key is passed through as is
PKG_SCHEME = "pkg:"
MAX_LISTED = 10  # missing files named in one error message; the rest are counted
# in a source checkout (data_manifests/ is not installed with the package)
REAL_DATA_MANIFEST = Path(__file__).resolve().parents[2] / "data_manifests" / "real_data.json"

Datalist = dict  # {"description": str, "training": [...], "validation": [...], "test": [...]}


# import names whose pip name differs (pkg: paths name the import name, the folder in site-packages)
PIP_NAMES = {"data_store": "pydicom-data"}


class _PackageMissing(MrsrError):
    def __init__(self, package: str):
        pip_name = PIP_NAMES.get(package, package)
        super().__init__(f"the package {package!r} is not installed (pip install {pip_name}).")
        self.package = pip_name


# --------------------------------------------------------------------------------------------- reading, writing


def resolve_path(entry_path: str, data_root: str | os.PathLike | None) -> str:
    """Resolve a manifest path to an absolute path string.

    Args:
        entry_path: ``pkg:PACKAGE/path/in/package``, an absolute path (kept as is) or a path relative
            to ``data_root``.
        data_root: the folder relative paths start from; ``None`` when the manifest has none.

    Raises:
        MrsrError: a relative path without ``data_root``, or a ``pkg:`` path whose package is not installed.

    >>> resolve_path("pkg:mrsr/data/sample_t1_head.nii.gz", None).endswith("sample_t1_head.nii.gz")
    True
    """
    if not isinstance(entry_path, str) or not entry_path:
        raise MrsrError(f"expected a non-empty path string, got {entry_path!r}.")
    if entry_path.startswith(PKG_SCHEME):
        return _resolve_pkg(entry_path)
    if os.path.isabs(entry_path):
        return entry_path
    if data_root is None:
        raise MrsrError(f"{entry_path!r} is relative; pass --data-root DIR, the folder the paths start from.")
    return os.path.abspath(os.path.join(os.path.expanduser(os.fspath(data_root)), entry_path))


def _resolve_pkg(entry_path: str) -> str:
    package, _, inner = entry_path[len(PKG_SCHEME) :].partition("/")
    if not package.isidentifier() or not inner:
        raise MrsrError(f"{entry_path!r}: a package path reads pkg:PACKAGE/path/inside/it.")
    try:  # a top-level name only: find_spec imports the parents of dotted names, and importing nilearn is slow
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        spec = None
    locations = list(spec.submodule_search_locations or []) if spec else []
    if not locations:
        raise _PackageMissing(package)
    for location in locations:  # a namespace package may have several folders
        candidate = os.path.join(location, *inner.split("/"))
        if os.path.exists(candidate):
            return os.path.abspath(candidate)
    return os.path.abspath(os.path.join(locations[0], *inner.split("/")))  # reported as missing by the check


def load_manifest(
    path: str | os.PathLike,
    data_root: str | os.PathLike | None = None,
    sections: str | Sequence[str] | None = None,
    check: bool = True,
) -> dict[str, list[dict]]:
    """Read a manifest and return its sections with every path resolved to an absolute path string.

    Args:
        path: the manifest (MONAI datalist JSON).
        data_root: the folder its relative paths start from.
        sections: the section name(s) to return; ``None``: all of training/validation/test present.
        check: fail early, with one error naming all missing files (or all packages not installed)
            if any file does not exist. Unchecked, a ``pkg:`` path of a package not installed is
            returned as it is, so the sections that are used can be checked on their own.

    Returns:
        ``{section: [entry, ...]}``; each entry is a copy with its ``image`` (and ``label``/``mask``)
        resolved and its other keys kept.

    Raises:
        MrsrError: a missing or malformed manifest, a missing section, an entry without ``image``,
            relative paths without ``data_root``, or (checked) packages not installed or missing files.
    """
    path = Path(path)
    return resolve_datalist(_read_json(path), data_root, sections, check, source=str(path))


def resolve_datalist(
    datalist: Datalist,
    data_root: str | os.PathLike | None = None,
    sections: str | Sequence[str] | None = None,
    check: bool = True,
    source: str = "the datalist",
) -> dict[str, list[dict]]:
    """:func:`load_manifest` for a datalist already in memory; ``source`` names it in error messages."""
    names = _section_names(datalist, source, sections)
    missing_packages: set[str] = set()
    out: dict[str, list[dict]] = {}
    for name in names:
        out[name] = []
        for i, entry in enumerate(datalist[name]):
            where = f"{source}: {name}[{i}]"
            _check_entry(entry, where)
            resolved = dict(entry)
            for key in PATH_KEYS:
                if key in entry:
                    try:
                        resolved[key] = _resolve_value(entry[key], data_root)
                    except _PackageMissing as err:  # unchecked: the pkg: path is kept, as missing files are
                        missing_packages.add(err.package)
                    except MrsrError as err:
                        raise MrsrError(f"{where} {key}: {err}") from None
            out[name].append(resolved)
    if missing_packages and check:
        pkgs = sorted(missing_packages)
        raise MrsrError(f"{source} reads files shipped in packages that are not installed: {', '.join(pkgs)}; "
                        f"pip install {' '.join(pkgs)}.")  # fmt: skip
    if check:
        _check_files(out, source, data_root)
    return out


def _read_json(path: Path) -> dict:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise MrsrError(f"No such manifest: {path}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise MrsrError(f"Cannot read the manifest {path}: {getattr(err, 'strerror', None) or err}.") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as err:
        raise MrsrError(f"{path} is not valid JSON: {err.msg} (line {err.lineno}, column {err.colno}).") from None
    if not isinstance(doc, dict):
        raise MrsrError(f"{path} is not a MONAI datalist: expected a JSON object with training/validation/test lists.")
    return doc


def _section_names(doc: dict, path: str, sections: str | Sequence[str] | None) -> list[str]:
    names = [sections] if isinstance(sections, str) else list(sections or [s for s in SECTIONS if s in doc])
    if not names:
        raise MrsrError(f"{path} has none of the sections {', '.join(SECTIONS)}; it is not a MONAI datalist.")
    for name in names:
        if name not in doc:
            have = [k for k, v in doc.items() if isinstance(v, list)]
            raise MrsrError(f"{path} has no {name!r} section (it has: {', '.join(have) or 'none'}).")
        if not isinstance(doc[name], list):
            raise MrsrError(f"{path}: the {name!r} section is not a list of entries.")
    return names


def _check_entry(entry, where: str) -> None:
    if not isinstance(entry, dict) or "image" not in entry:
        raise MrsrError(f'{where} is not an entry with an "image" path: {json.dumps(entry)[:80]}')


def _resolve_value(value, data_root) -> str | list[str]:
    # MONAI datalists allow a list of paths for one key (several files stacked as channels)
    if isinstance(value, list) and value:
        return [resolve_path(v, data_root) for v in value]
    return resolve_path(value, data_root)


def _paths(entry: dict) -> Iterable[str]:
    for key in PATH_KEYS:
        value = entry.get(key)
        yield from value if isinstance(value, list) else [value] if isinstance(value, str) else []


def _check_files(lists: dict[str, list[dict]], path: str, data_root) -> None:
    missing = [p for entries in lists.values() for e in entries for p in _paths(e) if not os.path.exists(p)]
    if not missing:
        return
    missing = list(dict.fromkeys(missing))
    if data_root is not None and not os.path.isdir(os.path.expanduser(os.fspath(data_root))):
        raise MrsrError(f"The data root {data_root} is not a folder; pass the --data-root {path} was made for.")
    hint = f"check --data-root (now {data_root})" if data_root is not None else "check the paths"
    raise MrsrError(f"{len(missing)} file(s) named in {path} do not exist: {_shown(missing)}; {hint}.")


def write_manifest(path: str | os.PathLike, datalist: Datalist, overwrite: bool = False) -> Path:
    """Write a datalist as JSON atomically (a temporary file next to ``path``, then ``os.replace``).

    Args:
        path: the manifest to write.
        datalist: ``{"description": ..., "training": [...], "validation": [...], "test": [...]}``.
        overwrite: replace an existing manifest.

    Raises:
        MrsrError: ``path`` exists without ``overwrite``, a malformed datalist, or an unwritable folder.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise MrsrError(f"{path} exists; pass --overwrite to replace it or choose another output path.")
    for name in SECTIONS:
        if name in datalist:
            for i, entry in enumerate(datalist[name]):
                _check_entry(entry, f"{name}[{i}]")
    text = json.dumps(datalist, indent=2) + "\n"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, text)
    except OSError as err:
        raise MrsrError(f"Cannot write {path}: {err.strerror or err}.") from None
    return path


def _split_counts(datalist: Datalist) -> str:
    return ", ".join(f"{name} {len(datalist.get(name, []))}" for name in SECTIONS)


# --------------------------------------------------------------------------------------------- IXI

IXI_HH_SUBJECTS = 185
IXI_TRAIN_SUBJECTS = 150
IXI_CONTRASTS = ("T1", "T2", "PD")
_IXI_NAME = re.compile(r"^IXI(\d+)-HH-(\d+)-(T1|T2|PD)\.nii(\.gz)?$")


def ixi_datalist(
    ixi_root: str | os.PathLike, contrast: str = "T1", num_val: int = 10, allow_partial: bool = False
) -> Datalist:
    """The IXI Hammersmith Hospital (HH) protocol: 185 subjects sorted by subject id, the first 150 for
    training (the last ``num_val`` of them held out as validation), the remaining 35 for test.

    Files named like ``IXI012-HH-1211-T1.nii.gz`` are found anywhere under ``ixi_root`` (the IXI-T1,
    IXI-T2, IXI-PD archives unpacked flat or in folders); paths are relative to ``ixi_root``.

    Args:
        ixi_root: the folder holding the user's copy of IXI.
        contrast: ``"T1"``, ``"T2"`` or ``"PD"``.
        num_val: training subjects held out for validation (the last ones by id).
        allow_partial: split a copy that does not hold exactly 185 HH volumes of this contrast, in
            the same proportion (150/185 training); the split then differs from the published one.

    Raises:
        MrsrError: no HH volumes, a count other than 185 without ``allow_partial``, duplicates, bad arguments.
    """
    contrast = contrast.upper()
    if contrast not in IXI_CONTRASTS:
        raise MrsrError(f"Unknown IXI contrast {contrast!r}; choose one of {', '.join(IXI_CONTRASTS)}.")
    root = _existing_dir(ixi_root, "IXI root")
    found: dict[int, Path] = {}
    for f in sorted(root.rglob(f"IXI*-HH-*-{contrast}.nii*")):
        m = _IXI_NAME.match(f.name)
        if m and m.group(3) == contrast:
            subject = int(m.group(1))
            if subject in found:
                raise MrsrError(f"IXI{subject:03d} has two {contrast} files: {found[subject]} and {f}; keep one.")
            found[subject] = f
    n = len(found)
    if not n:
        raise MrsrError(f"No IXI HH {contrast} volumes (IXInnn-HH-nnnn-{contrast}.nii.gz) under {root}.")
    n_train = IXI_TRAIN_SUBJECTS
    if n != IXI_HH_SUBJECTS:
        if not allow_partial:
            raise MrsrError(
                f"{root} holds {n} IXI HH {contrast} volumes, the protocol needs all {IXI_HH_SUBJECTS}; complete your "
                "copy, or pass --allow-partial to split what is there in the same proportion (not comparable)."
            )
        n_train = round(n * IXI_TRAIN_SUBJECTS / IXI_HH_SUBJECTS)
        warnings.warn(f"Partial IXI copy: {n} HH {contrast} volumes, {n_train} for training; not the published split.")
    entries = [
        {"image": f.relative_to(root).as_posix(), "name": _stem(f), "subject": f.name.split("-")[0]}
        for f in (found[s] for s in sorted(found))
    ]
    description = (
        f"IXI HH {contrast}: {n} subjects sorted by id; first {n_train} training (last {num_val} of them "
        f"validation), remaining {n - n_train} test. Paths relative to the IXI root."
    )
    train, val = _holdout(entries[:n_train], num_val, "subjects")
    return {"description": description, "training": train, "validation": val, "test": entries[n_train:]}


def _holdout(pool: list, num_val: int, what: str) -> tuple[list, list]:
    """Split the last ``num_val`` items of ``pool`` off as validation."""
    if not 0 <= num_val < len(pool):
        raise MrsrError(f"--num-val must be between 0 and {len(pool) - 1} (training has {len(pool)} {what}).")
    cut = len(pool) - num_val
    return pool[:cut], pool[cut:]


def _shown(items: list[str]) -> str:
    """The first few items and a count of the rest, for one-line messages."""
    more = len(items) - MAX_LISTED
    return ", ".join(items[:MAX_LISTED]) + (f" and {more} more" if more > 0 else "")


def _existing_dir(path: str | os.PathLike, what: str) -> Path:
    path = Path(path).expanduser()
    if not path.is_dir():
        raise MrsrError(f"The {what} {path} is not a folder.")
    return path


def _stem(path: Path) -> str:
    name = path.name
    return name[: -len(".nii.gz")] if name.endswith(".nii.gz") else path.stem


# --------------------------------------------------------------------------------------------- fastMRI knee

FASTMRI_DEFAULT_SPACING = (0.5, 0.5, 3.0)  # mm; used when a file's ISMRMRD header gives no reconSpace geometry
FASTMRI_SPLITS = ("singlecoil_train", "singlecoil_val")


def fastmri_knee_datalist(
    fastmri_root: str | os.PathLike, out_dir: str | os.PathLike, progress: bool = False
) -> Datalist:
    """fastMRI knee single-coil: convert the reconstructions to NIfTI and split them.

    Each ``singlecoil_train/*.h5`` and ``singlecoil_val/*.h5`` under ``fastmri_root`` becomes
    ``out_dir/<same folder>/<name>.nii.gz`` (see :func:`convert_fastmri_h5`; files already converted
    are kept). Split: the official train files are training; the official val files, sorted by name,
    are validation (first half) and test (second half), since the official test files carry no
    reconstructions. Paths are relative to ``out_dir``.

    Args:
        fastmri_root: the folder holding ``singlecoil_train/`` and ``singlecoil_val/``.
        out_dir: the folder for the NIfTI volumes (the data root of the manifest).
        progress: show a progress bar.
    """
    root = _existing_dir(fastmri_root, "fastMRI root")
    sources = {}
    for split in FASTMRI_SPLITS:
        sources[split] = sorted((root / split).glob("*.h5"))
        if not sources[split]:
            raise MrsrError(
                f"No {split}/*.h5 files under {root}; give the folder holding {' and '.join(FASTMRI_SPLITS)}."
            )
    out_dir = Path(out_dir).expanduser()
    lists = {}
    from tqdm import tqdm

    for split, files in sources.items():
        lists[split] = []
        for h5 in tqdm(files, desc=f"fastMRI {split}", disable=not progress):
            out = out_dir / split / f"{h5.stem}.nii.gz"
            attrs = convert_fastmri_h5(h5, out) if not out.exists() else _fastmri_attrs(h5)
            lists[split].append({"image": out.relative_to(out_dir).as_posix(), "name": h5.stem, **attrs})
    val = lists["singlecoil_val"]
    half = len(val) // 2
    description = (
        f"fastMRI knee single-coil reconstruction_esc as NIfTI: official train ({len(lists['singlecoil_train'])}) "
        f"training; official val sorted by name, first {half} validation, last {len(val) - half} test. "
        "Paths relative to the converted folder."
    )
    return {
        "description": description,
        "training": lists["singlecoil_train"],
        "validation": val[:half],
        "test": val[half:],
    }


def _h5py():
    try:
        import h5py
    except ImportError:
        raise MrsrError("Reading fastMRI .h5 files needs h5py: pip install h5py (dipy brings it too).") from None
    return h5py


def _fastmri_attrs(h5: Path) -> dict:
    """The entry keys kept from a file's attributes: the acquisition (CORPD_FBK, CORPDFS_FBK)."""
    try:
        with _h5py().File(h5, "r") as f:
            value = f.attrs.get("acquisition")
    except OSError as err:
        raise MrsrError(f"Cannot read {h5}: not an HDF5 file or damaged ({err}).") from None
    if isinstance(value, bytes):
        value = value.decode()
    return {"acquisition": str(value)} if value is not None else {}


def convert_fastmri_h5(h5: str | os.PathLike, out: str | os.PathLike) -> dict:
    """Write one fastMRI file's ``reconstruction_esc`` magnitudes (slices, rows, cols) as a NIfTI volume.

    The volume is (X, Y, Z) = (column, row flipped so viewers show it upright, slice). The spacing is
    the header's reconSpace ``fieldOfView_mm / matrixSize`` (z: the slice thickness), else
    :data:`FASTMRI_DEFAULT_SPACING`. fastMRI single-coil files carry no patient orientation: the affine
    is diagonal. The write is atomic.

    Returns:
        the entry keys kept from the file's attributes (``acquisition``).
    """
    h5, out = Path(h5), Path(out)
    try:
        with _h5py().File(h5, "r") as f:
            if "reconstruction_esc" not in f:
                raise MrsrError(f"{h5} has no 'reconstruction_esc' images; give single-coil train/val files.")
            images = np.abs(np.asarray(f["reconstruction_esc"][()], dtype=np.float32))
            header = f["ismrmrd_header"][()] if "ismrmrd_header" in f else None
    except OSError as err:
        raise MrsrError(f"Cannot read {h5}: not an HDF5 file or damaged ({err}).") from None
    if images.ndim != 3:
        raise MrsrError(f"{h5}: reconstruction_esc has shape {images.shape}; expected (slices, rows, cols).")
    volume = np.ascontiguousarray(images[:, ::-1, :].transpose(2, 1, 0))
    _save_nifti(volume, np.diag([*fastmri_spacing(header), 1.0]), out)
    return _fastmri_attrs(h5)


def fastmri_spacing(header: bytes | str | None) -> tuple[float, float, float]:
    """Voxel size in mm from an ISMRMRD XML header's reconSpace, else :data:`FASTMRI_DEFAULT_SPACING`.

    >>> xml = ("<ismrmrdHeader><encoding><reconSpace><matrixSize><x>320</x><y>320</y><z>1</z></matrixSize>"
    ...        "<fieldOfView_mm><x>140</x><y>140</y><z>3</z></fieldOfView_mm></reconSpace></encoding></ismrmrdHeader>")
    >>> fastmri_spacing(xml)
    (0.4375, 0.4375, 3.0)
    """
    try:
        space = ET.fromstring(header).find("{*}encoding/{*}reconSpace")  # type: ignore[arg-type]
        fov = [float(space.find(f"{{*}}fieldOfView_mm/{{*}}{a}").text) for a in "xyz"]  # type: ignore[union-attr]
        size = [float(space.find(f"{{*}}matrixSize/{{*}}{a}").text) for a in "xyz"]  # type: ignore[union-attr]
        spacing = tuple(f / s for f, s in zip(fov, size))
    except (ET.ParseError, AttributeError, TypeError, ValueError, ZeroDivisionError):
        return FASTMRI_DEFAULT_SPACING
    valid = all(np.isfinite(spacing)) and min(spacing) > 0
    return spacing if valid else FASTMRI_DEFAULT_SPACING  # type: ignore[return-value]


def _save_nifti(volume: np.ndarray, affine: np.ndarray, out: Path) -> None:
    import nibabel as nib

    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out, suffix=".nii.gz") as tmp:
        nib.save(nib.Nifti1Image(volume, affine), tmp)


# --------------------------------------------------------------------------------------------- ACDC

ACDC_TRAIN_PATIENTS = range(1, 101)
ACDC_TEST_PATIENTS = range(101, 151)
_ACDC_FRAME = re.compile(r"^patient(\d{3})_frame(\d{2})\.nii(\.gz)?$")  # not the _gt labels, not the _4d cine


def acdc_datalist(acdc_root: str | os.PathLike, num_val: int = 10, allow_partial: bool = False) -> Datalist:
    """ACDC cardiac cine, the end-diastolic (ED) and end-systolic (ES) frames of each patient.

    Patients 001-100 (``training/``) are training, the last ``num_val`` of them (091-100 by default)
    validation; patients 101-150 (``testing/``) are test. Entries carry the ``_gt`` segmentation as
    ``label`` where the copy has it. Paths are relative to ``acdc_root`` (the folder holding
    ``training/`` and ``testing/``, or their parent ``database/``).

    Args:
        acdc_root: the user's copy of ACDC.
        num_val: training patients held out for validation (the last ones by number).
        allow_partial: accept a copy without all 150 patients (each with two frames); the split by
            patient number is kept.
    """
    root = _existing_dir(acdc_root, "ACDC root")
    frames = _acdc_frames(root)
    complete = {p for p, files in frames.items() if len(files) == 2}
    incomplete = sorted({*ACDC_TRAIN_PATIENTS, *ACDC_TEST_PATIENTS} - complete)
    if incomplete and not allow_partial:
        shown = _shown([f"{p:03d}" for p in incomplete])
        raise MrsrError(f"{root}: {len(incomplete)} of the 150 ACDC patients lack their two ED/ES frames ({shown}); "
                        "complete the copy or pass --allow-partial.")  # fmt: skip
    if incomplete:
        warnings.warn(f"Partial ACDC copy: {len(incomplete)} patients incomplete; the split by patient number is kept.")
    train, val = _holdout([p for p in sorted(frames) if p in ACDC_TRAIN_PATIENTS], num_val, "patients")
    test = [p for p in sorted(frames) if p in ACDC_TEST_PATIENTS]
    description = (
        f"ACDC cine ED/ES frames: patients 001-100 training (the last {num_val} validation), 101-150 test. "
        "Paths relative to the ACDC root."
    )
    lists = {"training": train, "validation": val, "test": test}
    return {
        "description": description,
        **{k: [_acdc_entry(f, root) for p in v for f in frames[p]] for k, v in lists.items()},
    }


def _acdc_frames(root: Path) -> dict[int, list[Path]]:
    """Each patient's frame files (sorted), from ``training/`` and ``testing/`` under ``root`` or ``root/database``."""
    base = root / "database" if not (root / "training").is_dir() and (root / "database").is_dir() else root
    frames: dict[int, list[Path]] = {}
    for sub in ("training", "testing"):
        for f in sorted((base / sub).glob("patient*/patient*_frame*.nii*")):
            m = _ACDC_FRAME.match(f.name)
            if m and f.parent.name == f"patient{m.group(1)}":
                frames.setdefault(int(m.group(1)), []).append(f)
    if not frames:
        raise MrsrError(f"No ACDC frames (training/patientNNN/patientNNN_frameNN.nii.gz) under {root}.")
    return frames


def _acdc_entry(frame: Path, root: Path) -> dict:
    entry = {"image": frame.relative_to(root).as_posix(), "name": _stem(frame), "patient": frame.parent.name}
    label = frame.with_name(f"{_stem(frame)}_gt{frame.name[len(_stem(frame)) :]}")
    if label.exists():
        entry["label"] = label.relative_to(root).as_posix()
    phase = _acdc_phase(frame)
    if phase:
        entry["phase"] = phase
    return entry


def _acdc_phase(frame: Path) -> str | None:
    """ED or ES, from the patient's Info.cfg (``ED: 1``, ``ES: 12``)."""
    try:
        lines = (frame.parent / "Info.cfg").read_text().splitlines()
    except OSError:
        return None
    number = int(_ACDC_FRAME.match(frame.name).group(2))  # type: ignore[union-attr]
    for line in lines:
        key, _, value = line.partition(":")
        if key.strip() in ("ED", "ES") and value.strip().isdigit() and int(value) == number:
            return key.strip()
    return None


# --------------------------------------------------------------------------------------------- real data

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
    choices use: dipy's anisotropic b0, mrsr's T1 head sample and nibabel's anatomical brain. Test,
    for reporting only (no training run or recipe choice has seen it): six MR images from
    pydicom-data, pydicom, dipy and matplotlib (shoulder, abdomen, brain and head; T1, T2 and
    post-contrast fat-suppressed T1). All paths are ``pkg:`` paths; the headerless matplotlib slice
    carries its ``image_layout`` (:class:`mrsr.data.io.RawLayout`), which ``LoadVolumed`` reads.
    """
    description = (
        "Real MR scans shipped inside Python packages (pkg: paths, no data root). Training: nilearn MNI152 T1 "
        "template, dipy S0_10slices b0. Validation (what recipe choices use): dipy aniso_vox b0, mrsr's T1 head "
        "sample, nibabel anatomical.nii. Test (for reporting only, never trained on or used to choose anything): "
        "pydicom-data MR2 shoulder T1, Siemens abdomen post-contrast fat-suppressed T1, emri T1 brain crop, "
        "pydicom MR_small T2, dipy T1 coronal brain slice (.npy), matplotlib s1045 sagittal head (raw; load it "
        "with its image_layout, e.g. LoadVolumed)."
    )
    return {"description": description, **{k: [json.loads(json.dumps(e)) for e in v] for k, v in REAL_DATA.items()}}


# --------------------------------------------------------------------------------------------- scripts


def manifest_parser(prog: str, description: str, out_default: str | None = None) -> argparse.ArgumentParser:
    """An argparse parser with the options every manifest script shares: ``--out`` and ``--overwrite``."""
    parser = argparse.ArgumentParser(
        prog=prog, description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument(
        "--out", required=out_default is None, default=out_default, help="the manifest (.json) to write"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing manifest")
    return parser


def run_manifest_cli(
    parser: argparse.ArgumentParser, build: Callable[[argparse.Namespace], Datalist], argv: Sequence[str] | None = None
) -> int:
    """Parse ``argv``, build the datalist with ``build(args)``, write it to ``args.out``.

    Bad input ends with one line ``PROG: error: ...`` on stderr and exit code 2, before any work is
    done where it can be told early (an existing ``--out`` without ``--overwrite``).

    Returns:
        the exit code: 0, or 2 on bad input.
    """
    args = parser.parse_args(argv)
    try:
        out = Path(args.out)
        if out.suffix.lower() != ".json":
            raise MrsrError(f"--out {out}: a manifest is a .json file.")
        if out.exists() and not args.overwrite:
            raise MrsrError(f"{out} exists; pass --overwrite to replace it or choose another --out.")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            datalist = build(args)
        for w in caught:  # ours (partial copies) as one line each; others as Python shows them
            if w.category is UserWarning:
                print(f"{parser.prog}: warning: {w.message}", file=sys.stderr)
            else:
                warnings.showwarning(w.message, w.category, w.filename, w.lineno)
        write_manifest(out, datalist, overwrite=args.overwrite)
    except (MrsrError, OSError) as err:
        print(f"{parser.prog}: error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {out}: {_split_counts(datalist)}")
    return 0
