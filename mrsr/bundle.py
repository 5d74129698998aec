"""mrsr's MONAI bundles: find, list and load them, install trained weights, score them.

A bundle is a folder ``<name>_mr_sr/`` (``bundles/`` in the repository) in MONAI's layout::

    configs/metadata.json      version, task, paper, network_data_format, eval_metrics
    configs/inference.json     LoadVolumed -> RobustNormalized -> VolumeInferer -> RestoreVolumed -> SaveVolumed
    configs/train.json         mrsr.engines.train on the real-data manifest, default-size network
    configs/multi_gpu_train.json, configs/evaluate.json, configs/logging.conf
    models/model.pt            x2 weights (a plain state_dict); models/model_x4.pt: x4
    docs/README.md, LICENSE

Bundles are looked up in the folders of ``$MRSR_BUNDLES`` (``os.pathsep``-separated), then in the
installed package (``mrsr/bundles/``: a wheel carries them there, see setup.py), then in the source
tree's ``bundles/`` (an editable install or a checkout). This module also holds
:func:`one_line_errors` (the configs' error lines) and :func:`evaluate_bundle`, the command behind
each model card's numbers. The parts the inference configs chain are in the layers below:
:func:`mrsr.data.as_datalist`, :class:`mrsr.data.SaveVolumed`, :class:`mrsr.inference.RestoreVolumed`
and :class:`mrsr.inference.ProgressLines`.
"""

from __future__ import annotations

import inspect
import json
import os
import pickle
import re
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.bundle import ConfigParser
from torch import nn

from mrsr.errors import MrsrError
from mrsr.paths import write_text_atomic

__all__ = [
    "BUNDLES_ENV",
    "PACKAGED_BUNDLES",
    "bundle_search_path",
    "list_bundles",
    "find_bundle",
    "weights_path",
    "bundle_scales",
    "shipped_weights",
    "read_metadata",
    "load_bundle_network",
    "install_weights",
    "evaluate_bundle",
    "score_methods",
    "store_eval_metrics",
    "DO_NO_HARM_DB",
    "held_out_pairs",
    "require_torchrun",
    "one_line_errors",
]

BUNDLES_ENV = "MRSR_BUNDLES"
# what an SR output says about how it was made (mrsr.inference.super_resolve sets them)
SUFFIX = "_mr_sr"
# registry name of the network -> bundle name, where they differ
BUNDLE_NAMES = {"casnet": "medgan"}


# where a regular install (a wheel) has the bundles: setup.py copies bundles/<name>_mr_sr/ there
PACKAGED_BUNDLES = Path(__file__).resolve().parent / "bundles"
# the repository's own bundles: an editable install or a checkout
SOURCE_BUNDLES = Path(__file__).resolve().parents[1] / "bundles"


def bundle_search_path() -> list[Path]:
    """Folders searched for bundles, those that exist: ``$MRSR_BUNDLES`` first, then the installed
    package's ``mrsr/bundles/`` (a wheel install), then the source tree's ``bundles/`` (an editable install)."""
    folders = [Path(p) for p in os.environ.get(BUNDLES_ENV, "").split(os.pathsep) if p]
    folders += [PACKAGED_BUNDLES, SOURCE_BUNDLES]
    return [f for f in folders if f.is_dir()]


def _is_bundle(path: Path) -> bool:
    return (path / "configs" / "inference.json").is_file()


def list_bundles() -> list[Path]:
    """Every bundle folder on the search path (the first of each name wins), sorted by name."""
    found: dict[str, Path] = {}
    for folder in bundle_search_path():
        for path in sorted(folder.iterdir()):
            if path.name.endswith(SUFFIX) and _is_bundle(path):
                found.setdefault(path.name, path)
    return [found[k] for k in sorted(found)]


def find_bundle(name_or_path: str | os.PathLike) -> Path:
    """A bundle folder from a path or a name: ``msrn``, ``msrn_mr_sr``, ``medgan`` (or ``casnet``).

    Raises:
        MrsrError: no such bundle; the message lists the ones there are.
    """
    path = Path(name_or_path)
    if _is_bundle(path):
        return path.resolve()
    name = str(name_or_path).strip().lower()
    name = BUNDLE_NAMES.get(name, name)
    name = name if name.endswith(SUFFIX) else name + SUFFIX
    for bundle in list_bundles():
        if bundle.name == name:
            return bundle
    if path.is_dir() and path.resolve() == Path.cwd().resolve():  # MONAI's default bundle_root, "."
        raise MrsrError(
            f"No bundle in the folder {str(name_or_path)!r} (it has no configs/inference.json): pass "
            f"--bundle_root {_bundle_root_hint()}, the bundle's folder (python -m monai.bundle takes the current "
            "folder without it)."
        )
    known = ", ".join(b.name[: -len(SUFFIX)] for b in list_bundles()) or "none"
    raise MrsrError(
        f"No bundle {str(name_or_path)!r} (bundles found: {known}); give a bundle name, a bundle folder "
        f"(one with configs/inference.json) or add its parent folder to ${BUNDLES_ENV}."
    )


