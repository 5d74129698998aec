"""Checks on input and output paths, light enough to run before torch and MONAI load.

The command line calls them first, so a wrong path is reported in a fraction of a second; the
Python API (:func:`mrsr.data.save_volume`) calls them again before writing.
"""

from __future__ import annotations

import errno
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mrsr.errors import MrsrError, OutputExistsError

__all__ = [
    "NIFTI_SUFFIXES",
    "is_nifti_path",
    "check_input_path",
    "check_output_path",
    "atomic_path",
    "write_text_atomic",
]

NIFTI_SUFFIXES = (".nii", ".nii.gz")
# how the Python API and the command line say "replace it"
API_OVERWRITE = "pass overwrite=True"
CLI_OVERWRITE = "pass --overwrite"


def is_nifti_path(path: str | os.PathLike) -> bool:
    """True for a ``.nii`` or ``.nii.gz`` file name."""
    return str(path).lower().endswith(NIFTI_SUFFIXES)


def check_input_path(path: str | os.PathLike) -> Path:
    """``path`` as a Path if it exists.

    Raises:
        MrsrError: no such file or folder.
    """
    path = Path(path)
    if not path.exists():
        raise MrsrError(f"No such file or folder: {path}")
    return path


def check_output_path(
    out: str | os.PathLike,
    overwrite: bool = False,
    inputs: tuple = (),
    volume: bool = True,
    overwrite_hint: str = API_OVERWRITE,
) -> Path:
    """Validate an output path before any work is done.

    Args:
        out: the output path.
        overwrite: whether an existing output may be replaced.
        inputs: paths the output must not replace.
        volume: the output is a volume (a NIfTI file name or a DICOM folder name).
        overwrite_hint: how the caller asks to replace an output (``"pass --overwrite"`` on the
            command line), said when ``out`` exists.

    Raises:
        MrsrError: the output is an input, exists without ``overwrite``, has an unknown format, or
            its folder cannot be created or written.
    """
    out = Path(out)
    for inp in inputs:
        inp = Path(inp)
        if out.resolve() == inp.resolve() or (inp.is_file() and inp.resolve().parent == out.resolve()):
            raise MrsrError(f"The output {out} would overwrite the input {inp}; choose another output path.")
    if out.exists() and not overwrite:
        raise OutputExistsError(f"{out} exists; {overwrite_hint} to replace it or choose another output path.")
    if volume and out.exists() and out.is_dir() != (not is_nifti_path(out)):
        raise MrsrError(f"{out} exists and is a {'folder' if out.is_dir() else 'file'}; choose another output path.")
    if volume and not is_nifti_path(out) and out.suffix and out.suffix.lower() not in (".dcm",):
        raise MrsrError(f"{out}: unknown output format; use a .nii/.nii.gz file name or a folder name for DICOM.")
    parent = out.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise MrsrError(f"Cannot create the output folder {parent}: {err.strerror or err}.") from None
    if not os.access(parent, os.W_OK):
        raise MrsrError(f"The output folder {parent} is not writable; choose another output path.")
    return out


@contextmanager
def atomic_path(
    out: str | os.PathLike, suffix: str = "", directory: bool = False, replace: bool = True
) -> Iterator[Path]:
    """A temporary sibling of ``out`` to write; it replaces ``out`` only if the block succeeds.

    A kill or an error never leaves half an output, and an existing ``out`` is kept until the new
    one is complete (an existing folder is set aside, then removed once the new one is in place).
    With ``replace=False`` the temporary path becomes ``out`` only if no other run wrote ``out``
    meanwhile, in one atomic step (a hard link for a file, a rename for a folder): two runs that
    write the same output end with one whole output, the first to finish.

    Args:
        out: the final file or folder.
        suffix: appended to the temporary name (writers that choose the format by extension need
            ``.nii.gz``).
        directory: create the temporary path as an empty folder (a DICOM series, a run folder).
        replace: whether an ``out`` that appeared while the block ran is replaced; if not,
            :class:`~mrsr.errors.OutputExistsError` is raised and ``out`` is kept.

    Yields:
        The temporary path (in ``out``'s folder, so the final rename is atomic).

    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> with atomic_path(folder / "a.txt") as tmp:
    ...     _ = tmp.write_text("done")
    >>> (folder / "a.txt").read_text(), sorted(p.name for p in folder.iterdir())
    ('done', ['a.txt'])
    """
    out = Path(out)
    tmp = out.with_name(f".{out.name}.{uuid.uuid4().hex[:12]}.tmp{suffix}")
    if directory:
        tmp.mkdir()
    try:
        yield tmp
        if replace:
            _replace(tmp, out)
        else:
            _publish(tmp, out)
    finally:
        if tmp.is_dir():
            shutil.rmtree(tmp)
        else:
            tmp.unlink(missing_ok=True)


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` through :func:`atomic_path`; returns ``path`` as a Path."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def _publish(tmp: Path, out: Path) -> None:
    """Make ``tmp`` ``out`` only where ``out`` does not exist, atomically (the check and the move are one
    system call: another run may write ``out`` at any moment)."""
    try:
        if tmp.is_dir():
            if out.exists():  # a rename would replace an empty folder; another run's output is never empty
                raise FileExistsError(errno.EEXIST, "exists", str(out))
            os.rename(tmp, out)
        else:
            try:
                os.link(tmp, out)  # fails if out exists; tmp is removed by the caller
            except FileExistsError:
                raise
            except OSError:  # a file system without hard links: check, then move (a narrow race)
                if out.exists():
                    raise FileExistsError(errno.EEXIST, "exists", str(out)) from None
                os.replace(tmp, out)
    except OSError as err:
        if err.errno not in (errno.EEXIST, errno.ENOTEMPTY, errno.ENOTDIR, errno.EISDIR):
            raise
        raise OutputExistsError(
            f"{out} was written by another run while this one worked; it was kept and this run's output dropped "
            "(choose another output path, or replace it with overwrite)."
        ) from None


def _replace(tmp: Path, out: Path) -> None:
    """Move ``tmp`` onto ``out``; an existing folder is set aside first and removed only on success."""
    if out.is_dir():
        old = out.with_name(f".{out.name}.{uuid.uuid4().hex[:8]}.old")
        os.rename(out, old)
        try:
            os.rename(tmp, out)
        except OSError:
            os.rename(old, out)
            raise
        shutil.rmtree(old)
    else:
        os.replace(tmp, out)
