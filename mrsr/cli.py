"""The ``mrsr`` command: degrade, infer, evaluate, demo, networks, train, bundles, benchmark.

Bad input (an :class:`~mrsr.errors.MrsrError`) and the user's environment (an ``OSError``: a missing
file, a permission, a full disk) end with a one-line ``mrsr: error: ...`` on stderr and exit code 2;
any other error is mrsr's own fault, one line that says so and exit code 1 (``--traceback`` shows the
Python traceback instead). Outputs are written atomically and never replace an input or, without
``--overwrite``, an existing file.

This module parses options and checks paths and option values before torch loads (``mrsr --help``
and a wrong path answer at once; the checks are :mod:`mrsr.validation`'s); each ``cmd_*`` then
builds its settings once (:func:`infer_options`, :func:`selfsr_settings`) and calls the library:
:mod:`mrsr.pipeline` (degrade, infer, selfsr, evaluate), :mod:`mrsr.batch` (their batches over folders
and lists), :mod:`mrsr.demo`, :mod:`mrsr.bundle_table`, :mod:`mrsr.benchmark`, :mod:`mrsr.engines` and
:mod:`mrsr.networks.summary`. Status, warning and error lines go through the ``mrsr`` logger
(:func:`mrsr.progress.say`), which :func:`main` points at stderr at the level ``-q``/``-v`` ask for.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from mrsr.errors import MrsrError
from mrsr.paths import write_text_atomic
from mrsr.progress import LOGGER_NAME, StderrHandler, say
from mrsr.settings import AdaptSettings, DegradeSettings, InferSettings, SelfSRSettings
from mrsr.validation import (
    check_degrade_options,
    check_slice_profile,
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

if TYPE_CHECKING:  # the pipeline loads torch: imported where a command runs, not for --help
    from mrsr.batch import Part
    from mrsr.pipeline import InferOptions

EXIT_USAGE = 2  # bad input: the user's to fix
EXIT_INTERNAL = 1  # mrsr's own fault: a bug to report
DEFAULT_ADAPT_STEPS = AdaptSettings().steps  # the library's default, for --adapt and the benchmark's rows

_upsampling = factor_type("SR upsamples")  # mrsr infer, demo
_degradation = factor_type("degradation coarsens the grid by this factor")
_non_negative_int, _positive_int = whole_number_type(0), whole_number_type(1)
_device = device_type(auto=True)
_positive_mm, _non_negative_mm = millimetres_type(0.0, inclusive=False), millimetres_type(0.0, inclusive=True)

DEVICE_HELP = "cpu, cuda, cuda:N or auto (CUDA when available)"
SLICE_AXIS_HELP = "axis across slices: auto (the thickest axis, else the last), 0, 1 or 2"
VOLUME_IN = "NIfTI file, DICOM file or DICOM series folder"
VOLUME_OUT = "output .nii/.nii.gz file or DICOM folder"
PROFILE = "box|gaussian|kspace|FILE.npy"
BATCH_IN = (
    "a folder (searched recursively: NIfTI files, DICOM series) or a .txt/.csv list of inputs; outputs mirror "
    "their paths under --output, with a status file per part (docs/SCALE.md)"
)


class _HelpFormatter(argparse.HelpFormatter):
    """Shows an option's default once: not for required options, flags, ``None``, or help that says it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        shown = action.default not in (None, False, argparse.SUPPRESS) and not action.required
        if shown and "default" not in text and action.option_strings:
            default = " ".join(map(str, action.default)) if isinstance(action.default, list) else action.default
            text += f" (default: {default})"
        return text