def weights_path(bundle: str | os.PathLike, scale: int = 2) -> Path:
    """``models/model.pt`` for x2 (MONAI's default name), ``models/model_x{scale}.pt`` otherwise."""
    return find_bundle(bundle) / "models" / ("model.pt" if int(scale) == 2 else f"model_x{int(scale)}.pt")


def shipped_weights(bundle: str | os.PathLike, scale: int = 2) -> str:
    """:func:`weights_path` of a bundle that ships weights for ``scale`` (the inference config's ``ckpt_path``).

    Raises:
        MrsrError: no weights for this scale; the message names the scales there are.
    """
    root = find_bundle(bundle)
    path = weights_path(root, scale)
    if not path.is_file():
        have = ", ".join(f"x{s}" for s in bundle_scales(root)) or "none"
        raise MrsrError(
            f"The bundle {root.name} has no weights for x{scale} (it has: {have}); pass --scale "
            "with one of those, or --ckpt_path with your own weights for this scale."
        )
    return str(path)


def bundle_scales(bundle: str | os.PathLike) -> list[int]:
    """The scales a bundle ships weights for."""
    return [s for s in (2, 3, 4, 8) if weights_path(bundle, s).is_file()]


def read_metadata(bundle: str | os.PathLike) -> dict[str, Any]:
    """The bundle's ``configs/metadata.json`` as a dict."""
    return json.loads((find_bundle(bundle) / "configs" / "metadata.json").read_text())


def _inference_parser(bundle: Path, scale: int, config: str | os.PathLike | None = None) -> ConfigParser:
    parser = ConfigParser()
    parser.read_config(str(config or bundle / "configs" / "inference.json"))
    parser["bundle_root"] = str(bundle)
    parser["scale"] = int(scale)
    parser["traceback"] = True  # building network_def from Python installs no excepthook (one_line_errors)
    return parser


def load_bundle_network(
    bundle: str | os.PathLike, scale: int = 2, weights: str | os.PathLike | None = None
) -> tuple[nn.Module, int]:
    """Build a bundle's ``network_def`` and load its weights for ``scale``.

    Args:
        bundle: a bundle name or folder.
        scale: the SR factor (its weights file must exist unless ``weights`` is given).
        weights: another state_dict file to load instead of the bundle's.

    Returns:
        (network in eval mode on the CPU, its number of input channels).

    Raises:
        MrsrError: unknown bundle, no weights for that scale, weights that do not fit.
    """
    path = find_bundle(bundle)
    file = Path(weights) if weights is not None else weights_path(path, scale)
    if not file.is_file():
        have = ", ".join(f"x{s}" for s in bundle_scales(path)) or "none"
        raise MrsrError(
            f"The {path.name} bundle has no weights for x{scale} (it has: {have}); choose --scale from those."
        )
    parser = _inference_parser(path, scale)
    network = parser.get_parsed_content("network_def", instantiate=True)
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
        network.load_state_dict(state)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, AttributeError) as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise MrsrError(f"Cannot load {file} into the {path.name} network: {first}") from None
    return network.eval(), int(parser["network_def"]["in_channels"])


def _check_same_network(bundle: Path, scale: int, name: str, kwargs: dict[str, Any]) -> None:
    """Raise unless weights built as ``name(**kwargs)`` are the bundle's ``network_def`` at ``scale``.

    Options without parameters (a global residual's interpolation) are compared too: a state_dict
    alone would load into the wrong configuration without complaint.
    """
    from mrsr.networks import get_network_class

    parser = _inference_parser(bundle, scale)
    definition = {  # the constructor's arguments; not _requires_ and the like
        k: parser.get_parsed_content(f"network_def#{k}") for k in parser["network_def"] if not k.startswith("_")
    }
    cls = get_network_class(name)
    if parser["network_def"]["_target_"].rsplit(".", 1)[-1] != cls.__name__:
        raise MrsrError(f"These are {cls.__name__} weights; the {bundle.name} bundle holds another network.")
    defaults = {k: p.default for k, p in inspect.signature(cls).parameters.items()}
    differ = [k for k, v in definition.items() if kwargs.get(k, defaults.get(k)) != v]
    if differ:
        got = ", ".join(f"{k}={kwargs.get(k, defaults.get(k))!r} (bundle: {definition[k]!r})" for k in differ)
        raise MrsrError(f"These weights were trained with {got}; retrain with the bundle's options.")


