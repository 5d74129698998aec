"""Batch runs at scale: many inputs, split into parts, resumable, with a status record per volume.

What ``mrsr infer`` and ``mrsr selfsr`` run when their input is a folder, a list file or a manifest section:

- **Inputs** (:func:`batch_inputs`): a file; a folder, searched recursively for NIfTI files and DICOM series
  (grouped by SeriesInstanceUID, so a folder holding several series gives one input per series); a list
  file (``.txt``, one path a line, or ``.csv`` with a ``path`` column; relative paths start at the list's
  folder); or a manifest section (``--manifest``).
- **Outputs** mirror the inputs' paths under the output folder (:func:`check_batch_outputs` refuses two
  inputs with one output): a NIfTI file keeps its name, a DICOM series becomes a derived series folder.
- **Parts** (:func:`resolve_part`): ``--num-parts N --part-id I`` takes every N-th input of the sorted list
  from the I-th on, so the parts are disjoint and together take every input; a Slurm job array
  (``SLURM_ARRAY_TASK_ID``/``SLURM_ARRAY_TASK_COUNT``) or torchrun (``RANK``/``WORLD_SIZE``) set them when not
  given.
- **Records** (:class:`StatusFile`): each part appends one JSON line per volume to
  ``OUTPUT/mrsr_status.part-I-of-N.jsonl`` as the volume ends: done, skipped or failed, why, how long, the
  peak memory and the settings' hash. An output that exists is skipped (a rerun goes on where the last one
  stopped) unless the records say other settings made it; a volume that fails is recorded and the others go
  on.

This module is torch-free until a batch runs (the command line decides whether an input is a batch before
torch loads); it sits beside :mod:`mrsr.pipeline`, whose file functions it runs.
"""

from __future__ import annotations

import abc
import csv
import json
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from mrsr.errors import MrsrError, OutputExistsError
from mrsr.paths import is_nifti_path
from mrsr.progress import say
from mrsr.settings import SelfSRSettings, settings_hash

if TYPE_CHECKING:  # the pipeline loads torch: imported where a batch runs
    from mrsr.pipeline import InferOptions, Predictor

__all__ = [
    "BatchSource",
    "BatchItem",
    "Part",
    "resolve_part",
    "batch_kind",
    "is_batch_input",
    "batch_inputs",
    "batch_output",
    "check_batch_outputs",
    "StatusFile",
    "STATUS_GLOB",
    "RECORD_FIELDS",
    "made_with",
    "BatchResult",
    "super_resolve_batch",
    "selfsr_batch",
]

Log = Callable[[str], None]
LIST_SUFFIXES = (".txt", ".csv")
STATUS_GLOB = "mrsr_status.*.jsonl"
# what grouping reads: Rows says a file holds an image; every DICOM object has a SOPClassUID (none: cut short)
_DICOM_TAGS = ["SOPClassUID", "SeriesInstanceUID", "Rows"]
_MEDIA_DIRECTORY = "1.2.840.10008.1.3.10"  # a DICOMDIR's SOP class, in its file meta only
# the keys of a status record (StatusFile)
RECORD_FIELDS = ("input", "series_uid", "output", "status", "error", "seconds", "peak_memory_mib", "mrsr_version",
                 "settings_hash", "part", "time")  # fmt: skip


@dataclass(frozen=True)
class BatchSource:
    """Where a batch's volumes come from: a ``path`` (a file, a folder, a ``.txt``/``.csv`` list) or a manifest
    section (``manifest``, ``data_root``, ``section``), not both."""

    path: str | os.PathLike | None = None
    manifest: str | os.PathLike | None = None
    data_root: str | os.PathLike | None = None
    section: str = "test"

    @classmethod
    def of(cls, source: BatchSource | str | os.PathLike) -> BatchSource:
        """``source`` as a :class:`BatchSource` (a bare path is one)."""
        return source if isinstance(source, BatchSource) else cls(path=source)

    @property
    def folder(self) -> Path | None:
        """The folder searched for inputs, if the source is one."""
        return Path(self.path) if self.path is not None and Path(self.path).is_dir() else None


@dataclass(frozen=True)
class BatchItem:
    """One volume of a batch.

    Attributes:
        path: what :func:`mrsr.data.load_volume` reads: a file or a DICOM series folder.
        output: its output, relative to the output folder (a NIfTI file or a DICOM series folder).
        label: how lines and records name it (its path relative to the source).
        series_uid: for a DICOM series that shares ``path`` with other series, its SeriesInstanceUID.
        files: that series' files (read through a folder of links, :func:`_readable`).
        layout: the layout of a manifest's headerless image (``image_layout``).
    """

    path: Path
    output: Path
    label: str
    series_uid: str | None = None
    files: tuple[Path, ...] = ()
    layout: Mapping | None = None

    @property
    def key(self) -> str:
        """What the inputs are sorted by before they are split into parts."""
        return f"{self.path}#{self.series_uid}" if self.series_uid is not None else str(self.path)


