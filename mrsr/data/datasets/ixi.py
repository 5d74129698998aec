"""IXI: the Hammersmith Hospital (HH) protocol's manifest, from the user's copy of IXI.

IXI (https://brain-development.org/ixi-dataset/) is distributed under CC BY-SA 3.0; mrsr ships none
of it and downloads nothing. :func:`ixi_datalist` finds the HH T1, T2 or PD volumes in the user's
copy and splits its 185 subjects as MR SR papers do (150 training, of which the last ``num_val``
are validation, 35 test); ``data_manifests/ixi.py`` writes the manifest.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

from mrsr.data.datasets._common import _existing_dir, _holdout, _stem
from mrsr.data.manifest import Datalist
from mrsr.errors import MrsrError

__all__ = ["IXI_CONTRASTS", "IXI_HH_SUBJECTS", "IXI_TRAIN_SUBJECTS", "ixi_datalist"]

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