def install_weights(weights: str | os.PathLike, bundle: str | os.PathLike, scale: int = 2) -> Path:
    """Copy an mrsr weights file (``model_best.pt`` of ``mrsr train``) into a bundle as a plain state_dict.

    The weights must fit the bundle's ``network_def`` at ``scale`` exactly (same network, preset and
    options); they are checked by loading them before the file is written (atomically).

    Returns:
        The written ``models/model*.pt``.
    """
    from mrsr.checkpoint import load_network
    from mrsr.engines.handlers import atomic_save

    path = find_bundle(bundle)
    network, name, kwargs = load_network(weights)
    _check_same_network(path, scale, name, kwargs)
    out = weights_path(path, scale)
    out.parent.mkdir(exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in network.state_dict().items()}
    candidate = out.with_name(out.name + ".check")  # loaded back before it replaces the bundle's file
    atomic_save(state, candidate)
    try:
        load_bundle_network(path, scale, weights=candidate)
        os.replace(candidate, out)
    finally:
        candidate.unlink(missing_ok=True)
    return out


def require_torchrun() -> None:
    """Stop with a clear message when ``multi_gpu_train.json`` is run without ``torchrun``."""
    if "WORLD_SIZE" not in os.environ:
        raise MrsrError(
            "multi_gpu_train.json runs under torchrun: torchrun --nproc_per_node=N -m monai.bundle run "
            "--config_file \"['configs/train.json','configs/multi_gpu_train.json']\"; for one GPU or the CPU "
            "use configs/train.json alone."
        )


def _user_error(err: BaseException | None) -> BaseException | None:
    """The first :class:`MrsrError` or ``OSError`` in ``err``'s chain of causes (MONAI wraps them in RuntimeErrors)."""
    seen = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, (MrsrError, OSError)):
            return err
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return None


STATE_DICT_ERROR = "Error(s) in loading state_dict"  # torch's load_state_dict(strict=True)


def _cli_options(argv: Sequence[str] | None = None) -> dict[str, str]:
    """The ``--key value`` / ``--key=value`` options of the command line (``python -m monai.bundle ...``)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    options = {}
    for i, arg in enumerate(argv):
        if arg.startswith("--"):
            key, eq, value = arg[2:].partition("=")
            if not eq:
                value = argv[i + 1] if i + 1 < len(argv) and not argv[i + 1].startswith("--") else "True"
            options.setdefault(key, value)
    return options


def _config_files(options: Mapping[str, str]) -> list[Path]:
    """The files of ``--config_file`` (one, or a list as ``"['a.json','b.json']"``)."""
    value = options.get("config_file", "")
    return [Path(m) for m in re.findall(r"[^\s'\",\[\]]+\.(?:json|yaml|yml)", value)]


def _bundle_root_hint() -> str:
    """The ``--bundle_root`` to suggest: the bundle folder of the command line's config file, as typed."""
    for file in _config_files(_cli_options()):
        if file.parent.name == "configs" and _is_bundle(file.parent.parent):
            return str(file.parent.parent)
    return f"bundles/<name>{SUFFIX}"


def _weights_scale(ckpt: Path, bundle: Path, config: Path | None, skip: int, key: str = "") -> int | None:
    """The scale at which the bundle's ``network_def`` takes the weights in ``ckpt`` (``None``: none does)."""
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    state = state.get(key, state) if key else state
    state = state.get("state_dict", state)  # an mrsr weights file
    for scale in (2, 3, 4, 8):
        if scale == skip:
            continue
        try:
            network = _inference_parser(bundle, scale, config).get_parsed_content("network_def")
            network.load_state_dict(state)
        except Exception:  # noqa: BLE001 - any failure: not this scale
            continue
        return scale
    return None


