"""ACDC cardiac cine: the manifest of each patient's end-diastolic and end-systolic frames.

ACDC (https://www.creatis.insa-lyon.fr/Challenge/acdc/) is used under the terms its challenge site
sets; mrsr ships none of it and downloads nothing. :func:`acdc_datalist` reads the user's copy
(``training/`` and ``testing/``) and splits it by patient number (001-100 training, of which the
last ``num_val`` are validation, 101-150 test), for ``data_manifests/acdc.py``.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

from mrsr.data.datasets._common import _existing_dir, _holdout, _stem
from mrsr.data.manifest import Datalist, _shown
from mrsr.errors import MrsrError

__all__ = ["ACDC_TEST_PATIENTS", "ACDC_TRAIN_PATIENTS", "acdc_datalist"]

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
