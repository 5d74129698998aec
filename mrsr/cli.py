"""The ``mrsr`` command: degrade, infer, evaluate, demo, networks, train, bundles, benchmark.

Bad input ends with a one-line ``mrsr: error: ...`` on stderr and exit code 2 (``--traceback``
shows the Python traceback instead). Outputs are written atomically and never replace an input or,
without ``--overwrite``, an existing file.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

from mrsr.paths import atomic_path, write_text_atomic

EXIT_USAGE = 2
BASELINE_NETWORKS = ("zerofill", "bicubic")
DEFAULT_ADAPT_STEPS = 300  # mrsr.adapt.DEFAULT_STEPS (not imported: --help stays fast)


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
    """argparse's own errors already exit 2 with one line; keep that, and make --help show defaults once."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)


def _factor(purpose: str):
    """An argparse type: a number >= 1, the factor of ``purpose``."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not value >= 1:
            raise argparse.ArgumentTypeError(f"the factor must be >= 1 (got {text}): {purpose}")
        return value

    return parse


_positive_float = _factor("SR upsamples")  # mrsr infer, demo
_degradation_factor = _factor("degradation coarsens the grid by this factor")


def _slice_axis(text: str) -> int | str:
    if text not in ("auto", "0", "1", "2"):
        raise argparse.ArgumentTypeError(f"expected auto, 0, 1 or 2, got {text!r}")
    return text if text == "auto" else int(text)


SLICE_AXIS_HELP = "axis across slices: auto (the thickest axis, else the last), 0, 1 or 2"


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text}")
    return value


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.add_argument("--traceback", action="store_true", help="show the Python traceback on errors")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="mrsr", description="Medical image super-resolution on MONAI.")
    parser.add_argument("--version", action="version", version=f"mrsr {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser(
        "degrade",
        help="simulate a low-resolution scan by k-space truncation",
        description="Keep the centre of k-space along the chosen axes (docs/CONVENTIONS.md): the LR "
        "affine keeps the origin and multiplies the spacing by the factor.",
    )
    p.add_argument("input", help="NIfTI file, DICOM file or DICOM series folder")
    p.add_argument("-o", "--output", required=True, help="output .nii/.nii.gz file or DICOM folder")
    p.add_argument(
        "--scale", type=_degradation_factor, default=2.0, help="degradation factor (need not divide the matrix)"
    )
    p.add_argument(
        "--axes",
        type=int,
        nargs="+",
        choices=(0, 1, 2),
        help="spatial axes to degrade, e.g. 0 1, 2 (thick slices) or 0 1 2 (3D) (default: the two in-plane axes, "
        "those other than the thickest axis, else 0 1)",
    )
    p.add_argument(
        "--grid",
        choices=("reduced", "same"),
        default="reduced",
        help="true LR matrix, or zero-filled back to the input matrix",
    )
    p.add_argument(
        "--window", choices=("none", "hamming", "tukey"), default="none", help="k-space taper (less ringing, more blur)"
    )
    p.add_argument("--snr", type=float, default=None, help="add Rician noise at this SNR (mean foreground / sigma)")
    p.add_argument("--seed", type=int, default=0, help="seed of the noise")
    _add_common(p)

    p = sub.add_parser(
        "infer",
        help="super-resolve a volume in-plane, slice by slice",
        description="Normalise, super-resolve every slice (2D or 2.5D) through MONAI's sliding-window "
        "inference at bounded memory, de-normalise and save with the upsampled affine.",
    )
    p.add_argument(
        "input",
        nargs="?",
        help="NIfTI file, DICOM file or DICOM series folder (the LR volume); or a folder of NIfTI files (batch)",
    )
    p.add_argument(
        "-o", "--output", required=True, help="output .nii/.nii.gz file or DICOM folder; a folder in batch mode"
    )
    p.add_argument("--manifest", help="batch: super-resolve every volume of this manifest section into --output")
    p.add_argument("--data-root", help="batch: folder the manifest's relative paths start from")
    p.add_argument("--section", default="test", help="batch: the manifest section to run")
    p.add_argument(
        "--bundle",
        help="a trained mrsr bundle by name (durn, wasa, iconet, msrn, medgan: see `mrsr bundles`) or folder",
    )
    p.add_argument(
        "--network",
        help="zerofill or bicubic (interpolation baselines; default bicubic when no --bundle), or a network: durn, "
        "wasa, iconet, msrn, casnet (needs --weights)",
    )
    p.add_argument("--weights", help="trained weights of the network (an mrsr weights file or a state_dict)")
    p.add_argument("--preset", help="network preset for a bare state_dict (default or small)")
    p.add_argument("--in-channels", type=int, help="network input channels for a bare state_dict (1, or 2k+1 for 2.5D)")
    p.add_argument(
        "--channels-last",
        action=argparse.BooleanOptionalAction,
        help="run the network in channels_last memory format (default: as the benchmark found faster for it)",
    )
    p.add_argument("--scale", type=_positive_float, default=2.0, help="in-plane upsampling factor")
    p.add_argument(
        "--slice-axis", type=_slice_axis, default="auto", help=SLICE_AXIS_HELP + "; the other two are upsampled"
    )
    p.add_argument(
        "--size", type=int, nargs=2, metavar=("H", "W"), help="in-plane output size (default: scale x input)"
    )
    p.add_argument(
        "--roi",
        type=int,
        nargs=2,
        metavar=("H", "W"),
        help="tile size for sliding-window inference (default: whole slices)",
    )
    p.add_argument("--overlap", type=float, default=0.25, help="tile overlap, a fraction of the tile (half is context)")
    p.add_argument("--sw-batch-size", type=int, default=8, help="tiles per forward pass")
    p.add_argument(
        "--slice-batch",
        type=int,
        help="slices per forward pass (default: 8 on a GPU, the network's pixel budget on a CPU)",
    )
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto")
    p.add_argument("--amp", action="store_true", help="mixed precision (fp16 on CUDA, bf16 on CPU)")
    p.add_argument(
        "--no-data-consistency",
        dest="data_consistency",
        action="store_false",
        help="keep the network's own k-space band instead of the input's (data consistency is on by default "
        "for networks and bundles; the baselines run as they are)",
    )
    p.add_argument(
        "--adapt",
        type=_non_negative_int,
        nargs="?",
        const=DEFAULT_ADAPT_STEPS,
        metavar="STEPS",
        help=f"first fine-tune a copy of the network on the input's own pairs one scale down ({DEFAULT_ADAPT_STEPS} "
        "steps without a number); use it only where held-out slices say it beats the network and zerofill, "
        "else the better of those two; 0: only that check",
    )
    p.add_argument("--adapt-time", type=float, metavar="SECONDS", help="time budget of --adapt per volume")
    p.add_argument("--seed", type=int, default=0, help="seed of --adapt")
    _add_common(p)

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
    p.add_argument("--slice-axis", type=_slice_axis, default="auto", help=SLICE_AXIS_HELP + " (of the per-slice SSIM)")
    p.add_argument("--mask", default="auto", help="foreground mask: auto, none, or a mask volume file")
    _add_common(p)

    p = sub.add_parser(
        "demo",
        help="degrade the bundled real T1 scan, super-resolve it, score it, draw a panel",
        description="Writes HR, LR and SR volumes (NIfTI), metrics.json and panel.png (the middle slice, oriented "
        "from the affine: LR | the other methods | the best | HR | its error map).",
    )
    p.add_argument("-o", "--output", default="mrsr_demo", help="output folder")
    p.add_argument("--scale", type=_positive_float, default=2.0, help="in-plane factor")
    p.add_argument(
        "--bundle",
        default="best",
        help="bundle to run beside the baselines: a name, 'best' (highest stored test PSNR at this scale) or 'none'",
    )
    p.add_argument("--device", default="auto", help="cpu, cuda or auto")
    _add_common(p)

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

    p = sub.add_parser(
        "bundles",
        help="list the MONAI bundles with their measured scores",
        description="Bundles are searched in $MRSR_BUNDLES, then in the source tree's bundles/.",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--traceback", action="store_true", help="show the Python traceback on errors")

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
    p.add_argument("--devices", nargs="+", help="devices to time (default: cpu, and cuda when available)")
    p.add_argument("--no-amp", action="store_true", help="time float32 only")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory runs")
    p.add_argument("--repeats", type=int, default=5, help="timed runs (median reported)")
    p.add_argument(
        "--adapt-steps",
        type=_non_negative_int,
        default=DEFAULT_ADAPT_STEPS,
        help="test-time adaptation steps of the 'NAME +dc +adapt' rows (0: no such rows)",
    )
    p.add_argument("--adapt-scales", type=int, nargs="+", default=[2], help="scales with '+dc +adapt' rows")
    p.add_argument("-o", "--output", default="benchmark", help="output folder")
    p.add_argument("--docs", help="also write the Markdown here (e.g. docs/BENCHMARKS.md)")
    _add_common(p)

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
    p.add_argument("--traceback", action="store_true", help="show the Python traceback on errors")
    return parser


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
    ("--device", "device", {"help": "cpu, cuda, cuda:N or auto"}),
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
    import dataclasses

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
            raise ValueError("--resume needs the run folder: give --out RUN_DIR.")
        out = Path(given.get("out") or TrainConfig(given["network"], "", scale=given.get("scale", 2)).out)
        saved = TrainConfig.from_dict(load_checkpoint(out / CHECKPOINT)["config"])
        return saved.resumed_with(TrainConfig.from_dict({**saved.to_dict(), **given, "out": str(out)}))
    missing = [f"--{n}" for n in ("network", "manifest") if n not in given]
    if missing:
        raise ValueError(f"mrsr train needs {' and '.join(missing)}.")
    return TrainConfig.from_dict(given)


def cmd_train(args: argparse.Namespace) -> int:
    from mrsr.engines import train

    config = train_config_from_args(args)
    history = train(config, resume=args.resume, overwrite=args.overwrite)
    best = history.get("best")
    if best:
        base = history.get("baselines") or {}
        margins = ", ".join(f"{best['val_psnr'] - m['val_psnr']:+.3f} dB vs {n}" for n, m in base.items())
        _say(
            f"best validation PSNR {best['val_psnr']:.3f} dB (epoch {best['epoch']}; {margins}); weights: {config.out}/model_best.pt"
        )
    return 0


def _version() -> str:
    from mrsr import __version__

    return __version__


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def cmd_degrade(args: argparse.Namespace) -> int:
    from mrsr.data import load_volume, save_volume
    from mrsr.data.io import check_fits_output
    from mrsr.inference import resolve_slice_axis
    from mrsr.transforms import KSpaceTruncate

    img = load_volume(args.input)
    check_fits_output(img, args.output)
    axes = args.axes
    if axes is None:  # in-plane: the two axes other than the slice axis, as mrsr infer upsamples them
        slice_axis = resolve_slice_axis(img)
        axes = [a for a in (0, 1, 2) if a != slice_axis]
    truncate = KSpaceTruncate(args.scale, tuple(axes), args.grid, args.window, snr=args.snr, seed=args.seed)
    lr = truncate(img)
    save_volume(lr, args.output, args.overwrite)
    _say(
        f"degraded {tuple(img.shape[1:])} -> {tuple(lr.shape[1:])} (axes {' '.join(map(str, axes))}"
        f"{'' if args.axes else ': in-plane, auto'}, factor {args.scale:g}, grid {args.grid}, window "
        f"{args.window}, snr {args.snr}); wrote {args.output}"
    )
    return 0


def get_predictor(name: str, scale: float | tuple[float, float]):
    """An interpolation baseline by name."""
    from mrsr.networks.baselines import Bicubic, ZeroFill

    table = {"zerofill": ZeroFill, "bicubic": Bicubic}
    if name not in table:
        raise ValueError(f"Unknown baseline {name!r}; choose one of {', '.join(table)}.")
    return table[name](scale=scale)


def build_predictor(args: argparse.Namespace, lr_shape: tuple[int, ...], slice_axis: int = 2):
    """(predictor, in_channels, scale for super_resolve) for ``--network`` (and ``--weights``)."""

    from mrsr.checkpoint import load_network
    from mrsr.networks import SR_NETWORKS

    if args.bundle:
        from mrsr.bundle import load_bundle_network

        if args.network or args.weights:
            raise ValueError("Give either --bundle or --network/--weights, not both.")
        if args.scale != int(args.scale):
            raise ValueError(f"Bundles upsample by an integer factor; got --scale {args.scale:g}.")
        network, in_channels = load_bundle_network(args.bundle, int(args.scale))
        return network, in_channels, float(args.scale)
    name = (args.network or "bicubic").lower()
    if name in BASELINE_NETWORKS:
        scale = args.scale
        if args.size:  # land exactly on the requested matrix
            in_plane = [n for a, n in enumerate(lr_shape) if a != slice_axis]
            scale = (args.size[0] / in_plane[0], args.size[1] / in_plane[1])
        return get_predictor(name, scale), 1, args.scale
    if name not in SR_NETWORKS:
        raise ValueError(
            f"Unknown network {args.network!r}; choose one of {', '.join(BASELINE_NETWORKS + tuple(SR_NETWORKS))}."
        )
    if not args.weights:
        raise ValueError(f"--network {name} needs --weights FILE (a trained checkpoint); the baselines need none.")
    if args.scale != int(args.scale):
        raise ValueError(f"Networks upsample by an integer factor; got --scale {args.scale:g}.")
    network, _, kwargs = load_network(
        args.weights, name, preset=args.preset, scale=int(args.scale), in_channels=args.in_channels
    )
    return network, int(kwargs.get("in_channels", 1)), float(kwargs.get("scale", args.scale))


def _method(args: argparse.Namespace) -> str:
    """What ``mrsr infer`` runs: ``bundle NAME``, or the network / baseline name."""
    return f"bundle {args.bundle}" if args.bundle else (args.network or "bicubic").lower()


def super_resolve_file(args: argparse.Namespace, path: str | None = None, predictor=None, layout=None, out=None):
    """Load, normalise, (adapt,) super-resolve and de-normalise ``path`` (default ``args.input``).

    Returns ``(lr, sr, (predictor, in_channels, scale))``; pass the last back as ``predictor`` to
    reuse a loaded network for the next file (adaptation always starts again from it). ``out``
    (default ``args.output``) is where the result will be written.
    """
    from mrsr.data import load_volume
    from mrsr.data.io import check_fits_output
    from mrsr.inference import DESCRIPTION_KEY, describe, resolve_slice_axis, super_resolve
    from mrsr.transforms import RobustNormalize

    if args.adapt is not None and _method(args) in BASELINE_NETWORKS:
        raise ValueError(f"--adapt fine-tunes a network; {_method(args)} has nothing to adapt: drop --adapt or give "
                         "--bundle or --network with --weights.")  # fmt: skip
    name, out = Path(path or args.input).name, out or args.output
    lr = load_volume(path or args.input, layout=layout)  # layout: a headerless manifest image's
    check_fits_output(lr, out)
    axis = resolve_slice_axis(lr, args.slice_axis)
    if predictor is None or _method(args) in BASELINE_NETWORKS:  # a baseline's scale may depend on the shape
        predictor = build_predictor(args, tuple(lr.shape[1:]), axis)
    network, in_channels, scale = predictor
    normalise = RobustNormalize()
    x = normalise(lr)
    is_network = _method(args) not in BASELINE_NETWORKS
    run, method = network, _method(args)
    if is_network and args.adapt is not None:
        from mrsr.adapt import adaptable_slices

        adaptable_slices(x, int(scale), axis)  # a one-line error before any work
    spacing = ", ".join(f"{v:g}" for v in lr.pixdim.tolist())
    _say(f"{method}: {name} {tuple(lr.shape[1:])} at {spacing} mm, {lr.shape[1 + axis]} slices across axis {axis}"
         f"{' (auto: the thickest axis, else the last)' if args.slice_axis == 'auto' else ''}, x{scale:g} in-plane")  # fmt: skip
    if is_network and args.adapt is not None:
        from mrsr.adapt import adapt

        _say(f"{method}: adapting to {name} ({args.adapt} steps"
             f"{f', at most {args.adapt_time:g} s' if args.adapt_time else ''})")  # fmt: skip
        result = adapt(network, x, int(scale), steps=args.adapt, time_budget=args.adapt_time,
                       slice_axis=axis, in_channels=in_channels, device=args.device, seed=args.seed,
                       data_consistency=args.data_consistency, progress=True)  # fmt: skip
        _say(f"{method}: {result.summary()}")
        run, method = result.predictor, f"{method} ({result.choice})"
        is_network = result.data_consistency_applies
    consistent = bool(is_network and args.data_consistency)
    sr = super_resolve(
        x,
        run,
        scale,
        slice_axis=axis,
        in_channels=in_channels,
        roi_size=args.roi,
        overlap=args.overlap,
        sw_batch_size=args.sw_batch_size,
        slice_batch=args.slice_batch,
        device=args.device,
        amp=args.amp,
        channels_last=args.channels_last,
        out_size=args.size,
        progress=True,
        data_consistency=consistent,
    )
    sr = normalise.inverse(sr)
    sr.meta[DESCRIPTION_KEY] = describe(method, scale, consistent)
    return lr, sr, predictor


def _batch_inputs(args: argparse.Namespace) -> tuple[list[Path], dict[Path, dict]]:
    """The batch's input files, and the layouts of a manifest's headerless ones (``image_layout``) by path."""
    from mrsr.data.io import is_nifti_path

    if args.manifest:
        from mrsr.data.manifest import load_manifest

        if args.input:
            raise ValueError("Give either an input or --manifest, not both.")
        entries = load_manifest(args.manifest, args.data_root, sections=(args.section,)).get(args.section) or []
        if not entries:
            raise ValueError(
                f"The manifest {args.manifest} has no {args.section!r} entries; choose one with --section."
            )
        layouts = {Path(e["image"]): e["image_layout"] for e in entries if "image_layout" in e}
        return [Path(e["image"]) for e in entries], layouts
    files = sorted(p for p in Path(args.input).iterdir() if is_nifti_path(p))
    if not files:
        raise ValueError(f"{args.input} holds no .nii/.nii.gz files.")
    return files, {}


def _batch_output(path: Path, out_dir: Path) -> Path:
    from mrsr.data.io import is_nifti_path

    return out_dir / (path.name if is_nifti_path(path) else f"{path.name}.nii.gz")


def cmd_infer_batch(args: argparse.Namespace) -> int:
    """Super-resolve many volumes into a folder: finished outputs are skipped (resumable), and under
    torchrun (``RANK``/``WORLD_SIZE``) each rank takes every WORLD_SIZE-th volume."""
    from mrsr.data import save_volume

    inputs, layouts = _batch_inputs(args)
    out_dir = Path(args.output)
    outputs = [_batch_output(p, out_dir) for p in inputs]
    clashes = sorted({o.name for o in outputs if outputs.count(o) > 1})
    if clashes:
        raise ValueError(f"Several inputs would write the same output name: {', '.join(clashes[:5])}; rename them.")
    if out_dir.resolve() in {p.resolve().parent for p in inputs}:
        raise ValueError(f"The output folder {out_dir} holds inputs; choose another folder with -o.")
    out_dir.mkdir(parents=True, exist_ok=True)
    rank, world = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
    mine = list(zip(inputs, outputs))[rank::world]
    done = skipped = 0
    failed: list[str] = []
    predictor = None
    for i, (path, out) in enumerate(mine, 1):
        if out.exists() and not args.overwrite:
            skipped += 1
            continue
        start = time.perf_counter()
        try:
            lr, sr, predictor = super_resolve_file(args, str(path), predictor, layouts.get(path), out)
            save_volume(sr, out, overwrite=args.overwrite)
        except (ValueError, OSError) as err:
            failed.append(path.name)
            _say(f"[{i}/{len(mine)}] {path.name}: error: {err}")
            continue
        done += 1
        _say(
            f"[{i}/{len(mine)}] {path.name}: {tuple(lr.shape[1:])} -> {tuple(sr.shape[1:])} in {time.perf_counter() - start:.1f} s"
        )
    where = f" (rank {rank} of {world})" if world > 1 else ""
    _say(f"{done} written, {skipped} already done, {len(failed)} failed{where}; outputs in {out_dir}")
    if failed:
        raise ValueError(f"{len(failed)} volume(s) failed: {', '.join(failed[:5])}{' ...' if len(failed) > 5 else ''}")
    return 0


def cmd_infer(args: argparse.Namespace) -> int:
    from mrsr.data import save_volume
    from mrsr.inference import DESCRIPTION_KEY

    if _is_batch(args):
        return cmd_infer_batch(args)
    start = time.perf_counter()
    lr, sr, _ = super_resolve_file(args)
    save_volume(sr, args.output, args.overwrite)
    _say(
        f"{_method(args)}: {tuple(lr.shape[1:])} -> {tuple(sr.shape[1:])} in {time.perf_counter() - start:.1f} s; "
        f"wrote {args.output} ({sr.meta[DESCRIPTION_KEY]})"
    )
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    import numpy as np

    from mrsr.data import load_volume
    from mrsr.inference import resolve_slice_axis
    from mrsr.metrics import evaluate, format_report

    sr, hr = load_volume(args.sr), load_volume(args.hr)
    if sr.shape != hr.shape:
        raise ValueError(
            f"SR shape {tuple(sr.shape[1:])} differs from HR shape {tuple(hr.shape[1:])}; resample one onto the other's grid first."
        )
    if not np.allclose(np.asarray(sr.affine), np.asarray(hr.affine), atol=1e-3):
        _say("warning: the SR and HR affines differ: the volumes do not overlay in world coordinates")
    mask = args.mask
    if mask not in ("auto", "none"):
        mask = load_volume(mask)[0] > 0
    axis = resolve_slice_axis(hr, args.slice_axis)
    result = evaluate(sr, hr, data_range=args.data_range, border=args.border, slice_axis=axis, mask=mask)
    print(format_report({Path(args.sr).name: result}))
    if args.json:
        _write_json(result.as_dict(), Path(args.json))
    return 0


def _write_json(obj, path: Path) -> None:
    write_text_atomic(path, json.dumps(obj, indent=2, default=float) + "\n")


def cmd_demo(args: argparse.Namespace) -> int:
    from mrsr.data import load_volume, sample_path, save_volume
    from mrsr.inference import super_resolve
    from mrsr.metrics import evaluate, format_report
    from mrsr.report import save_panel
    from mrsr.transforms import KSpaceTruncate, RobustNormalize

    out = Path(args.output)
    bundle = _demo_bundle(args.bundle, args.scale)
    if bundle is not None:  # loaded first: a bad --bundle fails before any work
        from mrsr.bundle import load_bundle_network

        network = load_bundle_network(bundle, int(args.scale))
    _say(f"[1/4] loading the bundled sample {sample_path().name} (real T1 head MRI, Apache-2.0)")
    hr = RobustNormalize()(load_volume(sample_path()))
    _say(f"[2/4] degrading in-plane by k-space truncation, factor {args.scale:g}")
    lr = KSpaceTruncate(args.scale, axes=(0, 1))(hr)
    exact = (hr.shape[1] / lr.shape[1], hr.shape[2] / lr.shape[2])  # lands on the HR matrix for any factor
    methods = {name: (get_predictor(name, exact), 1) for name in BASELINE_NETWORKS}
    if bundle is not None:
        methods[bundle] = network
    results, volumes = {}, {}
    for name, (predictor, in_channels) in methods.items():
        _say(f"[3/4] super-resolving with {name}")
        sr = super_resolve(lr, predictor, args.scale, slice_axis=2, in_channels=in_channels, device=args.device,
                           out_size=hr.shape[1:3], data_consistency=name not in BASELINE_NETWORKS)  # fmt: skip
        volumes[name] = sr
        results[name] = evaluate(sr, hr, border=int(round(args.scale)))
    _say("[4/4] writing volumes, metrics and the panel")
    with atomic_path(out, directory=True) as tmp:
        save_volume(hr, tmp / "hr.nii.gz")
        save_volume(lr, tmp / "lr.nii.gz")
        for name, sr in volumes.items():
            save_volume(sr, tmp / f"sr_{name}.nii.gz")
        best = max(results, key=lambda n: results[n].psnr)
        save_panel(
            lr,
            volumes[best],
            hr,
            tmp / "panel.png",
            title=f"{best}, x{args.scale:g} (PSNR {results[best].psnr:.2f} dB)",
            baselines={n: v for n, v in volumes.items() if n != best},
            sr_name=best,
            psnr_border=int(round(args.scale)),
        )
        _write_json({n: r.as_dict() for n, r in results.items()}, tmp / "metrics.json")
    print(format_report(results))
    print(f"\nwrote {out}/: hr.nii.gz lr.nii.gz {' '.join(f'sr_{n}.nii.gz' for n in volumes)} metrics.json panel.png")
    return 0


def _demo_bundle(choice: str, scale: float) -> str | None:
    """The bundle ``mrsr demo`` runs: a name, the best one with weights for ``scale``, or none."""
    from mrsr.bundle import bundle_scales, list_bundles, read_metadata

    if choice == "none":
        return None
    if scale != int(scale):
        if choice != "best":
            raise ValueError(f"Bundles upsample by an integer factor; got --scale {scale:g}.")
        _say(f"note: no bundle works at x{scale:g} (integer factors only): running the baselines")
        return None
    key = f"x{int(scale)}"
    if choice != "best":
        metrics = read_metadata(choice).get("eval_metrics", {}).get(key, {})
        if not metrics.get("do_no_harm", True):
            _say(f"note: {choice} at {key} is worse than zerofill by {-metrics['worst_margin']:.2f} dB on the test "
                 f"image {metrics['worst_image']}, even with data consistency (see `mrsr bundles`)")  # fmt: skip
        return choice
    scored, harmful = [], []
    for b in list_bundles():
        metrics = read_metadata(b).get("eval_metrics", {}).get(key, {})
        if int(scale) not in bundle_scales(b):
            continue
        if not metrics.get("do_no_harm", True):  # it loses to zerofill on some test image: never the demo's pick
            harmful.append(b.name[: -len("_mr_sr")])
            continue
        scored.append((metrics.get("psnr", float("-inf")), b.name[: -len("_mr_sr")]))
    if harmful:
        _say(f"note: not considered, as they lose more than 0.1 dB to zerofill on some test image at {key}: "
             f"{', '.join(harmful)} (see `mrsr bundles`)")  # fmt: skip
    if not scored:
        _say(f"note: no bundle ships x{int(scale)} weights that do no harm on every test image: running the baselines "
             "only (name one to run it anyway, e.g. --bundle wasa)")  # fmt: skip
        return None
    return max(scored)[1]


def cmd_bundles(args: argparse.Namespace) -> int:
    from mrsr.bundle import SUFFIX, bundle_scales, list_bundles, read_metadata

    rows = []
    for bundle in list_bundles():
        meta = read_metadata(bundle)
        where = bundle.relative_to(Path.cwd()) if bundle.is_relative_to(Path.cwd()) else bundle
        row = {"bundle": bundle.name[: -len(SUFFIX)], "version": meta.get("version"), "path": str(where)}
        row["scales"] = bundle_scales(bundle)
        row["eval_metrics"] = {k: {m: v[m] for m in ("psnr", "ssim", "psnr_zerofill", "psnr_bicubic", "worst_margin",
                                                     "worst_image", "do_no_harm") if m in v}
                               for k, v in meta.get("eval_metrics", {}).items()}  # fmt: skip
        rows.append(row)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("No bundles found: set $MRSR_BUNDLES to a folder of <name>_mr_sr bundles.")
        return 0
    scales = sorted({int(k[1:]) for r in rows for k in r["eval_metrics"]})
    head = "| bundle | version | weights |" + "".join(
        f" x{s} test PSNR (vs zerofill, bicubic) | x{s} worst image vs zerofill |" for s in scales)  # fmt: skip
    print(head + " folder |")
    print("|---|---|---|" + "---|---|" * len(scales) + "---|")
    warnings = []
    for r in rows:
        cells = []
        for s in scales:
            m = r["eval_metrics"].get(f"x{s}")
            if not m:
                cells.append(" not scored | |")
                continue
            margins = f"({m['psnr'] - m['psnr_zerofill']:+.2f}, {m['psnr'] - m['psnr_bicubic']:+.2f})"
            cells.append(f" {m['psnr']:.2f} dB {margins} | {_fmt_margin(m)} |")
            if not m.get("do_no_harm", True):
                warnings.append(f"{r['bundle']} at x{s} is worse than zerofill by {-m['worst_margin']:.2f} dB on "
                                f"{m['worst_image']}, even with data consistency: on scans like it, zerofill is "
                                "the safer choice.")  # fmt: skip
        weights = ", ".join(f"x{s}" for s in r["scales"]) or "none"
        print(f"| {r['bundle']} | {r['version']} | {weights} |{''.join(cells)} {r['path']} |")
    print("\nScores: the default output (data consistency on), mean over the test images of "
          "data_manifests/real_data.json, and its smallest margin over zerofill on any one image "
          "(see each docs/README.md).")
    for line in warnings:
        print(f"- {line}")
    return 0


def _fmt_margin(m: dict) -> str:
    return f"{m['worst_margin']:+.2f} dB ({m['worst_image']})" if "worst_margin" in m else "n/a"


def cmd_benchmark(args: argparse.Namespace) -> int:
    from mrsr.benchmark import BenchmarkConfig, run_benchmark

    out = Path(args.output)
    if out.exists() and any(out.iterdir()) and not args.overwrite:
        raise ValueError(f"{out} holds files; pass --overwrite to replace them or choose another folder with -o.")
    config = BenchmarkConfig(manifest=args.manifest, section=args.section, data_root=args.data_root,
                             scales=args.scales, bundles=args.bundles, amp=not args.no_amp, repeats=args.repeats,
                             memory=not args.no_memory, out=str(out), docs=args.docs,
                             adapt_steps=args.adapt_steps, adapt_scales=args.adapt_scales)  # fmt: skip
    if args.devices:
        config.devices = args.devices
    start = time.perf_counter()
    print(run_benchmark(config, progress=_say))
    _say(f"benchmark done in {time.perf_counter() - start:.0f} s; wrote {out}/benchmark.md, benchmark.csv, "
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
        progress=_say,
    )
    return 0


def _is_batch(args: argparse.Namespace) -> bool:
    """``mrsr infer`` on a manifest or on a folder of NIfTI files (not a DICOM series folder)."""
    from mrsr.paths import is_nifti_path

    folder = Path(args.input) if args.input else None
    return bool(args.manifest) or bool(folder and folder.is_dir() and any(map(is_nifti_path, folder.iterdir())))


def check_paths(args: argparse.Namespace) -> None:
    """The checks of inputs and outputs that need neither torch nor MONAI, run before they load
    (seconds): a wrong path is reported at once. The commands check again where they write."""
    from mrsr.paths import CLI_OVERWRITE, check_input_path, check_output_path

    def output(path: str, inputs: tuple = (), volume: bool = True) -> None:
        check_output_path(path, args.overwrite, inputs, volume, overwrite_hint=CLI_OVERWRITE)

    if args.command == "degrade":
        check_input_path(args.input)
        output(args.output, (args.input,))
    elif args.command == "infer":
        for given in (args.input, args.manifest):
            if given:
                check_input_path(given)
        if not (args.input or args.manifest):
            raise ValueError("Give an input volume (or --manifest for a batch).")
        if not _is_batch(args):
            output(args.output, (args.input,))
    elif args.command == "evaluate":
        for given in (args.sr, args.hr) + ((args.mask,) if args.mask not in ("auto", "none") else ()):
            check_input_path(given)
        if args.json:
            output(args.json, (args.sr, args.hr), volume=False)
    elif args.command == "demo":
        output(args.output, volume=False)  # and its parent must be creatable and writable
    elif args.command == "benchmark" and args.manifest:
        check_input_path(args.manifest)


COMMANDS = {
    "degrade": cmd_degrade,
    "infer": cmd_infer,
    "evaluate": cmd_evaluate,
    "demo": cmd_demo,
    "networks": cmd_networks,
    "train": cmd_train,
    "bundles": cmd_bundles,
    "benchmark": cmd_benchmark,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.getLogger("monai").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message=".*nvImageCodec.*")
    try:
        check_paths(args)
        return COMMANDS[args.command](args)
    except (ValueError, OSError) as err:  # MrsrError is a ValueError
        if args.traceback:
            raise
        _say(f"mrsr: error: {err}")
        return EXIT_USAGE
    except KeyboardInterrupt:
        _say("mrsr: interrupted; nothing was written")
        return 130
    except Exception as err:  # an internal error: still one line unless asked
        if args.traceback:
            raise
        _say(f"mrsr: internal error: {type(err).__name__}: {err} (run again with --traceback and report it)")
        return 1


if __name__ == "__main__":
    sys.exit(main())