def _weights_error(err: BaseException | None) -> str | None:
    """One line for a checkpoint that does not fit the network of a ``monai.bundle`` command (``ckpt_export``
    or ``run --ckpt_path``): the scale it fits, from the command line's arguments, and the ``--scale`` to pass."""
    seen = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, RuntimeError) and str(err).startswith(STATE_DICT_ERROR):
            break
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    else:
        return None
    options = _cli_options()
    detail = " ".join(str(err).split())
    detail = detail if len(detail) <= 160 else detail[:157] + "..."
    ckpt = options.get("ckpt_file") or options.get("ckpt_path")
    configs = _config_files(options)
    root = options.get("bundle_root")
    bundle = Path(root) if root and _is_bundle(Path(root)) else None
    if bundle is None and configs and _is_bundle(configs[0].parent.parent):
        bundle = configs[0].parent.parent
    try:
        built = int(options["scale"]) if "scale" in options else int(json.loads(configs[0].read_text())["scale"])
    except (LookupError, ValueError, OSError, TypeError):
        built = None
    what = f"The checkpoint {ckpt}" if ckpt else "The weights"
    at = f"scale {built}" if built else "its scale"
    if "scale" not in options and built:
        at += " (the config's default)"
    if ckpt and bundle is not None and built is not None and Path(ckpt).is_file():
        config = configs[0] if configs else None
        try:
            fits = _weights_scale(Path(ckpt), bundle, config, built, options.get("key_in_ckpt", ""))
        except Exception:  # noqa: BLE001 - the hint is a best effort; the line below still says what to do
            fits = None
        if fits is not None:
            return f"{what} is for scale {fits}, but the network was built for {at}: pass --scale {fits}."
    return (
        f"{what} does not fit the network built for {at} ({detail}); pass the --scale it was trained for, "
        "or weights of this bundle's network."
    )


def one_line_errors(traceback: bool = False) -> None:
    """End a bundle command that fails on bad input with one line, ``mrsr: error: ...``, not MONAI's traceback.

    The bundles' configs call this in their ``initialize`` step and when their ``network_def`` is built
    (its ``_requires_``: ``ckpt_export`` and ``onnx_export`` build only that): ``python -m monai.bundle``
    wraps every error of a config expression in RuntimeErrors and prints the whole chain, which buries the
    one-line message. The hook (``sys.excepthook``) prints the first :class:`MrsrError` or ``OSError``
    of an uncaught error's chain instead, and for weights that do not fit the network (x4 weights into
    the default x2 network) says which ``--scale`` they are for; the exit status stays non-zero (1).
    Other errors, and every error when ``traceback`` is true (``--traceback True`` on the command line),
    keep the full traceback.
    """
    if traceback or getattr(sys.excepthook, "mrsr_one_line", False):  # once per process
        return
    previous = sys.excepthook

    def hook(kind: type[BaseException], value: BaseException, tb: Any) -> None:
        cause = _user_error(value)
        try:
            line = str(cause) if cause is not None else _weights_error(value)
        except Exception:  # noqa: BLE001 - never lose the original error to a bug in the hint
            line = None
        if line is None:
            previous(kind, value, tb)
        else:
            print(f"mrsr: error: {line}", file=sys.stderr, flush=True)

    hook.mrsr_one_line = True  # type: ignore[attr-defined]
    sys.excepthook = hook


def _say(text: str) -> None:
    """A progress line of a bundle run: on stderr, flushed (a log file or a pipe gets it at once)."""
    print(text, file=sys.stderr, flush=True)


def held_out_pairs(
    manifest: str | os.PathLike, scale: int, section: str = "test", data_root: str | os.PathLike | None = None
) -> Iterator[tuple[str, dict[str, torch.Tensor]]]:
    """``(name, {"image": LR, "label": HR})`` for each volume of a manifest section, as the model cards score them.

    Each HR volume is normalised (:class:`~mrsr.transforms.RobustNormalize`), cropped in-plane to a
    multiple of ``scale`` and k-space truncated in-plane by ``scale`` (docs/CONVENTIONS.md; no window, no noise).

    Raises:
        MrsrError: the section is missing or empty.
    """
    from mrsr.data import LoadVolumed
    from mrsr.data.manifest import load_manifest
    from mrsr.engines.data import VolumePairDataset
    from mrsr.transforms import RobustNormalize

    entries = load_manifest(manifest, data_root, sections=(section,)).get(section) or []
    if not entries:
        raise MrsrError(f"The manifest {manifest} has no {section!r} volumes to evaluate on.")
    for entry in entries:
        hr = RobustNormalize()(LoadVolumed("image")(entry)["image"])  # the entry: a raw file's layout too
        yield entry.get("name") or Path(entry["image"]).name, VolumePairDataset([hr], scale)[0]