@dataclass(frozen=True)
class Part:
    """The share of a batch one process runs: every ``count``-th input of the sorted inputs from the
    ``index``-th on; ``source`` says what set it."""

    index: int = 0
    count: int = 1
    source: str = ""

    def take(self, items: Sequence) -> list:
        """This part's items: disjoint from the other parts', all of them together ``items``.

        >>> Part(1, 3).take(list("abcdefg"))
        ['b', 'e']
        """
        return list(items[self.index :: self.count])

    @property
    def status_name(self) -> str:
        """The name of this part's status file."""
        return f"mrsr_status.part-{self.index}-of-{self.count}.jsonl"

    def __str__(self) -> str:
        return f"part {self.index} of {self.count} ({self.source})"


def _env_int(env: Mapping[str, str], name: str, default: int | None = None) -> int | None:
    value = env.get(name)
    if value in (None, ""):
        return default
    try:
        return int(value)
    except ValueError:
        raise MrsrError(f"{name}={value!r} is not a whole number.") from None


def _slurm_part(env: Mapping[str, str]) -> Part | None:
    """The part of a Slurm job array's task: its place among the array's evenly spaced task IDs."""
    task = _env_int(env, "SLURM_ARRAY_TASK_ID")
    if task is None:
        return None
    low, step = _env_int(env, "SLURM_ARRAY_TASK_MIN", 0), _env_int(env, "SLURM_ARRAY_TASK_STEP", 1) or 1
    high = _env_int(env, "SLURM_ARRAY_TASK_MAX")
    count = _env_int(env, "SLURM_ARRAY_TASK_COUNT")
    if count is None and high is not None:
        count = (high - low) // step + 1
    index, rest = divmod(task - low, step)  # an array 1-10 or 0-18:2 numbers its tasks from 0 too
    # a list of IDs (--array=0,3,7) has gaps a stride cannot follow: parts would be missed silently
    gaps = high is not None and count is not None and (high - low) // step + 1 != count
    if count is None or rest or gaps:
        raise MrsrError(f"Cannot tell this Slurm task's part (SLURM_ARRAY_TASK_ID={task}); use an array of evenly "
                        "spaced IDs (e.g. --array=0-9) or pass --num-parts N --part-id I.")  # fmt: skip
    return Part(index, count, f"Slurm array: SLURM_ARRAY_TASK_ID={task}, SLURM_ARRAY_TASK_COUNT={count}")


def _torchrun_part(env: Mapping[str, str]) -> Part | None:
    world = _env_int(env, "WORLD_SIZE", 1)
    if world is None or world <= 1:
        return None
    rank = _env_int(env, "RANK", 0)
    return Part(rank or 0, world, f"torchrun: RANK={rank}, WORLD_SIZE={world}")


def resolve_part(
    num_parts: int | None = None, part_id: int | None = None, environ: Mapping[str, str] | None = None
) -> Part:
    """The part this process runs, and what set it.

    ``--num-parts``/``--part-id`` when given; else a Slurm job array's task (``SLURM_ARRAY_TASK_ID`` of
    ``SLURM_ARRAY_TASK_COUNT``; with ``--num-parts`` alone, the part is the task's); else torchrun's ``RANK`` of
    ``WORLD_SIZE``; else one part, the whole batch.

    Args:
        num_parts: the number of parts N (>= 1).
        part_id: this process's part I (0 <= I < N).
        environ: the environment to read (default: ``os.environ``).

    >>> str(resolve_part(4, 1, environ={}))
    'part 1 of 4 (--num-parts 4 --part-id 1)'
    >>> str(resolve_part(environ={"SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_COUNT": "10"}))
    'part 2 of 10 (Slurm array: SLURM_ARRAY_TASK_ID=2, SLURM_ARRAY_TASK_COUNT=10)'

    Raises:
        MrsrError: N < 1, I outside 0..N-1, ``--part-id`` without ``--num-parts``, ``--num-parts`` alone outside a
            Slurm array or with another number of tasks, torchrun together with a Slurm array or the options, or
            environment variables that are not whole numbers.
    """
    env = os.environ if environ is None else environ
    slurm, torchrun = _slurm_part(env), _torchrun_part(env)
    if num_parts is not None and num_parts < 1:
        raise MrsrError(f"--num-parts must be 1 or more, got {num_parts}.")
    if torchrun and (slurm or num_parts is not None):
        by = "a Slurm array" if slurm and num_parts is None else "--num-parts"
        raise MrsrError(f"Both torchrun ({torchrun.source}) and {by} split the inputs; use one of them.")
    if num_parts is None:
        if part_id is not None:
            raise MrsrError("--part-id needs --num-parts (the number of parts).")
        return _checked(slurm or torchrun or Part(source="one part"))
    if part_id is not None:
        return _checked(Part(part_id, num_parts, f"--num-parts {num_parts} --part-id {part_id}"))
    if slurm is None:
        raise MrsrError(f"--num-parts {num_parts} needs --part-id (or a Slurm array task: SLURM_ARRAY_TASK_ID).")
    if slurm.count != num_parts:
        raise MrsrError(f"--num-parts {num_parts}, but the Slurm array has {slurm.count} tasks "
                        f"(SLURM_ARRAY_TASK_COUNT): some parts would never run; make them equal.")  # fmt: skip
    return _checked(Part(slurm.index, num_parts, f"--num-parts {num_parts}, {slurm.source}"))


