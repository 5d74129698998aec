"""Outputs named after their inputs: the datalist of a run, and a transform that saves each volume.

The bundles' inference configs and ``mrsr infer`` name the output of ``in/scan.nii.gz`` as
``OUTPUT_DIR/scan_<postfix>.nii.gz`` (:func:`derived_output_path`), skip inputs whose output exists
(:func:`as_datalist`) and write atomically (:class:`SaveVolumed`).
"""

from __future__ import annotations

import os
from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path

import torch
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import MapTransform

from mrsr.errors import MrsrError
from mrsr.paths import CLI_OVERWRITE, check_output_path, is_nifti_path
from mrsr.progress import say

from .io import save_volume

__all__ = ["derived_output_path", "as_datalist", "SaveVolumed"]


def derived_output_path(
    source: str | os.PathLike, output_dir: str | os.PathLike, output_postfix: str = "sr", output_ext: str = ".nii.gz"
) -> Path:
    """Where the output derived from ``source``: its name (less ``.nii.gz``/``.nii``/``.dcm``), then
    ``_<output_postfix><output_ext>``, in ``output_dir`` (the bundles and ``mrsr infer`` name outputs so).

    >>> derived_output_path("in/scan.nii.gz", "out", "sr_x2").as_posix()
    'out/scan_sr_x2.nii.gz'
    """
    name = Path(source).name
    for suffix in (".nii.gz", ".nii", ".dcm"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
            break
    return Path(output_dir) / f"{name}_{output_postfix}{output_ext}"


def as_datalist(
    inputs: str | os.PathLike | Sequence[str | os.PathLike],
    output_dir: str | os.PathLike | None = None,
    output_postfix: str = "sr",
    output_ext: str = ".nii.gz",
    overwrite: bool = False,
) -> list[dict[str, str]]:
    """``[{"image": path}, ...]`` from a file, a DICOM folder, a folder of NIfTI files or a list of these.

    With ``output_dir`` (the inference configs pass their output settings, those of
    :class:`SaveVolumed`), an input whose output exists already is left out before any work, with one
    line ``mrsr: skip INPUT: OUTPUT exists ...`` on stderr, unless ``overwrite``: a batch run again
    goes on where it stopped, as ``mrsr infer FOLDER`` does. When every output exists it says so and
    the list is empty (the config's ``run`` step then does nothing).

    >>> as_datalist("scan.nii.gz")
    [{'image': 'scan.nii.gz'}]

    Raises:
        MrsrError: no input at all; two inputs that would write the same output.
    """
    if inputs is None or inputs == "":
        items = []
    else:
        items = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)
    out: list[dict[str, str]] = []
    for item in items:
        path = Path(item)
        if path.is_dir() and any(is_nifti_path(p) for p in path.iterdir()):
            out.extend({"image": str(p)} for p in sorted(path.iterdir()) if is_nifti_path(p))
        else:
            out.append({"image": str(path)})
    if not out:
        raise MrsrError("No input given: pass --input FILE (NIfTI, DICOM file or series folder).")
    if output_dir is None:
        return out
    targets = [derived_output_path(d["image"], output_dir, output_postfix, output_ext) for d in out]
    clashes = sorted({str(t) for t in targets if targets.count(t) > 1})
    if clashes:
        raise MrsrError(f"Several inputs would write the same output {clashes[0]}; rename them or run them one by one.")
    if overwrite:
        return out
    todo = []
    for item, target in zip(out, targets):
        if target.exists():
            say(f"mrsr: skip {item['image']}: {target} exists (pass --overwrite to replace it)")
        else:
            todo.append(item)
    if not todo:
        say(f"mrsr: nothing to do: every output exists ({len(out)} input{'s' * (len(out) > 1)} skipped)")
    return todo


class SaveVolumed(MapTransform):
    """Save each volume under ``keys`` as NIfTI or a DICOM series, atomically (:func:`mrsr.data.save_volume`).

    The file name is the input's (``ref_key``'s ``filename_or_obj``) with ``_<postfix>`` added, in
    ``output_dir`` (:func:`derived_output_path`); an existing file is kept unless ``overwrite``, and an
    output that would replace its input is refused. Each written path is printed (``mrsr: wrote PATH``,
    on stderr) unless ``print_log`` is false.

    Args:
        keys: keys of the volumes to save.
        output_dir: folder of the outputs (created).
        output_postfix: added to the input's name.
        output_ext: ``.nii.gz``, ``.nii`` or ``""`` (a DICOM series folder).
        overwrite: replace existing outputs.
        ref_key: key whose meta names the input file.
        print_log: print each written path.
    """

    def __init__(
        self,
        keys: KeysCollection,
        output_dir: str | os.PathLike,
        output_postfix: str = "sr",
        output_ext: str = ".nii.gz",
        overwrite: bool = False,
        ref_key: str = "image",
        allow_missing_keys: bool = False,
        print_log: bool = True,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        if output_ext not in (".nii.gz", ".nii", ""):
            raise MrsrError(f"output_ext must be '.nii.gz', '.nii' or '' (a DICOM folder), got {output_ext!r}.")
        self.output_dir, self.postfix, self.ext = Path(output_dir), output_postfix, output_ext
        self.overwrite, self.ref_key, self.print_log = overwrite, ref_key, print_log

    def output_path(self, source: str | os.PathLike) -> Path:
        """Where the output of ``source`` goes."""
        return derived_output_path(source, self.output_dir, self.postfix, self.ext)

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict[Hashable, torch.Tensor]:
        d = dict(data)
        ref = d.get(self.ref_key)
        source = ref.meta.get("filename_or_obj", "volume") if isinstance(ref, MetaTensor) else "volume"
        source = source[0] if isinstance(source, (list, tuple)) else source
        for key in self.key_iterator(d):
            out = self.output_path(source)
            self.output_dir.mkdir(parents=True, exist_ok=True)
            check_output_path(out, self.overwrite, inputs=(source,), overwrite_hint=CLI_OVERWRITE)
            save_volume(d[key], out, overwrite=self.overwrite)
            if self.print_log:
                say(f"mrsr: wrote {out}")
        return d