DC, ADAPT = " +dc", " +dc +adapt"  # a network's scored variants: data consistency, and test-time adaptation too
DO_NO_HARM_DB = 0.1  # a bundle's default output may lose at most this much to zerofill on any test image
TOO_SMALL = "too small"  # the adaptation choice of an image --adapt refuses (the default output is scored)


def score_methods(
    pair: dict[str, torch.Tensor],
    methods: dict[str, tuple[Any, int]],
    scale: int,
    device: str | torch.device = "cpu",
    adapt_steps: int = 0,
    amp: bool = False,
) -> Iterator[tuple[str, dict[str, Any], torch.Tensor]]:
    """Score every method on one held-out ``{"image": LR, "label": HR}`` pair.

    Baselines are scored as they are; each network as it is (``NAME``), with data consistency
    (``NAME +dc``: the default of ``mrsr infer`` and the bundles) and, when ``adapt_steps``, after
    test-time adaptation with data consistency (``NAME +dc +adapt``; the row carries the adaptation's
    choice and seconds; an image too small to adapt on is scored with the default output, choice
    ``"too small"``).

    Yields:
        ``(label, scores, sr)``: scores are :meth:`mrsr.metrics.EvaluationResult.as_dict` plus
        ``seconds`` (and ``psnr_amp`` for a plain network when ``amp``).
    """
    from mrsr.adapt import TooSmallToAdapt, adapt
    from mrsr.inference import super_resolve
    from mrsr.metrics import evaluate
    from mrsr.networks.baselines import is_trained_network

    for method, (predictor, channels) in methods.items():
        network = is_trained_network(predictor)

        def score(run: Any, consistent: bool) -> tuple[dict[str, Any], torch.Tensor]:
            start = time.perf_counter()
            sr = super_resolve(pair["image"], run, scale, slice_axis=2, in_channels=channels, device=device,
                               data_consistency=consistent)  # fmt: skip
            return {**evaluate(sr, pair["label"], border=scale).as_dict(), "seconds": time.perf_counter() - start}, sr

        scores, sr = score(predictor, False)
        if network and amp:  # what mixed precision costs
            amp_sr = super_resolve(pair["image"], predictor, scale, slice_axis=2, in_channels=channels, device=device,
                                   amp=True)  # fmt: skip
            scores["psnr_amp"] = evaluate(amp_sr, pair["label"], border=scale).psnr
        yield method, scores, sr
        if not network:
            continue
        default, default_sr = score(predictor, True)
        yield method + DC, default, default_sr
        if adapt_steps:
            try:
                result = adapt(predictor, pair["image"], scale, steps=adapt_steps, slice_axis=2,
                               in_channels=channels, device=device)  # fmt: skip
            except TooSmallToAdapt:  # `--adapt` refuses it: the user gets the default output
                yield method + ADAPT, {**default, "adapt_choice": TOO_SMALL, "adapt_seconds": 0.0}, default_sr
                continue
            scores, sr = score(result.predictor, result.data_consistency_applies)
            yield method + ADAPT, {**scores, "adapt_choice": result.choice, "adapt_seconds": result.seconds}, sr