def _checked(part: Part) -> Part:
    if part.count < 1 or not 0 <= part.index < part.count:
        raise MrsrError(f"Part {part.index} of {part.count} ({part.source}) does not exist: the part must be "
                        f"0 to {part.count - 1}.")  # fmt: skip
    return part


# --- inputs ---------------------------------------------------------------------------------------------------


def _walk(root: Path) -> Iterator[Path]:
    """Every file under ``root`` in name order, less hidden ones (temporary outputs, ``.DS_Store``) and DICOMDIR
    indexes."""
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith(".") and name.upper() != "DICOMDIR":
                yield Path(folder) / name


def _probe(path: Path) -> tuple[str, str]:
    """What ``path`` is: ``("nifti", "")``, ``("dicom", SeriesInstanceUID)`` for a DICOM image, ``("broken", "")``
    for a DICOM file whose header cannot be read or is cut short (an input that will fail, and be recorded),
    ``("other", "")`` for the rest (not a volume, or a DICOM object without an image: a DICOMDIR, a report)."""
    import pydicom

    from mrsr.data.dicom import is_dicom_file

    if is_nifti_path(path):
        return "nifti", ""
    if not is_dicom_file(path):
        return "other", ""
    try:
        ds = pydicom.dcmread(str(path), stop_before_pixels=True, specific_tags=_DICOM_TAGS)
    except (pydicom.errors.InvalidDicomError, OSError, EOFError, ValueError, KeyError, TypeError):
        return "broken", ""
    if "Rows" in ds:
        return "dicom", str(ds.get("SeriesInstanceUID", ""))
    media = ds.file_meta.get("MediaStorageSOPClassUID") if hasattr(ds, "file_meta") else None
    return ("other" if "SOPClassUID" in ds or media == _MEDIA_DIRECTORY else "broken"), ""


def batch_kind(path: str | os.PathLike) -> str | None:
    """What makes ``path`` a batch, for a message (``"holds NIfTI files"``), or None for one volume.

    A batch is a ``.txt``/``.csv`` list, or a folder holding NIfTI files or several DICOM series; a folder holding
    one DICOM series and nothing else is one volume (a derived series out), as is a file. Reads DICOM headers only
    until a second series shows.
    """
    path = Path(path)
    if path.is_file():
        return f"is a {path.suffix.lower()} list of inputs" if path.suffix.lower() in LIST_SUFFIXES else None
    if not path.is_dir():
        return None
    series: set[str] = set()
    for file in _walk(path):
        kind, uid = _probe(file)
        if kind == "nifti":
            return "holds NIfTI files"
        if kind == "dicom":
            series.add(uid)
            if len(series) > 1:
                return "holds at least 2 DICOM series"
    return None


def is_batch_input(path: str | os.PathLike) -> bool:
    """``path`` is a batch (:func:`batch_kind`): a list file, or a folder of NIfTI files or several DICOM series."""
    return batch_kind(path) is not None


def _dicom_name(name: str) -> str:
    """A DICOM output folder's name: ``.dcm`` dropped, other dots as ``_`` (a folder name with a suffix reads as
    a file format: ``1.3.12.2`` and ``T1.MPRAGE`` would be refused as outputs).

    >>> _dicom_name("IM0001.dcm"), _dicom_name("1.3.12.2"), _dicom_name("t1")
    ('IM0001', '1_3_12_2', 't1')
    """
    if name.lower().endswith(".dcm"):
        name = name[: -len(".dcm")]
    return name.replace(".", "_") or "series"