class _Parser(argparse.ArgumentParser):
    """An argument error is one line and exit 2, as every other bad input; --help shows defaults once."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        """``PROG: error: MESSAGE (see PROG --help)`` on stderr, exit 2.

        argparse prints the whole usage block first (13 lines for ``mrsr infer``), which buries the
        one line that says what is wrong; ``--help`` still shows it.
        """
        self.exit(EXIT_USAGE, f"{self.prog}: error: {' '.join(message.split())} (see {self.prog} --help)\n")


Subparsers = argparse._SubParsersAction  # what add_subparsers returns


def build_parser() -> argparse.ArgumentParser:
    """The ``mrsr`` parser: the global options, then one subparser per command (:data:`COMMAND_PARSERS`)."""
    parser = _Parser(prog="mrsr", description="Medical image super-resolution on MONAI.")
    parser.add_argument("--version", action="version", version=f"mrsr {_version()}")
    _add_loudness(parser, default=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in COMMAND_PARSERS:
        add(sub)
    return parser


def _add_loudness(p: argparse.ArgumentParser, default: object) -> None:
    """``-q``/``-v``: how much goes to stderr. A command's own (``default`` SUPPRESS) take them after the
    command too, without resetting what was given before it."""
    loudness = p.add_mutually_exclusive_group()
    loudness.add_argument("-q", "--quiet", action="store_true", default=default,
                          help="only warnings and errors on stderr (no progress)")  # fmt: skip
    loudness.add_argument("-v", "--verbose", action="store_true", default=default,
                          help="also debugging lines on stderr")  # fmt: skip


def _add_common(p: argparse.ArgumentParser, overwrite: bool = True) -> None:
    """``--overwrite`` (commands that write), ``--traceback`` and ``-q``/``-v`` (every command)."""
    if overwrite:
        p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.add_argument("--traceback", action="store_true", help="show the Python traceback on errors")
    _add_loudness(p, default=argparse.SUPPRESS)


def _add_volume_io(p: argparse.ArgumentParser, input_help: str = VOLUME_IN) -> None:
    p.add_argument("input", help=input_help)
    p.add_argument("-o", "--output", required=True, help=VOLUME_OUT)


def _add_seed(p: argparse.ArgumentParser, purpose: str) -> None:
    p.add_argument("--seed", type=int, default=0, help=purpose)


def _add_device_options(p: argparse.ArgumentParser, amp: str | None = None, seed: str | None = None) -> None:
    """``--device`` and, given their help (what they do in this command), ``--amp`` and ``--seed``."""
    p.add_argument("--device", type=_device, default="auto", help=DEVICE_HELP)
    if amp:
        p.add_argument("--amp", action="store_true", help=amp)
    if seed:
        _add_seed(p, seed)


def _add_degrade_parser(sub: Subparsers) -> None:
    p = sub.add_parser(
        "degrade",
        help="simulate a low-resolution scan by k-space truncation or thick slices",
        description="Keep the centre of k-space along the chosen axes (docs/CONVENTIONS.md): the LR "
        "affine keeps the origin and multiplies the spacing by the factor. With --slice-profile, simulate "
        "thick slices along one axis instead: each LR slice is the profile-weighted mean of the HR slices "
        "it covers, and the LR affine moves the origin to the centre of the first slab.",
    )
    _add_volume_io(p)
    p.add_argument("--scale", type=_degradation, default=2.0, help="degradation factor (need not divide the matrix)")
    p.add_argument("--axes", type=int, nargs="+", choices=(0, 1, 2),
                   help="spatial axes to degrade, e.g. 0 1, 2 (thick slices) or 0 1 2 (3D) (default: the two in-plane "
                   "axes, those other than the thickest axis, else 0 1)")  # fmt: skip
    p.add_argument("--grid", choices=("reduced", "same"), default="reduced",
                   help="true LR matrix, or zero-filled back to the input matrix")  # fmt: skip
    p.add_argument("--window", choices=("none", "hamming", "tukey"), default="none",
                   help="k-space taper (less ringing, more blur)")  # fmt: skip
    p.add_argument("--snr", type=float, default=None, help="add Rician noise at this SNR (mean foreground / sigma)")
    _add_seed(p, "seed of the noise")
    _add_thick_slice_options(p)
    _add_common(p)


def _add_thick_slice_options(p: argparse.ArgumentParser) -> None:
    """``mrsr degrade``'s thick slices (:func:`mrsr.validation.check_slice_profile_options`)."""
    p.add_argument("--slice-profile", metavar=PROFILE,
                   help="thick slices along the one axis of --axes (default: the slice axis) instead of k-space "
                   "truncation: a box or Gaussian (FWHM = thickness) profile, or a 1D profile sampled on the HR grid; "
                   "--scale must be an integer")  # fmt: skip
    p.add_argument("--thickness", type=_positive_mm, metavar="MM",
                   help="slice thickness in mm, with --slice-profile box or gaussian (default: the slice spacing, "
                   "scale x the HR spacing, less the gap)")  # fmt: skip
    p.add_argument("--gap", type=_non_negative_mm, metavar="MM",
                   help="gap between slices in mm, with --slice-profile box or gaussian; thickness + gap = the slice "
                   "spacing")  # fmt: skip


def _add_selfsr_parser(sub: Subparsers) -> None:
    defaults = SelfSRSettings()
    p = sub.add_parser(
        "selfsr",
        help="thick slices to isotropic: self-supervised through-plane SR trained on the scan itself",
        description="Find the thick axis and the factor from the header, train a small 2D network on the scan's "
        "own in-plane slices degraded with the slice profile, apply it across the slices in both through-plane "
        "orientations and write the volume on the HR grid of the thick axis (docs/CONVENTIONS.md). Internal "
        "validation on held-out in-plane slices decides: when the network never beats cubic interpolation "
        "there, cubic is written.",
    )
    p.add_argument("input", help=VOLUME_IN + " with one thick axis; or a batch: " + BATCH_IN)
    p.add_argument("-o", "--output", required=True, help=VOLUME_OUT + "; a folder for a batch")
    p.add_argument("--network", default=defaults.network, help="registry name of the 2D network (mrsr networks)")
    p.add_argument("--preset", default=defaults.preset, help="network preset")
    p.add_argument("--slice-profile", default=defaults.profile, metavar=PROFILE, help="the scan's slice profile")
    p.add_argument("--thickness", type=_positive_mm, metavar="MM", help="slice thickness (default: the header's)")
    p.add_argument("--steps", type=_positive_int,
                   help="training steps (at most; default: 500, or as many as --time allows)")  # fmt: skip
    p.add_argument("--time", type=positive_seconds, metavar="SECONDS", help="stop training after this many seconds")
    p.add_argument("--approach", choices=("refine", "upsample"), default=defaults.approach,
                   help="cubic interpolation + refinement network, or a one-axis upsampling network")  # fmt: skip
    p.add_argument("--combine", choices=("average", "fba"), default=defaults.combine,
                   help="how the two through-plane orientations are combined: their average, or Fourier burst "
                   "accumulation")  # fmt: skip
    p.add_argument("--slab-consistency", action="store_true",
                   help="make each output slab's mean equal its input slice (box profile one spacing wide "
                   "only)")  # fmt: skip
    _add_device_options(p, amp="mixed precision (bf16 training)", seed="seed of the weights and the patches")
    _add_batch_options(p)
    _add_common(p)


