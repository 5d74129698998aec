"""Data manifests: MONAI datalists with a fixed, documented split, read and written.

A manifest is a MONAI datalist (the JSON ``monai.data.load_decathlon_datalist`` reads)::

    {"description": "...", "training": [{"image": "IXI002-Guys-0828-T1.nii.gz", "name": ...}],
     "validation": [...], "test": [...]}

Paths are relative to a data root the user passes (``--data-root``), absolute, or ``pkg:NAME/...``
for files that ship inside an installed Python package (``pkg:nilearn/datasets/data/...``), found
without importing the package. This module reads (:func:`load_manifest`, :func:`resolve_datalist`)
and writes (:func:`write_manifest`) them, and holds what the scripts in ``data_manifests/`` share
(:func:`manifest_parser`, :func:`run_manifest_cli`); the datalists of each data set (IXI, fastMRI
knee, ACDC, the real data shipped in packages) are made in :mod:`mrsr.data.datasets`.

>>> from mrsr.data.datasets.real_data import REAL_DATA_MANIFEST
>>> entries = load_manifest(REAL_DATA_MANIFEST, sections="validation", check=False)["validation"]
>>> [e["name"] for e in entries]
['dipy_aniso_vox', 'itk_t1_head', 'nibabel_anatomical']
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from mrsr.errors import MrsrError
from mrsr.paths import write_text_atomic

__all__ = [
    "PATH_KEYS",
    "PIP_NAMES",
    "PKG_SCHEME",
    "SECTIONS",
    "datalist_sections",
    "load_manifest",
    "manifest_parser",
    "resolve_datalist",
    "resolve_path",
    "run_manifest_cli",
    "write_manifest",
]

SECTIONS = ("training", "validation", "test")
PATH_KEYS = ("image", "label", "mask")  # entry keys holding paths; every other key is passed through as is
PKG_SCHEME = "pkg:"
MAX_LISTED = 10  # missing files named in one error message; the rest are counted

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


def datalist_sections(datalist: Datalist) -> list[str]:
    """Every section of a datalist: the keys whose value is a list of entries (``"description"`` is not one).

    >>> datalist_sections({"description": "d", "training": [], "validation_extra": []})
    ['training', 'validation_extra']
    """
    return [k for k, v in datalist.items() if isinstance(v, list)]


def _section_names(doc: dict, path: str, sections: str | Sequence[str] | None) -> list[str]:
    names = [sections] if isinstance(sections, str) else list(sections or [s for s in SECTIONS if s in doc])
    if not names:
        raise MrsrError(f"{path} has none of the sections {', '.join(SECTIONS)}; it is not a MONAI datalist.")
    for name in names:
        if name not in doc:
            have = ", ".join(datalist_sections(doc)) or "none"
            raise MrsrError(f"{path} has no {name!r} section (it has: {have}).")
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
    """``"training 2, validation 3, test 6"``, and any other section's count after them."""
    extra = [k for k in datalist_sections(datalist) if k not in SECTIONS]
    return ", ".join(f"{name} {len(datalist.get(name, []))}" for name in (*SECTIONS, *extra))


def _shown(items: list[str]) -> str:
    """The first few items and a count of the rest, for one-line messages."""
    more = len(items) - MAX_LISTED
    return ", ".join(items[:MAX_LISTED]) + (f" and {more} more" if more > 0 else "")


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