def _output_for(path: Path, relative: Path) -> Path:
    """The output of one volume at ``relative`` under the output folder: a NIfTI file keeps its name, a DICOM
    file or series folder becomes a series folder, anything else (``.npy``, raw) a ``.nii.gz`` file."""
    from mrsr.data.dicom import is_dicom_file

    if is_nifti_path(path):
        return relative
    if path.is_dir() or path.suffix.lower() == ".dcm" or (path.is_file() and is_dicom_file(path)):
        return relative.with_name(_dicom_name(relative.name))
    return relative.with_name(f"{relative.name}.nii.gz")


def _folder_items(root: Path) -> list[BatchItem]:
    """The volumes under ``root``: NIfTI files, DICOM series by SeriesInstanceUID, unreadable DICOM files."""
    owners: dict[Path, set[str]] = {}  # folder (relative) -> the inputs below it
    singles: list[Path] = []
    series: dict[str, list[Path]] = {}
    for file in _walk(root):
        kind, uid = _probe(file)
        if kind == "other":
            continue
        if kind == "dicom":
            series.setdefault(uid, []).append(file)
        else:
            singles.append(file)
        owner = f"series {uid}" if kind == "dicom" else str(file)
        for folder in file.relative_to(root).parents:
            owners.setdefault(folder, set()).add(owner)
    items = [BatchItem(p, _output_for(p, p.relative_to(root)), p.relative_to(root).as_posix()) for p in singles]
    return items + [_series_item(root, uid, files, owners) for uid, files in series.items()]


def _series_item(root: Path, uid: str, files: list[Path], owners: Mapping[Path, set[str]]) -> BatchItem:
    """One DICOM series of a folder search.

    A series of one file is that file (a multi-frame image, or one slice); a series that has its folder to itself
    is that folder, mirrored; one that shares its folder with other inputs is read from its own files and
    written to a folder named after its UID inside the mirrored folder.
    """
    if len(files) == 1:
        relative = files[0].relative_to(root)
        return BatchItem(files[0], _output_for(files[0], relative), relative.as_posix())
    home = Path(os.path.commonpath([str(f.parent) for f in files]))
    relative = home.relative_to(root)
    alone = owners[relative] == {f"series {uid}"}
    if alone and home != root:
        return BatchItem(home, relative.with_name(_dicom_name(relative.name)), relative.as_posix())
    label = f"{relative.as_posix()} (series {uid or 'without a UID'})"
    return BatchItem(home, relative / _dicom_name(uid), label, uid, () if alone else tuple(files))


def _list_entries(list_file: Path) -> list[str]:
    """The paths of a ``.txt`` list (one a line; blank lines and ``#`` comments skipped) or of a ``.csv`` file's
    ``path`` column."""
    text = list_file.read_text(encoding="utf-8-sig")
    if list_file.suffix.lower() == ".txt":
        return [s for line in text.splitlines() if (s := line.strip()) and not s.startswith("#")]
    rows = csv.DictReader(text.splitlines())
    columns = {(name or "").strip().lower(): name for name in rows.fieldnames or []}
    if "path" not in columns:
        raise MrsrError(f"{list_file} has no 'path' column (its columns: {', '.join(rows.fieldnames or []) or 'none'})"
                        "; put the inputs' paths under a header 'path'.")  # fmt: skip
    return [s for row in rows if (s := (row.get(columns["path"]) or "").strip())]


def _list_items(list_file: Path) -> list[BatchItem]:
    """A list file's volumes, one an entry. Relative paths start at the list's folder; an output mirrors its
    input's path below that folder (an input elsewhere: its whole path), so it depends on the entry alone."""
    base = Path(os.path.abspath(list_file.parent))
    items = []
    for entry in _list_entries(list_file):
        path = Path(os.path.abspath(base / entry))  # an absolute entry stays as it is
        try:
            relative = path.relative_to(base) if path != base else Path(path.name)
        except ValueError:
            relative = path.relative_to(path.anchor)
        items.append(BatchItem(path, _output_for(path, relative), entry))
    return items