def _add_infer_parser(sub: Subparsers) -> None:
    p = sub.add_parser(
        "infer",
        help="super-resolve a volume in-plane, slice by slice",
        description="Normalise, super-resolve every slice (2D or 2.5D) through MONAI's sliding-window "
        "inference at bounded memory, de-normalise and save with the upsampled affine.",
    )
    p.add_argument("input", nargs="?", help=VOLUME_IN + " (the LR volume); or a batch: " + BATCH_IN)
    p.add_argument("-o", "--output", required=True, help=VOLUME_OUT + "; a folder for a batch")
    p.add_argument("--manifest", help="batch: super-resolve every volume of this manifest section into --output")
    p.add_argument("--data-root", help="batch: folder the manifest's relative paths start from")
    p.add_argument("--section", default="test", help="batch: the manifest section to run")
    _add_predictor_options(p)
    _add_inferer_options(p)
    _add_adapt_options(p)
    _add_batch_options(p)
    _add_common(p)


def _add_batch_options(p: argparse.ArgumentParser) -> None:
    """A batch's share in this process (:func:`mrsr.batch.resolve_part`): nnU-Net's split, Slurm's array."""
    p.add_argument("--num-parts", type=_positive_int, metavar="N",
                   help="batch: split the sorted inputs into N parts (every N-th input) and run one of them (default: "
                   "the Slurm array's task count, else torchrun's WORLD_SIZE, else 1)")  # fmt: skip
    p.add_argument("--part-id", type=_non_negative_int, metavar="I",
                   help="batch: the part to run, 0 to N-1 (default: the Slurm array's task, SLURM_ARRAY_TASK_ID, else "
                   "torchrun's RANK)")  # fmt: skip


def _add_predictor_options(p: argparse.ArgumentParser) -> None:
    """``mrsr infer``: what runs (:class:`mrsr.pipeline.InferOptions`)."""
    p.add_argument("--bundle",
                   help="a trained mrsr bundle by name (durn, wasa, iconet, msrn, medgan: see `mrsr bundles`) or "
                   "folder")  # fmt: skip
    p.add_argument("--network",
                   help="zerofill or bicubic (interpolation baselines; default bicubic when no --bundle), or a "
                   "network: durn, wasa, iconet, msrn, casnet (needs --weights)")  # fmt: skip
    p.add_argument("--weights", help="trained weights of the network (an mrsr weights file or a state_dict)")
    p.add_argument("--preset", help="network preset for a bare state_dict (default or small)")
    p.add_argument("--in-channels", type=int, help="network input channels for a bare state_dict (1, or 2k+1 for 2.5D)")
    p.add_argument("--channels-last", action=argparse.BooleanOptionalAction,
                   help="run the network in channels_last memory format (default: as the benchmark found faster for "
                   "it)")  # fmt: skip


def _add_inferer_options(p: argparse.ArgumentParser) -> None:
    """``mrsr infer``: how it runs (:class:`mrsr.settings.InferSettings`)."""
    defaults = InferSettings()
    p.add_argument("--scale", type=_upsampling, default=defaults.scale, help="in-plane upsampling factor")
    p.add_argument("--slice-axis", type=slice_axis, default=defaults.slice_axis,
                   help=SLICE_AXIS_HELP + "; the other two are upsampled")  # fmt: skip
    p.add_argument("--size", type=_positive_int, nargs=2, metavar=("H", "W"),
                   help="in-plane output size (default: scale x input)")  # fmt: skip
    p.add_argument("--roi", type=tile_side, nargs=2, metavar=("H", "W"),
                   help="tile size for sliding-window inference (default: whole slices)")  # fmt: skip
    p.add_argument("--overlap", type=overlap, default=defaults.overlap,
                   help="tile overlap, a fraction of the tile from 0 to below 1 (half is context); useful: 0 to "
                   "0.5")  # fmt: skip
    p.add_argument("--sw-batch-size", type=_positive_int, default=defaults.sw_batch_size, help="tiles per forward pass")
    p.add_argument("--slice-batch", type=_positive_int,
                   help="slices per forward pass (default: 8 on a GPU, the network's pixel budget on a "
                   "CPU)")  # fmt: skip
    _add_device_options(p, amp="mixed precision (fp16 on CUDA, bf16 on CPU)")
    p.add_argument("--no-data-consistency", dest="data_consistency", action="store_false",
                   help="keep the network's own k-space band instead of the input's (data consistency is on by "
                   "default for networks and bundles; the baselines run as they are)")  # fmt: skip
    p.add_argument("--detail", type=unit_interval, metavar="D",
                   help="keep this share (0-1) of the detail a network adds beyond the input's k-space band (default: "
                   "the bundle's own, which its model card explains; 1 for --network): wrong detail then costs D² of "
                   "its error, right detail keeps D(2-D) of its gain")  # fmt: skip


def _add_adapt_options(p: argparse.ArgumentParser) -> None:
    """``mrsr infer``: test-time adaptation (:class:`mrsr.settings.AdaptSettings`)."""
    p.add_argument("--adapt", type=_non_negative_int, nargs="?", const=DEFAULT_ADAPT_STEPS, metavar="STEPS",
                   help=f"first fine-tune a copy of the network on the input's own pairs one scale down "
                   f"({DEFAULT_ADAPT_STEPS} steps without a number); use it only where held-out slices say it beats "
                   "the network and zerofill, else the better of those two; 0: only that check")  # fmt: skip
    p.add_argument("--adapt-time", type=positive_seconds, metavar="SECONDS", help="time budget of --adapt per volume")
    _add_seed(p, "seed of --adapt")


