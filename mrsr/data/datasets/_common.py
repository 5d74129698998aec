"""Helpers the dataset modules share: the data set's folder, the validation hold-out, file stems."""

from __future__ import annotations

import os
from pathlib import Path

from mrsr.errors import MrsrError


def _holdout(pool: list, num_val: int, what: str) -> tuple[list, list]:
    """Split the last ``num_val`` items of ``pool`` off as validation."""
    if not 0 <= num_val < len(pool):
        raise MrsrError(f"--num-val must be between 0 and {len(pool) - 1} (training has {len(pool)} {what}).")
    cut = len(pool) - num_val
    return pool[:cut], pool[cut:]


def _existing_dir(path: str | os.PathLike, what: str) -> Path:
    path = Path(path).expanduser()
    if not path.is_dir():
        raise MrsrError(f"The {what} {path} is not a folder.")
    return path


def _stem(path: Path) -> str:
    name = path.name
    return name[: -len(".nii.gz")] if name.endswith(".nii.gz") else path.stem