def batch_output(path: Path, out_dir: Path) -> Path:
    """A manifest input's output: its own name in ``out_dir`` (``.nii.gz`` added to a non-NIfTI name).

    >>> batch_output(Path("in/a.nii.gz"), Path("out")).as_posix(), batch_output(Path("s1.ima"), Path("out")).as_posix()
    ('out/a.nii.gz', 'out/s1.ima.nii.gz')
    """
    return out_dir / (path.name if is_nifti_path(path) else f"{path.name}.nii.gz")


def _manifest_items(source: BatchSource) -> list[BatchItem]:
    from mrsr.data.manifest import load_manifest

    entries = load_manifest(source.manifest, source.data_root, sections=(source.section,)).get(source.section) or []
    if not entries:
        raise MrsrError(f"The manifest {source.manifest} has no {source.section!r} entries; choose one with "
                        "--section.")  # fmt: skip
    items = []
    for entry in entries:
        path = Path(entry["image"])
        items.append(BatchItem(path, batch_output(path, Path()), path.name, layout=entry.get("image_layout")))
    return items


def batch_inputs(source: BatchSource | str | os.PathLike) -> list[BatchItem]:
    """A batch's volumes, sorted (:attr:`BatchItem.key`), each with its output relative to the output folder.

    Args:
        source: a file (one volume), a folder (searched recursively: NIfTI files and DICOM series, one input per
            SeriesInstanceUID), a ``.txt``/``.csv`` list, or a :class:`BatchSource` with a manifest section
            (outputs named as before: each input's name, flat).

    Raises:
        MrsrError: both or neither of a path and a manifest, no such path, an empty folder, list or section, a
            ``.csv`` without a ``path`` column.
    """
    source = BatchSource.of(source)
    if source.manifest is not None:
        if source.path is not None:
            raise MrsrError("Give either an input or --manifest, not both.")
        items = _manifest_items(source)
    elif source.path is None:
        raise MrsrError("Give an input volume (or --manifest for a batch).")
    else:
        items = _path_items(Path(source.path))
    return sorted(items, key=lambda item: item.key)


def _path_items(path: Path) -> list[BatchItem]:
    if not path.exists():
        raise MrsrError(f"No such file or folder: {path}")
    if path.is_dir():
        items = _folder_items(path)
        if not items:
            raise MrsrError(f"{path} holds no .nii/.nii.gz files and no DICOM images.")
        return items
    if path.suffix.lower() in LIST_SUFFIXES:
        items = _list_items(path)
        if not items:
            raise MrsrError(f"The list {path} names no inputs.")
        return items
    return [BatchItem(path, _output_for(path, Path(path.name)), path.name)]


# --- outputs --------------------------------------------------------------------------------------------------


def check_batch_outputs(items: Sequence[BatchItem], out_dir: Path, folder: Path | None = None) -> None:
    """Refuse, before any work, outputs that would collide or replace inputs.

    Args:
        items: the batch's volumes.
        out_dir: the output folder.
        folder: the folder searched for inputs, if any: the output folder must not lie inside it (a rerun would
            take the outputs for inputs).

    Raises:
        MrsrError: two inputs with one output, an output folder (a DICOM series) that would hold another
            output, an output folder inside the input folder or holding inputs, an output that is an input.
    """
    owner: dict[Path, BatchItem] = {}
    for item in items:
        other = owner.setdefault(item.output, item)
        if other is not item:
            raise MrsrError(f"{other.label} and {item.label} would both write {out_dir / item.output}; rename one "
                            "or run them into separate output folders.")  # fmt: skip
    for item in items:
        for parent in item.output.parents:
            if parent in owner:
                raise MrsrError(f"The output of {owner[parent].label} ({out_dir / parent}, a DICOM series folder) "
                                f"would hold the output of {item.label}; rename one of them.")  # fmt: skip
    _check_not_inputs(items, out_dir, folder)


def _check_not_inputs(items: Sequence[BatchItem], out_dir: Path, folder: Path | None) -> None:
    out = out_dir.resolve()
    if folder is not None and (out == folder.resolve() or folder.resolve() in out.parents):
        raise MrsrError(f"The output folder {out_dir} is inside the input folder {folder}; a rerun would take the "
                        "outputs for inputs: choose an output folder outside it.")  # fmt: skip
    for item in items:
        path = item.path.resolve()
        written = (out / item.output).resolve()
        # outputs inside a series folder would join the series when it is read again
        in_series = path.is_dir() and (out == path or path in out.parents)
        if in_series or out == path.parent or written == path or path in written.parents:
            raise MrsrError(f"The output folder {out_dir} holds inputs ({item.label}); choose another folder with "
                            "-o.")  # fmt: skip