def _add_synth_parser(sub: Subparsers) -> None:
    p = sub.add_parser(
        "synth",
        help="write synthetic MR training images (and a PNG panel) to look at",
        description="Synthetic HR slabs of random contrast from tissue maps (the MNI152 maps of nilearn and k-means "
        "maps of the MNI152 T1), as `mrsr train --synthetic` draws them: synth_0000.nii.gz, ... and panel.png.",
    )
    p.add_argument("-o", "--output", required=True, help="output folder")
    p.add_argument("-n", "--num", type=_positive_int, default=8, help="number of images")
    p.add_argument("--size", type=_positive_int, nargs=3, default=(160, 160, 1), metavar=("H", "W", "S"),
                   help="slab size: H x W pixels, S slices")  # fmt: skip
    _add_seed(p, "image i depends on (seed, i) only")
    _add_common(p)


def _add_evaluate_parser(sub: Subparsers) -> None:
    p = sub.add_parser(
        "evaluate",
        help="PSNR and SSIM of an SR volume against the HR volume",
        description="PSNR over the HR intensity range and SSIM averaged over slices, inside a foreground mask "
        "(auto: HR above its minimum + 10% of its range), of an SR volume against the HR volume on the same grid.",
    )
    p.add_argument("--sr", required=True, help="super-resolved volume")
    p.add_argument("--hr", required=True, help="reference volume on the same grid")
    p.add_argument("--json", help="also write the results to this JSON file")
    p.add_argument("--data-range", type=float, help="intensity range for PSNR/SSIM (default: HR max - min)")
    p.add_argument("--border", type=int, default=0, help="voxels cropped at each in-plane edge")
    p.add_argument("--slice-axis", type=slice_axis, default="auto", help=SLICE_AXIS_HELP + " (of the per-slice SSIM)")
    p.add_argument("--mask", default="auto", help="foreground mask: auto, none, or a mask volume file")
    _add_common(p)


def _add_demo_parser(sub: Subparsers) -> None:
    p = sub.add_parser(
        "demo",
        help="degrade the bundled real T1 scan, super-resolve it, score it, draw a panel",
        description="Writes HR, LR and SR volumes (NIfTI), metrics.json and panel.png (the middle slice, oriented "
        "from the affine: LR | the other methods | the best | HR | its error map).",
    )
    p.add_argument("-o", "--output", default="mrsr_demo", help="output folder")
    p.add_argument("--scale", type=_upsampling, default=2.0, help="in-plane factor")
    p.add_argument("--bundle", default="best",
                   help="bundle to run beside the baselines: a name, 'best' (highest stored test PSNR at this scale) "
                   "or 'none'")  # fmt: skip
    _add_device_options(p)
    _add_common(p)


def _add_train_parser(sub: Subparsers) -> None:
    p = sub.add_parser(
        "train",
        help="train a network on a manifest (MONAI engines; DDP under torchrun)",
        description="Train on random aligned LR/HR patches made by k-space truncation of the manifest's "
        "volumes; validate on whole volumes through the inference path; checkpoint every epoch. "
        "Several GPUs or CPU processes: torchrun --nproc_per_node=N -m mrsr train ...",
    )
    _add_train_options(p)
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last finished epoch")
    _add_common(p)