def evaluate_bundle(
    bundle: str | os.PathLike,
    manifest: str | os.PathLike,
    scale: int = 2,
    section: str = "test",
    data_root: str | os.PathLike | None = None,
    device: str = "auto",
    output: str | os.PathLike | None = None,
    update_metadata: bool = False,
    adapt_steps: int = 0,
) -> dict[str, Any]:
    """Score a bundle's weights against zerofill and bicubic on a manifest section's HR volumes, per image.

    Each HR volume, degraded as :func:`held_out_pairs` says, is super-resolved slice by slice by the
    network (as it is, with data consistency, and after ``adapt_steps`` of test-time adaptation when
    given: :func:`score_methods`) and by both baselines; :func:`mrsr.metrics.evaluate` scores each
    against the HR volume (whole volume and foreground mask, ``scale`` border pixels cropped, the HR
    volume's data range).

    Args:
        bundle: bundle name or folder.
        manifest: a datalist JSON (``data_manifests/real_data.json`` for the model cards).
        scale: SR factor; the bundle must ship weights for it.
        section: manifest section of held-out volumes.
        data_root: folder the manifest's relative paths start from.
        device: where the network runs.
        output: optional JSON file for the results.
        update_metadata: write the per-image scores into the bundle's ``eval_metrics``.
        adapt_steps: test-time adaptation steps of the ``+dc +adapt`` variant (0: not scored).

    Returns:
        ``{"scale", "section", "volumes": {name: {method: scores}}, "mean": {method: scores}}``.
    """
    from mrsr.inference import resolve_device
    from mrsr.networks.baselines import Bicubic, ZeroFill

    path = find_bundle(bundle)
    network, in_channels = load_bundle_network(path, scale)
    methods = {
        path.name[: -len(SUFFIX)]: (network, in_channels),
        "zerofill": (ZeroFill(scale=scale), 1),
        "bicubic": (Bicubic(scale=scale), 1),
    }
    volumes: dict[str, dict[str, dict]] = {}
    for name, pair in held_out_pairs(manifest, scale, section, data_root):
        voxels = int(pair["label"].numel())
        volumes[name] = {
            label: {**scores, "voxels": voxels}
            for label, scores, _ in score_methods(pair, methods, scale, device, adapt_steps)
        }
        print(f"{name} (x{scale}): " + ", ".join(f"{m} {v['psnr']:.2f} dB" for m, v in volumes[name].items()),
              flush=True)  # fmt: skip
    labels = list(next(iter(volumes.values())))
    mean = {m: {k: float(np.mean([v[m][k] for v in volumes.values()])) for k in ("psnr", "ssim")} for m in labels}
    report = {
        "bundle": path.name,
        "scale": scale,
        "section": section,
        "manifest": str(manifest),
        "device": str(resolve_device(device)),
        "volumes": volumes,
        "mean": mean,
    }
    if output is not None:
        out = Path(output)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2, default=float) + "\n")
    if update_metadata:
        store_eval_metrics(path, report)
    return report


def store_eval_metrics(bundle: str | os.PathLike, report: dict[str, Any]) -> dict[str, Any]:
    """Write a report of :func:`evaluate_bundle` (or the same rows from ``mrsr benchmark``) into ``eval_metrics``.

    The report needs ``manifest``, ``section``, ``scale`` and ``volumes`` (``{image: {method: scores}}``),
    and either ``speed`` (text) or ``device`` and each network score's ``voxels`` and ``seconds``.

    ``psnr``/``ssim`` are the means of the default output (data consistency on); ``worst_margin`` is
    its smallest margin over zerofill on any image, and ``do_no_harm`` whether that stays above
    ``-DO_NO_HARM_DB``.

    Returns:
        The stored ``eval_metrics["x<scale>"]``.
    """
    path = find_bundle(bundle)
    meta_file = path / "configs" / "metadata.json"
    meta = json.loads(meta_file.read_text())
    net = path.name[: -len(SUFFIX)]
    keep = ("psnr", "ssim", "psnr_fg", "adapt_choice", "adapt_seconds")
    volumes = report["volumes"]
    scores = {
        name: {m: {k: (round(v, 4 if k == "ssim" else 3) if isinstance(v, float) else v) for k, v in s.items()
                   if k in keep} for m, s in methods.items()}
        for name, methods in volumes.items()
    }  # fmt: skip
    default = net + DC
    margins = {name: methods[default]["psnr"] - methods["zerofill"]["psnr"] for name, methods in volumes.items()}
    mean = {m: float(np.mean([v[m]["psnr"] for v in volumes.values()])) for m in (default, net, "zerofill", "bicubic")}
    speed = report.get("speed")
    if speed is None:  # on the largest volume (the first one also pays for warm-up)
        largest = max(volumes.values(), key=lambda v: v[net]["voxels"])[net]
        speed = f"{largest['voxels'] / largest['seconds'] / 1e6:.2f} output Mvoxel/s on {report['device']}"
    entry = {
        "data": f"{Path(report['manifest']).name} [{report['section']}]",
        "psnr": round(mean[default], 3),
        "ssim": round(float(np.mean([v[default]["ssim"] for v in volumes.values()])), 4),
        "psnr_without_data_consistency": round(mean[net], 3),
        "psnr_zerofill": round(mean["zerofill"], 3),
        "psnr_bicubic": round(mean["bicubic"], 3),
        "worst_margin": round(min(margins.values()), 3),
        "worst_image": min(margins, key=margins.get),
        "do_no_harm": bool(min(margins.values()) >= -DO_NO_HARM_DB),
        "volumes": scores,
        "speed": speed,
    }
    meta.setdefault("eval_metrics", {})[f"x{report['scale']}"] = entry
    write_text_atomic(meta_file, json.dumps(meta, indent=4) + "\n")
    return entry