def _check_output_folder(out_dir: Path, items: Sequence[BatchItem], source: BatchSource) -> None:
    if (out_dir.exists() and not out_dir.is_dir()) or is_nifti_path(out_dir):
        raise MrsrError(f"{out_dir} is a file name; a batch writes into a folder: give one with -o.")
    check_batch_outputs(items, out_dir, source.folder)


# --- records --------------------------------------------------------------------------------------------------


def _peak_memory_mib() -> float | None:
    """This process's peak resident memory so far, in MiB (``getrusage``: it never goes down); None where
    there is no ``resource`` module (Windows)."""
    try:
        import resource
    except ImportError:
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (2**20 if sys.platform == "darwin" else 2**10), 1)  # bytes on macOS, KiB on Linux


class StatusFile:
    """One part's status file: a JSON line per volume, appended and flushed as the volume ends.

    Each record holds ``input`` (absolute), ``series_uid`` (a series read from a shared folder, else null), ``output``
    (relative to the output folder), ``status`` (``done``, ``skipped`` or ``failed``), ``error`` (one line, or
    null), ``seconds``, ``peak_memory_mib`` (the process's peak so far), ``mrsr_version``, ``settings_hash``
    (:func:`mrsr.settings.settings_hash`), ``part`` and ``time`` (UTC, ISO 8601).
    """

    def __init__(self, path: Path, settings_digest: str, part: Part) -> None:
        from mrsr import __version__

        self.path, self.digest, self.part, self.version = path, settings_digest, part, __version__
        if path.exists() and path.stat().st_size:
            with open(path, "rb+") as f:  # a run killed mid-line: start the next record on a line of its own
                f.seek(-1, os.SEEK_END)
                if f.read(1) != b"\n":
                    f.write(b"\n")

    def append(self, item: BatchItem, status: str, seconds: float = 0.0, error: str | None = None) -> dict:
        """Append the record of ``item`` and return it."""
        record = {
            "input": os.path.abspath(item.path), "series_uid": item.series_uid, "output": item.output.as_posix(),
            "status": status, "error": error, "seconds": round(seconds, 3), "peak_memory_mib": _peak_memory_mib(),
            "mrsr_version": self.version, "settings_hash": self.digest, "part": f"{self.part.index}/{self.part.count}",
            "time": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
        }  # fmt: skip
        with open(self.path, "a", encoding="utf-8") as f:  # one write a record, flushed: whole or absent
            f.write(json.dumps(record) + "\n")
            f.flush()
        return record


def made_with(out_dir: Path) -> dict[str, str]:
    """The settings hash of each output's latest ``done`` record in every part's status file under ``out_dir``
    (output path relative to ``out_dir`` -> hash); lines cut short by a killed run are passed over."""
    latest: dict[str, tuple[str, str]] = {}
    for path in sorted(out_dir.glob(STATUS_GLOB)):
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if not isinstance(record, dict) or record.get("status") != "done":
                continue
            output, when = str(record.get("output")), str(record.get("time", ""))
            if output not in latest or when >= latest[output][0]:
                latest[output] = (when, str(record.get("settings_hash")))
    return {output: digest for output, (_, digest) in latest.items()}


# --- running --------------------------------------------------------------------------------------------------


class BatchResult(NamedTuple):
    """What a batch did: outputs written (redone ones included), outputs already there, inputs that failed, and
    this part's status file."""

    written: int
    skipped: int
    failed: list[str]
    status: Path


class _Job(abc.ABC):
    """What runs on each volume: :meth:`prepare` once (its errors end the run: they concern every volume), then
    ``job(item, path, output, overwrite, log)`` per volume, which returns a short account of the volume."""

    name = "batch"
    settings_hash = ""

    def prepare(self) -> None:  # noqa: B027 - an optional hook, not abstract
        """Load what every volume needs (nothing by default)."""

    @abc.abstractmethod
    def __call__(self, item: BatchItem, path: Path, out: Path, overwrite: bool, log: Log) -> str:
        """Run on one volume; return a short account of it."""


class _InferJob(_Job):
    """``mrsr infer`` on one volume after another, with one network for them all."""

    name = "infer"

    def __init__(self, options: InferOptions | None) -> None:
        from mrsr.pipeline import InferOptions

        self.options = options or InferOptions()
        self.predictor: Predictor | None = None

    def prepare(self) -> None:
        from mrsr.pipeline import build_predictor, run_settings

        self.predictor = build_predictor(self.options)
        # the settings the inferer runs with: the method, its scale, channels and detail included
        self.settings_hash = settings_hash(run_settings(self.options, self.predictor))

    def __call__(self, item: BatchItem, path: Path, out: Path, overwrite: bool, log: Log) -> str:
        from mrsr.pipeline import super_resolve_file

        lr, sr, self.predictor = super_resolve_file(path, out, self.options, self.predictor, item.layout,
                                                    overwrite, log)  # fmt: skip
        return f"{tuple(lr.shape[1:])} -> {tuple(sr.shape[1:])}"


