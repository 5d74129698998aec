"""mrsr.validation: option checks on plain values, one MrsrError each, and the command line's argparse types."""

from __future__ import annotations

import argparse
import subprocess
import sys

import numpy as np
import pytest

from mrsr.errors import MrsrError
from mrsr.validation import (
    check_degrade_options,
    check_slice_profile,
    check_slice_profile_options,
    check_slice_widths,
    check_thick_slice_options,
    device_type,
    factor_type,
    millimetres_type,
    overlap,
    positive_seconds,
    slice_axis,
    tile_side,
    unit_interval,
    whole_number_type,
)


def test_imports_neither_torch_nor_monai():
    """The command line runs these checks before torch loads: importing them must not load it."""
    code = "import sys, mrsr.validation; print('torch' in sys.modules, 'monai' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.split() == ["False", "False"], done.stderr


@pytest.mark.parametrize(
    "profile, axes, thickness, gap",
    [(None, None, None, None), (None, [0, 1], None, None), ("", [0, 1, 2], None, None), ("box", [2], 4.0, None),
     ("gaussian", None, None, 1.0), ("kspace", [0], None, None)],
)  # fmt: skip
def test_slice_profile_options_that_fit(profile, axes, thickness, gap):
    check_slice_profile_options(profile, axes, thickness, gap)


@pytest.mark.parametrize(
    "profile, axes, thickness, gap, message",
    [
        (None, None, 4.0, None, "--thickness and --gap describe thick slices: give them with --slice-profile."),
        (None, None, None, 0.0, "give them with --slice-profile"),  # a gap of 0 is given too
        ("box", [0, 2], None, None, "--slice-profile degrades one axis, got --axes 0 2; give one."),
        ("kspace", None, 3.0, None, "--slice-profile kspace is one slice spacing wide: drop --thickness and --gap."),
        ("sinc", None, None, None, "--slice-profile is box, gaussian, kspace or a .npy file, got 'sinc'."),
        ("nowhere/p.npy", None, None, None, "No such file"),
    ],
)
def test_slice_profile_options_that_do_not_fit(profile, axes, thickness, gap, message):
    with pytest.raises(MrsrError) as err:
        check_slice_profile_options(profile, axes, thickness, gap)
    assert message in str(err.value)


def test_a_profile_file_sets_its_own_width(tmp_path):
    path = tmp_path / "p.npy"
    np.save(path, np.array([1.0, 2.0, 1.0]))
    check_slice_profile_options(path, [2], None, None)  # a Path as the Python API may give it
    check_slice_profile(str(path))
    with pytest.raises(MrsrError, match=f"The profile file {path} sets the slice width: drop --thickness and --gap"):
        check_slice_profile_options(str(path), None, None, 1.0)


@pytest.mark.parametrize(
    "scale, grid, window, snr, message",
    [
        (2, "same", "none", None, "--grid belongs to k-space truncation, not to --slice-profile; drop it."),
        (2, "reduced", "hamming", 20.0, "--window and --snr belong to k-space truncation, not to --slice-profile; drop "
         "them."),
        (2.5, "reduced", "none", None, "--slice-profile needs an integer --scale (slices of whole HR voxels), got "
         "2.5."),
    ],
)  # fmt: skip
def test_thick_slices_take_no_k_space_option_and_a_whole_factor(scale, grid, window, snr, message):
    with pytest.raises(MrsrError) as err:
        check_thick_slice_options(scale, grid, window, snr)
    assert str(err.value) == message
    check_thick_slice_options(3.0)


def test_degrade_options_check_thick_slice_options_only_with_a_profile():
    check_degrade_options(2.5, [0, 1], "same", "tukey", 30.0)  # k-space truncation: all of them are its options
    with pytest.raises(MrsrError, match="--grid belongs to k-space truncation"):
        check_degrade_options(2, [2], "same", slice_profile="box")
    with pytest.raises(MrsrError, match="give them with --slice-profile"):
        check_degrade_options(2, thickness=1.0)


def test_slice_widths_against_the_spacing():
    check_slice_widths(2, 3.0, 4.0, 2.0)  # 4 + 2 = 2 x 3 mm
    check_slice_widths(2, 3.0, None, 5.9)
    check_slice_widths(2, 3.0, 7.0, None)  # wider than the spacing: overlapping slices
    with pytest.raises(MrsrError) as err:
        check_slice_widths(2, 3.0, 4.0, 3.0)
    assert str(err.value) == ("--thickness 4 + --gap 3 mm must equal the slice spacing, 2 x 3 = 6 mm; give one of "
                              "them.")  # fmt: skip
    with pytest.raises(MrsrError, match="--gap 6 mm leaves no slice: the slice spacing is 2 x 3 = 6 mm"):
        check_slice_widths(2, 3.0, None, 6.0)


def _refused(parse, text: str) -> str:
    with pytest.raises(argparse.ArgumentTypeError) as err:
        parse(text)
    return str(err.value)


def test_argparse_types_return_values():
    assert factor_type("x")("2.5") == 2.5 and whole_number_type(0)("0") == 0 and tile_side("64") == 64
    assert overlap("0") == 0.0 and unit_interval("1") == 1.0 and positive_seconds("0.5") == 0.5
    assert millimetres_type(0.0, inclusive=True)("0") == 0.0 and slice_axis("auto") == "auto" and slice_axis("2") == 2
    assert [device_type(auto=True)(d) for d in ("cpu", "cuda", "cuda:3", "auto")] == ["cpu", "cuda", "cuda:3", "auto"]


def test_argparse_types_say_what_they_expected():
    upsampling = factor_type("SR upsamples")
    assert _refused(upsampling, "0.5") == "the factor must be a finite number >= 1 (got 0.5): SR upsamples"
    assert _refused(upsampling, "inf").startswith("the factor must be a finite number")
    assert _refused(upsampling, "two") == "expected a number, got 'two'"
    assert _refused(whole_number_type(1), "0") == "expected a whole number >= 1, got 0"
    assert _refused(whole_number_type(1), "1.5") == "expected a whole number, got '1.5'"
    assert _refused(tile_side, "a").startswith("expected a tile side in LR pixels >= 1, e.g. --roi 64 64")
    assert _refused(overlap, "1") == ("expected a fraction of the tile from 0 up to (not including) 1, got 1; useful: "
                                      "0 to 0.5 (default 0.25)")  # fmt: skip
    assert _refused(unit_interval, "1.5") == "expected a number from 0 to 1, got 1.5"
    assert _refused(positive_seconds, "0") == "expected a number of seconds > 0, got 0"
    assert _refused(millimetres_type(0.0, inclusive=False), "0") == "expected a number > 0 mm, got 0"
    assert _refused(millimetres_type(0.0, inclusive=True), "-1") == "expected a number >= 0 mm, got -1"
    assert _refused(slice_axis, "3") == "expected auto, 0, 1 or 2, got '3'"
    assert _refused(device_type(auto=False), "auto") == "expected cpu, cuda or cuda:N (N: a GPU index), got 'auto'"
