"""Checks of options and values that need neither torch nor MONAI, for the command line and the library.

The command line (:mod:`mrsr.cli`) runs them before torch loads, so a wrong option is reported in a
fraction of a second; the library (:mod:`mrsr.pipeline`) runs the same functions, so a Python caller
gets the same one-line :class:`~mrsr.errors.MrsrError`. They take plain values, not an argparse
namespace.

The second half holds the command line's argparse types (``type=`` of an option): each turns the
text of one option into its value or raises :class:`argparse.ArgumentTypeError` with the line the
parser prints (``mrsr infer: error: argument --roi: ...``).

>>> check_degrade_options(2, [2], "reduced", "none", None, "box", thickness=4.0)
>>> check_degrade_options(2, [0, 2], "reduced", "none", None, "box")
Traceback (most recent call last):
...
mrsr.errors.MrsrError: --slice-profile degrades one axis, got --axes 0 2; give one.
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Callable, Sequence

from mrsr.errors import MrsrError
from mrsr.paths import check_input_path

__all__ = [
    "SLICE_PROFILES",
    "check_degrade_options",
    "check_slice_profile_options",
    "check_slice_profile",
    "check_thick_slice_options",
    "check_slice_widths",
    "factor_type",
    "whole_number_type",
    "tile_side",
    "overlap",
    "device_type",
    "unit_interval",
    "positive_seconds",
    "millimetres_type",
    "slice_axis",
]

SLICE_PROFILES = ("box", "gaussian", "kspace")  # by name; else a .npy file of a 1D profile on the HR grid


def _given(profile: str | os.PathLike | None) -> bool:
    return profile is not None and str(profile) != ""  # "" as from --slice-profile "": no profile


def check_slice_profile_options(
    slice_profile: str | os.PathLike | None,
    axes: Sequence[int] | None,
    thickness: float | None,
    gap: float | None,
) -> None:
    """The thick-slice options of ``mrsr degrade`` (:func:`mrsr.pipeline.degrade_file`) fit together.

    Args:
        slice_profile: ``"box"``, ``"gaussian"``, ``"kspace"``, a ``.npy`` file, or ``None`` (k-space truncation).
        axes: the axes to degrade (``None``: the default).
        thickness, gap: slice thickness and gap in mm, or ``None``.

    Raises:
        MrsrError: a thickness or gap without a profile, or with ``kspace`` or a profile file (they set the
            width themselves); several axes; an unknown profile name; a profile file that is not there.
    """
    widths = thickness is not None or gap is not None
    if not _given(slice_profile):
        if widths:
            raise MrsrError("--thickness and --gap describe thick slices: give them with --slice-profile.")
        return
    if axes is not None and len(axes) != 1:
        raise MrsrError(f"--slice-profile degrades one axis, got --axes {' '.join(map(str, axes))}; give one.")
    profile = str(slice_profile)
    if profile == "kspace" and widths:
        raise MrsrError("--slice-profile kspace is one slice spacing wide: drop --thickness and --gap.")
    check_slice_profile(profile)
    if widths and profile not in SLICE_PROFILES:
        raise MrsrError(f"The profile file {profile} sets the slice width: drop --thickness and --gap.")


def check_slice_profile(profile: str | os.PathLike) -> None:
    """``profile`` names a slice profile (``box``, ``gaussian``, ``kspace``) or is a ``.npy`` file that exists
    (``mrsr degrade`` and ``mrsr selfsr``; what the file holds is checked where it loads).

    Raises:
        MrsrError: another name, or a ``.npy`` file that is not there.
    """
    if str(profile) in SLICE_PROFILES:
        return
    if not str(profile).endswith(".npy"):
        raise MrsrError(f"--slice-profile is box, gaussian, kspace or a .npy file, got {str(profile)!r}.")
    check_input_path(profile)


def check_thick_slice_options(
    scale: float, grid: str = "reduced", window: str = "none", snr: float | None = None
) -> None:
    """A slice profile's factor is whole and no k-space truncation option is given with it.

    Raises:
        MrsrError: ``grid``, ``window`` or ``snr`` not at their defaults, or a fractional ``scale``.
    """
    unused = [name for name, given in (("--grid", grid != "reduced"), ("--window", window != "none"),
                                       ("--snr", snr is not None)) if given]  # fmt: skip
    if unused:
        verb, them = ("belongs", "it") if len(unused) == 1 else ("belong", "them")
        raise MrsrError(f"{' and '.join(unused)} {verb} to k-space truncation, not to --slice-profile; drop {them}.")
    if float(scale) != int(scale):
        raise MrsrError(f"--slice-profile needs an integer --scale (slices of whole HR voxels), got {scale:g}.")


def check_degrade_options(
    scale: float,
    axes: Sequence[int] | None = None,
    grid: str = "reduced",
    window: str = "none",
    snr: float | None = None,
    slice_profile: str | os.PathLike | None = None,
    thickness: float | None = None,
    gap: float | None = None,
) -> None:
    """Every check of ``mrsr degrade``'s options that needs no volume (the arguments of
    :func:`mrsr.pipeline.degrade_file`): :func:`check_slice_profile_options` and, with a profile,
    :func:`check_thick_slice_options`. The widths against the volume's spacing are :func:`check_slice_widths`'s.

    Raises:
        MrsrError: see those two functions.
    """
    check_slice_profile_options(slice_profile, axes, thickness, gap)
    if _given(slice_profile):
        check_thick_slice_options(scale, grid, window, snr)


def check_slice_widths(scale: float, step: float, thickness: float | None, gap: float | None) -> None:
    """Thick slices of ``thickness`` and ``gap`` mm fit the LR slice spacing, ``scale`` HR steps of ``step`` mm.

    >>> check_slice_widths(2, 3.0, None, 100)
    Traceback (most recent call last):
    ...
    mrsr.errors.MrsrError: --gap 100 mm leaves no slice: the slice spacing is 2 x 3 = 6 mm; give a gap below it.

    Raises:
        MrsrError: a thickness and gap that do not add up to the spacing, or a gap as wide as it.
    """
    spacing = scale * step
    if thickness is not None and gap is not None and abs(thickness + gap - spacing) > 1e-3 * step:
        raise MrsrError(f"--thickness {thickness:g} + --gap {gap:g} mm must equal the slice spacing, {scale:g} x "
                        f"{step:g} = {spacing:g} mm; give one of them.")  # fmt: skip
    if thickness is None and gap is not None and gap >= spacing:  # said in mm, as given, not in HR voxels
        raise MrsrError(f"--gap {gap:g} mm leaves no slice: the slice spacing is {scale:g} x {step:g} = "
                        f"{spacing:g} mm; give a gap below it.")  # fmt: skip


# The command line's argparse types. argparse prints an ArgumentTypeError's message as it is; any other
# error becomes "invalid <function name> value", so each type says what it expected itself.


def _number(text: str, expected: str, cast: Callable[[str], float] = float) -> float:
    try:
        return cast(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None


def factor_type(purpose: str) -> Callable[[str], float]:
    """An argparse type: a finite number >= 1, the factor of ``purpose`` (``--scale``)."""

    def parse(text: str) -> float:
        value = _number(text, "a number")
        if not 1 <= value < float("inf"):
            raise argparse.ArgumentTypeError(f"the factor must be a finite number >= 1 (got {text}): {purpose}")
        return value

    return parse


def whole_number_type(lowest: int) -> Callable[[str], int]:
    """An argparse type: a whole number >= ``lowest`` (one message for every value below it)."""

    def parse(text: str) -> int:
        value = int(_number(text, "a whole number", int))
        if value < lowest:
            raise argparse.ArgumentTypeError(f"expected a whole number >= {lowest}, got {text}")
        return value

    return parse


def tile_side(text: str) -> int:
    """``--roi``: a tile side in LR pixels; any side from 1 runs (one longer than the slice is one tile)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(
            f"expected a tile side in LR pixels >= 1, e.g. --roi 64 64 (leave --roi out for whole slices), got {text}"
        )
    return value