class _SelfSRJob(_Job):
    """``mrsr selfsr`` on one volume after another (each trains its own network)."""

    name = "selfsr"

    def __init__(self, settings: SelfSRSettings | None) -> None:
        self.settings = settings or SelfSRSettings()
        self.settings_hash = settings_hash(self.settings)

    def __call__(self, item: BatchItem, path: Path, out: Path, overwrite: bool, log: Log) -> str:
        from mrsr.pipeline import selfsr_file

        sr, _ = selfsr_file(path, out, self.settings, overwrite, log)
        return f"-> {tuple(sr.shape[1:])}"


@contextmanager
def _readable(item: BatchItem) -> Iterator[Path]:
    """A path :func:`mrsr.data.load_volume` reads as ``item``: its own, or, for a series that shares its folder
    with other series, a temporary folder of links to its files (a copy where links are not allowed)."""
    if not item.files:
        yield item.path
        return
    with tempfile.TemporaryDirectory(prefix="mrsr_series_") as tmp:
        folder = Path(tmp) / item.output.name
        folder.mkdir()
        for k, file in enumerate(item.files):
            link = folder / f"{k:06d}.dcm"
            try:
                os.symlink(os.path.abspath(file), link)
            except OSError:
                shutil.copy2(file, link)
        yield folder


def _attempt(job: _Job, item: BatchItem, out: Path, overwrite: bool, log: Log) -> str:
    """``job`` on ``item``; an error names the item, not the temporary folder it was read through."""
    with _readable(item) as path:
        try:
            return job(item, path, out, overwrite, log)
        except MrsrError as err:
            if path == item.path:
                raise
            raise type(err)(str(err).replace(str(path), item.label)) from None


def _out_of_memory(err: BaseException) -> bool:
    """Memory ran out: Python's or NumPy's MemoryError, torch's CUDA OutOfMemoryError, or the RuntimeError of
    torch's CPU allocator (which is not a MemoryError)."""
    import torch

    cpu = isinstance(err, RuntimeError) and "can't allocate memory" in str(err)
    return cpu or isinstance(err, (MemoryError, torch.cuda.OutOfMemoryError))


def _one_line(err: BaseException) -> str:
    """The error on one line; its type too where it is not mrsr's own message (``OSError: [Errno 28] ...``)."""
    text = " ".join(str(err).split())
    if isinstance(err, MrsrError):
        return text
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def _free_memory() -> None:
    """Give back what a volume that ran out of memory held, so the next one starts clean."""
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.empty_cache()


def _run_one(job: _Job, item: BatchItem, out_dir: Path, history: Mapping[str, str], overwrite: bool,
             status: StatusFile, log: Log, tag: str) -> str:  # fmt: skip
    """Run, skip or redo ``item``; append its record; return its status."""
    out, name = out_dir / item.output, item.output.as_posix()
    if out.exists() and not overwrite:
        before = history.get(name)
        if before is None or before == job.settings_hash:  # ours, or made by a run that left no record
            return status.append(item, "skipped")["status"]
        log(f"{tag} {item.label}: its output was made with other settings (hash {before}, now {job.settings_hash}); "
            "redoing it")  # fmt: skip
        overwrite = True
    start = time.perf_counter()
    try:
        what = _attempt(job, item, out, overwrite, log)
    except OutputExistsError:  # another run (a restarted part, a second process) wrote it meanwhile
        log(f"{tag} {item.label}: written by another run meanwhile; kept")
        return status.append(item, "skipped", time.perf_counter() - start)["status"]
    except Exception as err:
        # bad or unreadable input, the file system, memory: this volume fails, the run goes on
        error, out_of_memory = _one_line(err), _out_of_memory(err)
        if not (out_of_memory or isinstance(err, (MrsrError, OSError))):  # mrsr's own fault: recorded, then raised
            status.append(item, "failed", time.perf_counter() - start, f"internal error: {error}")
            raise
    else:
        seconds = time.perf_counter() - start
        log(f"{tag} {item.label}: {what} in {seconds:.1f} s")
        return status.append(item, "done", seconds)["status"]
    log(f"{tag} {item.label}: error: {error}")
    status.append(item, "failed", time.perf_counter() - start, error)
    if out_of_memory:
        _free_memory()  # out here, the error's traceback no longer holds the volume's tensors
    return "failed"