def _add_bundles_parser(sub: Subparsers) -> None:
    p = sub.add_parser(
        "bundles",
        help="list the MONAI bundles with their measured scores",
        description="Bundles are searched in $MRSR_BUNDLES, then in the source tree's bundles/.",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    _add_common(p, overwrite=False)


def _add_benchmark_parser(sub: Subparsers) -> None:
    p = sub.add_parser(
        "benchmark",
        help="every bundle and both baselines under one protocol: quality, speed, cost",
        description="Scores every bundle and baseline on a manifest's held-out volumes (x2 and x4), measures "
        "throughput, the fraction of the machine's convolution peak and peak memory, and writes a Markdown "
        "table, a CSV and PNG figures.",
    )
    p.add_argument("--manifest", help="datalist JSON (default: data_manifests/real_data.json)")
    p.add_argument("--section", default="test", help="manifest section of held-out volumes")
    p.add_argument("--data-root", help="folder the manifest's relative paths start from")
    p.add_argument("--scales", type=int, nargs="+", default=[2, 4], help="SR factors")
    p.add_argument("--bundles", nargs="+", help="bundles to include (default: every bundle with weights)")
    p.add_argument("--devices", type=device_type(auto=False), nargs="+",
                   help="devices to time: cpu, cuda, cuda:N (default: cpu, and cuda when available)")  # fmt: skip
    p.add_argument("--no-amp", action="store_true", help="time float32 only")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory runs")
    p.add_argument("--repeats", type=int, default=5, help="timed runs (median reported)")
    p.add_argument("--adapt-steps", type=_non_negative_int, default=DEFAULT_ADAPT_STEPS,
                   help="test-time adaptation steps of the 'NAME +dc +adapt' rows (0: no such rows)")  # fmt: skip
    p.add_argument("--adapt-scales", type=int, nargs="+", default=[2], help="scales with '+dc +adapt' rows")
    p.add_argument("-o", "--output", default="benchmark", help="output folder")
    p.add_argument("--docs", help="also write the Markdown here (e.g. docs/BENCHMARKS.md)")
    _add_common(p)


def _add_networks_parser(sub: Subparsers) -> None:
    p = sub.add_parser(
        "networks",
        help="table of the SR networks: parameters, GFLOPs, CPU throughput",
        description="Builds each network in each preset and prints parameters and GFLOPs per LR pixel, then times "
        "CPU throughput (median of --repeats runs), which takes minutes; --no-timing skips it. A line per "
        "network reports progress on stderr.",
    )
    p.add_argument("--networks", nargs="+", help="which networks (default: all)")
    p.add_argument("--presets", nargs="+", default=["default", "small"], help="which presets")
    p.add_argument("--scale", type=int, default=2, help="upsampling factor")
    p.add_argument("--repeats", type=int, default=5, help="timed runs (median reported)")
    p.add_argument("--no-timing", action="store_true", help="parameters and GFLOPs only (fast)")
    _add_common(p, overwrite=False)


# the commands in the order --help lists them
COMMAND_PARSERS = (
    _add_degrade_parser,
    _add_selfsr_parser,
    _add_infer_parser,
    _add_synth_parser,
    _add_evaluate_parser,
    _add_demo_parser,
    _add_train_parser,
    _add_bundles_parser,
    _add_benchmark_parser,
    _add_networks_parser,
)


# mrsr train's options: (flag, TrainConfig field, argparse keywords); defaults come from TrainConfig
TRAIN_OPTIONS = (
    ("--network", "network", {"help": "durn, wasa, iconet, msrn or casnet (MedGAN)"}),
    ("--manifest", "manifest", {"help": "MONAI datalist JSON with training and validation lists (data_manifests/)"}),
    ("--data-root", "data_root", {"help": "folder the manifest's relative paths start from"}),
    ("--out", "out", {"help": "run folder (default: runs/NETWORK_xSCALE)"}),
    ("--scale", "scale", {"type": int, "help": "SR factor"}),
    ("--preset", "preset", {"help": "network preset: small or default"}),
    (
        "--network-kwargs",
        "network_kwargs",
        {"type": json.loads, "help": "network constructor options as JSON, e.g. '{\"features\": 32}'"},
    ),
    ("--neighbours", "neighbours", {"type": int, "help": "2.5D: k neighbour slices each side (2k+1 channels); 0: 2D"}),
    ("--patch-size", "patch_size", {"type": int, "help": "LR patch side (HR: scale x this)"}),
    ("--batch-size", "batch_size", {"type": int, "help": "patches per step on each rank"}),
    ("--samples-per-epoch", "samples_per_epoch", {"type": int, "help": "patches per epoch over all ranks"}),
    ("--epochs", "epochs", {"type": int, "help": "epochs (ignored with --iterations)"}),
    ("--iterations", "iterations", {"type": int, "help": "total optimiser steps (rounded up to whole epochs)"}),
    ("--lr", "lr", {"type": float, "help": "Adam learning rate"}),
    ("--lr-schedule", "lr_schedule", {"choices": ("cosine", "constant"), "help": "learning-rate schedule"}),
    ("--warmup", "warmup", {"type": int, "help": "optimiser steps of linear learning-rate warm-up"}),
    ("--grad-clip", "grad_clip", {"type": float, "help": "clip the gradient norm to this"}),
    ("--windows", "windows", {"nargs": "+", "help": "k-space windows drawn per sample: none hamming tukey"}),
    ("--snr-range", "snr_range", {"type": float, "nargs": 2, "metavar": ("LOW", "HIGH"), "help": "Rician SNR range"}),
    ("--factor-jitter", "factor_jitter", {"type": float, "help": "kept k-space band N/f, f in [s, s*jitter]"}),
    (
        "--synthetic",
        "synthetic",
        {"type": float, "metavar": "FRACTION", "help": "fraction of samples from the synthetic-MR generator, 0-1"},
    ),
    ("--val-every", "val_every", {"type": int, "help": "validate every N epochs (0: never)"}),
    ("--val-roi", "val_roi", {"type": int, "nargs": 2, "metavar": ("H", "W"), "help": "validation tile size"}),
    (
        "--loss",
        "loss",
        {
            "type": json.loads,
            "help": 'loss options as JSON, e.g. \'{"perceptual_weight": 0.1, "vgg_weights": "vgg19.pth"}\'',
        },
    ),
    ("--seed", "seed", {"type": int, "help": "seed of the initialisation and of every sample"}),
    ("--device", "device", {"type": _device, "help": DEVICE_HELP}),
    ("--num-workers", "num_workers", {"type": int, "help": "DataLoader workers"}),
)
TRAIN_FLAGS = (
    ("--no-augment", "augment", False, "no random flips/transposes"),
    ("--balance-volumes", "balance_volumes", True, "draw every training volume equally often (default: every slice)"),
    ("--data-consistency", "data_consistency", True, "train and validate with k-space data consistency (not ICONet)"),
    ("--deterministic", "deterministic", True, "deterministic algorithms"),
    ("--amp", "amp", True, "mixed precision on CUDA"),
    ("--no-progress", "progress", False, "no progress bar"),
)


def _add_train_options(p: argparse.ArgumentParser) -> None:
    from mrsr.engines.config import TrainConfig

    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    for flag, name, kwargs in TRAIN_OPTIONS:
        default = defaults.get(name)
        if isinstance(default, tuple):
            default = " ".join(str(v) for v in default)
        shown = "" if default in (None, dataclasses.MISSING) or callable(default) else f" (default: {default})"
        # default None: on --resume only the options actually given change the saved run
        p.add_argument(flag, dest=name, default=None, **{**kwargs, "help": kwargs["help"] + shown})
    for flag, name, value, text in TRAIN_FLAGS:
        p.add_argument(flag, dest=name, action="store_const", const=value, default=None, help=text)


def train_config_from_args(args: argparse.Namespace):
    """The run's :class:`~mrsr.engines.TrainConfig` from ``mrsr train``'s options (and the saved run on --resume)."""
    from mrsr.engines.config import TrainConfig
    from mrsr.engines.trainer import CHECKPOINT, load_checkpoint

    names = [o[1] for o in TRAIN_OPTIONS] + [f[1] for f in TRAIN_FLAGS]
    given = {n: getattr(args, n) for n in names if getattr(args, n) is not None}
    if args.resume:
        if "out" not in given and "network" not in given:
            raise MrsrError("--resume needs the run folder: give --out RUN_DIR.")
        out = Path(given.get("out") or TrainConfig(given["network"], "", scale=given.get("scale", 2)).out)
        saved = TrainConfig.from_dict(load_checkpoint(out / CHECKPOINT)["config"])
        return saved.resumed_with(TrainConfig.from_dict({**saved.to_dict(), **given, "out": str(out)}))
    missing = [f"--{n}" for n in ("network", "manifest") if n not in given]
    if missing:
        raise MrsrError(f"mrsr train needs {' and '.join(missing)}.")
    return TrainConfig.from_dict(given)


def cmd_train(args: argparse.Namespace) -> int:
    from mrsr.engines import train

    config = train_config_from_args(args)
    history = train(config, resume=args.resume, overwrite=args.overwrite)
    best = history.get("best")
    if best:
        base = history.get("baselines") or {}
        margins = ", ".join(f"{best['val_psnr'] - m['val_psnr']:+.3f} dB vs {n}" for n, m in base.items())
        say(f"best validation PSNR {best['val_psnr']:.3f} dB (epoch {best['epoch']}; {margins}); "
             f"weights: {config.out}/model_best.pt")  # fmt: skip
    return 0


def _version() -> str:
    from mrsr import __version__

    return __version__


def selfsr_settings(args: argparse.Namespace) -> SelfSRSettings:
    """``mrsr selfsr``'s options as the :class:`~mrsr.settings.SelfSRSettings` it runs with, field by field."""
    return SelfSRSettings(
        network=args.network, preset=args.preset, steps=args.steps, time_budget=args.time, profile=args.slice_profile,
        thickness=args.thickness, device=args.device, seed=args.seed, approach=args.approach, combine=args.combine,
        slab_consistency=args.slab_consistency, amp=args.amp,
    )  # fmt: skip


def cmd_selfsr(args: argparse.Namespace) -> int:
    """One volume, or a batch (a folder or a list file) into a folder."""
    if _is_batch(args):
        from mrsr.batch import selfsr_batch

        selfsr_batch(args.output, selfsr_settings(args), args.input, _part(args), args.overwrite, say)
        return 0
    from mrsr.pipeline import selfsr_file

    selfsr_file(args.input, args.output, selfsr_settings(args), overwrite=args.overwrite)
    return 0


def cmd_synth(args: argparse.Namespace) -> int:
    from mrsr.data.synth import write_examples

    paths = write_examples(args.output, args.num, args.seed, tuple(args.size), overwrite=args.overwrite)
    say(f"wrote {len(paths) - 1} synthetic images and {paths[-1].name} to {args.output}")
    return 0


def degrade_settings(args: argparse.Namespace) -> DegradeSettings:
    """``mrsr degrade``'s options as the settings object :func:`mrsr.pipeline.degrade_file` reads."""
    return DegradeSettings(scale=args.scale, axes=args.axes, grid=args.grid, window=args.window, snr=args.snr,
                           seed=args.seed, slice_profile=args.slice_profile, thickness=args.thickness,
                           gap=args.gap)  # fmt: skip


def cmd_degrade(args: argparse.Namespace) -> int:
    from mrsr.pipeline import degrade_file

    hr, lr, axes = degrade_file(args.input, args.output, degrade_settings(args), args.overwrite)
    if args.slice_profile:
        width = "".join(f", {name} {value:g} mm" for name, value in (("thickness", args.thickness),
                                                                  ("gap", args.gap)) if value is not None)  # fmt: skip
        say(
            f"degraded {tuple(hr.shape[1:])} -> {tuple(lr.shape[1:])} (thick slices across axis {axes[0]}"
            f"{'' if args.axes else ', auto'}, factor {args.scale:g}, profile {args.slice_profile}{width}); "
            f"wrote {args.output}"
        )
        return 0
    say(
        f"degraded {tuple(hr.shape[1:])} -> {tuple(lr.shape[1:])} (axes {' '.join(map(str, axes))}"
        f"{'' if args.axes else ': in-plane, auto'}, factor {args.scale:g}, grid {args.grid}, window "
        f"{args.window}, snr {args.snr}); wrote {args.output}"
    )
    return 0


def infer_options(args: argparse.Namespace) -> InferOptions:
    """``mrsr infer``'s options as the :class:`~mrsr.pipeline.InferOptions` it runs, field by field: what runs
    (a bundle, a network and its weights, or a baseline) and how (:class:`~mrsr.settings.InferSettings`)."""
    from mrsr.pipeline import InferOptions

    adapt = None if args.adapt is None else AdaptSettings(steps=args.adapt, time_budget=args.adapt_time, seed=args.seed)
    settings = InferSettings(
        scale=args.scale, slice_axis=args.slice_axis, out_size=args.size, roi_size=args.roi, overlap=args.overlap,
        sw_batch_size=args.sw_batch_size, slice_batch=args.slice_batch, device=args.device, amp=args.amp,
        channels_last=args.channels_last, data_consistency=args.data_consistency, detail=args.detail, adapt=adapt,
        progress=True,
    )  # fmt: skip
    return InferOptions(bundle=args.bundle, network=args.network, weights=args.weights, preset=args.preset,
                        in_channels=args.in_channels, settings=settings)  # fmt: skip


def cmd_infer(args: argparse.Namespace) -> int:
    """One volume, or a batch (a folder, a list file or a manifest section) into a folder."""
    from mrsr.inference import DESCRIPTION_KEY
    from mrsr.pipeline import super_resolve_file

    options = infer_options(args)
    if _is_batch(args):
        from mrsr.batch import BatchSource, super_resolve_batch

        source = BatchSource(args.input, args.manifest, args.data_root, args.section)
        super_resolve_batch(args.output, options, source, _part(args), args.overwrite, say)
        return 0
    start = time.perf_counter()
    lr, sr, _ = super_resolve_file(args.input, args.output, options, overwrite=args.overwrite, log=say)
    say(
        f"{options.method}: {tuple(lr.shape[1:])} -> {tuple(sr.shape[1:])} in {time.perf_counter() - start:.1f} s; "
        f"wrote {args.output} ({sr.meta[DESCRIPTION_KEY]})"
    )
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from mrsr.metrics import format_report
    from mrsr.pipeline import evaluate_files

    result = evaluate_files(args.sr, args.hr, args.data_range, args.border, args.slice_axis, args.mask, say)
    print(format_report({Path(args.sr).name: result}))
    if args.json:
        write_text_atomic(args.json, json.dumps(result.as_dict(), indent=2, default=float) + "\n")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from mrsr.demo import demo_files, run_demo
    from mrsr.metrics import format_report

    results = run_demo(args.output, args.scale, args.bundle, args.device, args.overwrite, say)
    print(format_report(results))
    print(f"\nwrote {Path(args.output)}/: {' '.join(demo_files(list(results)))}")
    return 0


def cmd_bundles(args: argparse.Namespace) -> int:
    from mrsr.bundle_table import bundle_rows, format_bundle_table

    rows = bundle_rows()
    print(json.dumps(rows, indent=2) if args.json else format_bundle_table(rows))
    return 0


def cmd_benchmark(args: argparse.Namespace) -> int:
    from mrsr.benchmark import BenchmarkConfig, run_benchmark

    out = Path(args.output)
    if out.exists() and any(out.iterdir()) and not args.overwrite:
        raise MrsrError(f"{out} holds files; pass --overwrite to replace them or choose another folder with -o.")
    config = BenchmarkConfig(manifest=args.manifest, section=args.section, data_root=args.data_root,
                             scales=args.scales, bundles=args.bundles, amp=not args.no_amp, repeats=args.repeats,
                             memory=not args.no_memory, out=str(out), docs=args.docs,
                             adapt_steps=args.adapt_steps, adapt_scales=args.adapt_scales)  # fmt: skip
    if args.devices:
        config.devices = args.devices
    start = time.perf_counter()
    print(run_benchmark(config, progress=say))
    say(f"benchmark done in {time.perf_counter() - start:.0f} s; wrote {out}/benchmark.md, benchmark.csv, "
         f"quality_vs_speed.png, panel.png{' and ' + args.docs if args.docs else ''}")  # fmt: skip
    return 0


def cmd_networks(args: argparse.Namespace) -> int:
    from mrsr.networks.summary import main as summary

    summary(
        networks=args.networks,
        presets=args.presets,
        scale=args.scale,
        repeats=args.repeats,
        time_it=not args.no_timing,
        progress=say,
    )
    return 0


def _is_batch(args: argparse.Namespace) -> bool:
    """``mrsr infer`` on a manifest, or ``mrsr infer``/``mrsr selfsr`` on a list file or a folder of NIfTI files or
    several DICOM series (:func:`mrsr.batch.is_batch_input`; a folder of one series is one volume)."""
    from mrsr.batch import is_batch_input

    return bool(getattr(args, "manifest", None)) or bool(args.input and is_batch_input(args.input))


def _part(args: argparse.Namespace) -> Part:
    """The batch's part this process runs (:func:`mrsr.batch.resolve_part`): the options, else Slurm or torchrun."""
    from mrsr.batch import resolve_part

    return resolve_part(args.num_parts, args.part_id)


def _check_batch(args: argparse.Namespace, output: Callable[[str, tuple], None]) -> None:
    """A batch's part exists and its output is a folder; a single volume has no parts and its output is checked as
    a volume's."""
    from mrsr.batch import batch_kind
    from mrsr.paths import is_nifti_path

    if _is_batch(args):
        _part(args)
        if is_nifti_path(args.output):
            what = f"{args.input} {batch_kind(args.input)}" if args.input else "--manifest"
            raise MrsrError(f"{what}: a batch, whose outputs go into a folder; give -o a folder, not the file name "
                            f"{args.output}.")  # fmt: skip
        return
    if args.num_parts is not None or args.part_id is not None:
        raise MrsrError(f"--num-parts and --part-id split a batch (a folder, a .txt/.csv list or --manifest); "
                        f"{args.input} is one volume.")  # fmt: skip
    output(args.output, (args.input,))


def check_paths(args: argparse.Namespace) -> None:
    """The checks of inputs and outputs that need neither torch nor MONAI, run before they load
    (seconds): a wrong path is reported at once. The commands check again where they write."""
    from mrsr.paths import CLI_OVERWRITE, check_input_path, check_output_path

    def output(path: str, inputs: tuple = (), volume: bool = True) -> None:
        check_output_path(path, args.overwrite, inputs, volume, overwrite_hint=CLI_OVERWRITE)

    if args.command == "degrade":
        check_input_path(args.input)
        output(args.output, (args.input,))
        check_degrade_options(args.scale, args.axes, args.grid, args.window, args.snr, args.slice_profile,
                              args.thickness, args.gap)  # fmt: skip
    elif args.command == "selfsr":
        check_input_path(args.input)
        _check_batch(args, output)
        check_slice_profile(args.slice_profile)
    elif args.command == "infer":
        for given in (args.input, args.manifest):
            if given:
                check_input_path(given)
        if not (args.input or args.manifest):
            raise MrsrError("Give an input volume (or --manifest for a batch).")
        _check_batch(args, output)
    elif args.command == "evaluate":
        for given in (args.sr, args.hr) + ((args.mask,) if args.mask not in ("auto", "none") else ()):
            check_input_path(given)
        if args.json:
            output(args.json, (args.sr, args.hr), volume=False)
    elif args.command == "demo":
        output(args.output, volume=False)  # and its parent must be creatable and writable
    elif args.command == "synth" and not args.overwrite:
        taken = [p for p in ("synth_0000.nii.gz", "panel.png") if (Path(args.output) / p).exists()]
        if taken:
            raise MrsrError(f"{Path(args.output) / taken[0]} exists; pass --overwrite to replace it or choose "
                             "another folder.")  # fmt: skip
    elif args.command == "benchmark" and args.manifest:
        check_input_path(args.manifest)


def check_devices(args: argparse.Namespace) -> None:
    """A GPU asked for that is not there, said in one line before any work (torch loads only for a
    ``cuda`` device); under ``torchrun`` each rank takes its ``LOCAL_RANK``'s GPU, whatever the index."""
    asked = [(flag, d) for flag in ("device", "devices") for d in _as_list(getattr(args, flag, None))]
    asked = [(flag, d) for flag, d in asked if d.startswith("cuda")]
    if not asked:
        return
    import torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    distributed = args.command == "train" and int(os.environ.get("WORLD_SIZE", "1")) > 1
    for flag, device in asked:
        index = int(device.partition(":")[2] or 0)
        if count == 0:
            raise MrsrError(f"--{flag} {device}: CUDA is not available to PyTorch on this machine; use --{flag} "
                             f"cpu{' (or auto)' if flag == 'device' else ''}.")  # fmt: skip
        if index >= count and not distributed:
            gpus = "1 GPU (cuda:0)" if count == 1 else f"{count} GPUs (cuda:0 to cuda:{count - 1})"
            raise MrsrError(f"--{flag} {device}: this machine has {gpus}.")


def _as_list(value: str | list[str] | None) -> list[str]:
    return [] if value is None else [value] if isinstance(value, str) else list(value)


COMMANDS = {
    "degrade": cmd_degrade,
    "selfsr": cmd_selfsr,
    "synth": cmd_synth,
    "infer": cmd_infer,
    "evaluate": cmd_evaluate,
    "demo": cmd_demo,
    "networks": cmd_networks,
    "train": cmd_train,
    "bundles": cmd_bundles,
    "benchmark": cmd_benchmark,
}


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ARG001
    """``warnings.showwarning`` for the command line: the message alone, on one line (not the source line)."""
    say(f"mrsr: warning: {' '.join(str(message).split())}", logging.WARNING)


def _interrupt_on_sigterm(signum: int, frame) -> None:  # noqa: ARG001
    """``kill`` (SIGTERM) ends a run as Ctrl-C does: temporary outputs are removed on the way out."""
    raise KeyboardInterrupt


def _log_level(args: argparse.Namespace) -> int:
    return logging.WARNING if args.quiet else logging.DEBUG if args.verbose else logging.INFO


@contextmanager
def _stderr_logging(level: int) -> Iterator[None]:
    """The ``mrsr`` logger, for one command: its lines from ``level`` up on stderr, each once, nowhere else.

    One handler whose format is the message alone (the lines carry their own ``mrsr: ...`` prefixes), and
    no propagation: a bundle's logging config (MONAI's puts a timestamped stdout handler on the root
    logger) would print every line again. What was there before comes back afterwards, since ``main`` is
    also called in-process (tests, scripts) and a later library call should report as it did.
    """
    logger = logging.getLogger(LOGGER_NAME)
    before = logger.handlers[:], logger.level, logger.propagate
    ours = StderrHandler()
    logger.handlers = [ours]
    logger.setLevel(level)
    logger.propagate = False
    try:
        yield
    finally:
        logger.handlers = before[0]
        logger.setLevel(before[1])
        logger.propagate = before[2]


def main(argv: Sequence[str] | None = None) -> int:
    """``mrsr ARGS``: the command's exit code (0 done, 1 mrsr's own error, 2 bad input, 130 interrupted)."""
    args = build_parser().parse_args(argv)
    with _stderr_logging(_log_level(args)):
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    """Run the parsed command. Bad input (:class:`~mrsr.errors.MrsrError`) and the user's environment (an
    ``OSError``: a missing file, a permission, a full disk) end in one line and exit 2; any other error is a
    bug, said in one line that asks for a report, exit 1 (``--traceback`` raises both)."""
    logging.getLogger("monai").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message=".*nvImageCodec.*")
    if not args.traceback:
        warnings.showwarning = _one_line_warning
    if threading.current_thread() is threading.main_thread():  # signals can only be set there
        signal.signal(signal.SIGTERM, _interrupt_on_sigterm)
    given = ", ".join(f"{k}={v!r}" for k, v in sorted(vars(args).items()))
    say(f"mrsr: mrsr {_version()}, Python {sys.version.split()[0]}: {given}", logging.DEBUG)
    try:
        check_paths(args)
        check_devices(args)
        return COMMANDS[args.command](args)
    except (MrsrError, OSError) as err:
        if args.traceback:
            raise
        say(f"mrsr: error: {err}", logging.ERROR)
        return EXIT_USAGE
    except KeyboardInterrupt:
        say("mrsr: interrupted; nothing of the unfinished output was written", logging.WARNING)
        return 130
    except Exception as err:  # a plain ValueError too: mrsr raises MrsrError for what the user can fix
        if args.traceback:
            raise
        say(f"mrsr: internal error: {type(err).__name__}: {err} (run again with --traceback and report it)",
            logging.ERROR)  # fmt: skip
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