def overlap(text: str) -> float:
    """``--overlap``: a fraction of the tile below 1 (near 1 the tiles advance a pixel at a time)."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"expected a fraction of the tile from 0 up to (not including) 1, got "
                                         f"{text}; useful: 0 to 0.5 (default 0.25)")  # fmt: skip
    return value


def device_type(auto: bool) -> Callable[[str], str]:
    """An argparse type: ``cpu``, ``cuda``, ``cuda:N`` and, with ``auto``, ``auto`` (whether the GPU is
    there is :func:`mrsr.cli.check_devices`'s question: it needs torch)."""
    names = "cpu, cuda, cuda:N (N: a GPU index) or auto" if auto else "cpu, cuda or cuda:N (N: a GPU index)"

    def parse(text: str) -> str:
        if text in ("cpu", "cuda") or (auto and text == "auto") or re.fullmatch(r"cuda:\d+", text):
            return text
        raise argparse.ArgumentTypeError(f"expected {names}, got {text!r}")

    return parse


def unit_interval(text: str) -> float:
    """``--detail``: a number from 0 to 1."""
    value = _number(text, "a number from 0 to 1")
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"expected a number from 0 to 1, got {text}")
    return value


def positive_seconds(text: str) -> float:
    """A time budget: a finite number of seconds > 0."""
    value = _number(text, "a number of seconds")
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number of seconds > 0, got {text}")
    return value


def millimetres_type(lowest: float, inclusive: bool) -> Callable[[str], float]:
    """An argparse type: a finite length in mm above (or at, with ``inclusive``) ``lowest``."""

    def parse(text: str) -> float:
        value = _number(text, "a length in mm")
        bound = ">=" if inclusive else ">"
        if not (value >= lowest if inclusive else value > lowest) or value == float("inf"):
            raise argparse.ArgumentTypeError(f"expected a number {bound} {lowest:g} mm, got {text}")
        return value

    return parse


def slice_axis(text: str) -> int | str:
    """``--slice-axis``: ``auto``, 0, 1 or 2."""
    if text not in ("auto", "0", "1", "2"):
        raise argparse.ArgumentTypeError(f"expected auto, 0, 1 or 2, got {text!r}")
    return text if text == "auto" else int(text)