def _run_batch(job: _Job, source: BatchSource, output_dir: str | os.PathLike, part: Part | None, overwrite: bool,
               log: Log) -> BatchResult:  # fmt: skip
    """Every volume of ``source`` in this ``part``, through ``job``, into ``output_dir``, recorded."""
    part = part or resolve_part()
    items, out_dir = batch_inputs(source), Path(output_dir)
    _check_output_folder(out_dir, items, source)
    mine = part.take(items)
    if mine:
        job.prepare()  # before the output folder is made: a bad option leaves nothing behind
    out_dir.mkdir(parents=True, exist_ok=True)
    status = StatusFile(out_dir / part.status_name, job.settings_hash, part)
    volumes = f"{len(items)} volume{'' if len(items) == 1 else 's'}"
    share = f"{part}: {len(mine)} of {volumes}" if part.count > 1 else volumes
    log(f"{job.name}: {share}; records in {status.path}")
    history = made_with(out_dir) if mine and not overwrite else {}
    outcomes = [_run_one(job, item, out_dir, history, overwrite, status, log, f"[{k}/{len(mine)}]")
                for k, item in enumerate(mine, 1)]  # fmt: skip
    return _summary(outcomes, mine, part, out_dir, status.path, log)


def _summary(outcomes: list[str], items: list[BatchItem], part: Part, out_dir: Path, status: Path,
             log: Log) -> BatchResult:  # fmt: skip
    """The end line (counts, where the outputs and records are); an error if any volume failed."""
    counts = Counter(outcomes)
    failed = [item.label for item, outcome in zip(items, outcomes) if outcome == "failed"]
    where = f" in part {part.index} of {part.count}" if part.count > 1 else ""
    log(f"{counts['done']} written, {counts['skipped']} already done, {len(failed)} failed{where}; outputs in "
        f"{out_dir}; records in {status}")  # fmt: skip
    if failed:
        more = " ..." if len(failed) > 5 else ""
        raise MrsrError(f"{len(failed)} volume(s) failed: {', '.join(failed[:5])}{more}; their errors are in "
                        f"{status}")  # fmt: skip
    return BatchResult(counts["done"], counts["skipped"], failed, status)


def super_resolve_batch(
    output_dir: str | os.PathLike,
    options: InferOptions | None = None,
    source: BatchSource | str | os.PathLike | None = None,
    part: Part | None = None,
    overwrite: bool = False,
    log: Log = say,
) -> BatchResult:
    """Super-resolve every volume of ``source`` (this ``part`` of them) into ``output_dir``, as ``mrsr infer``.

    Outputs mirror the inputs' paths (:func:`batch_inputs`); one network serves every volume. An output that
    exists is skipped unless ``overwrite``, or unless the status files say other settings made it (then it is
    redone, and a line says so); a volume that fails is recorded and the others go on. Each volume's record is
    appended to this part's status file (:class:`StatusFile`) as it ends.

    Args:
        output_dir: the output folder.
        options: what runs and how (:class:`~mrsr.pipeline.InferOptions`; default bicubic x2).
        source: a file, folder or list file, or a :class:`BatchSource` (a manifest section).
        part: this process's part (default: :func:`resolve_part` from the environment).
        overwrite: redo every output.
        log: where the lines go (default: stderr).

    Returns:
        The :class:`BatchResult`.

    Raises:
        MrsrError: bad inputs, options or outputs (before any work), or, after the others ran, any volume that
            failed (its error is in the status file).
    """
    return _run_batch(_InferJob(options), BatchSource.of(source), output_dir, part, overwrite, log)


def selfsr_batch(
    output_dir: str | os.PathLike,
    settings: SelfSRSettings | None = None,
    source: BatchSource | str | os.PathLike | None = None,
    part: Part | None = None,
    overwrite: bool = False,
    log: Log = say,
) -> BatchResult:
    """Self-supervised through-plane SR of every volume of ``source`` (this ``part``) into ``output_dir``, as
    ``mrsr selfsr`` on a folder or list: each volume trains its own network (:func:`mrsr.pipeline.selfsr_file`).

    Inputs, outputs, parts, skipping and records as :func:`super_resolve_batch`, with the hash of ``settings``.

    Raises:
        MrsrError: as :func:`super_resolve_batch`.
    """
    return _run_batch(_SelfSRJob(settings), BatchSource.of(source), output_dir, part, overwrite, log)
