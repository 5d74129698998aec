"""A bundle's weights: the shipped file for a scale, its network built and loaded, trained weights installed.

The network is the bundle's own ``network_def`` (``configs/inference.json``) at the asked scale; weights
are plain state_dicts (``models/model.pt`` for x2, ``models/model_x<scale>.pt`` otherwise).
"""

from __future__ import annotations

import inspect
import os
from pathlib import Path
from typing import Any

from monai.bundle import ConfigParser
from torch import nn

from mrsr.bundle.discovery import bundle_scales, find_bundle, weights_path
from mrsr.checkpoint import read_weights
from mrsr.errors import MrsrError

__all__ = ["bundle_detail", "install_weights", "load_bundle_network", "shipped_weights"]


def shipped_weights(bundle: str | os.PathLike, scale: int = 2) -> str:
    """:func:`~mrsr.bundle.weights_path` of a bundle that ships weights for ``scale`` (the inference
    config's ``ckpt_path``).

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
    state = read_weights(file)  # weights_only=True, and mrsr's own message for a file it will not read
    try:
        network.load_state_dict(state)
    except (RuntimeError, AttributeError, TypeError) as err:  # other tensors, or not a state_dict at all
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise MrsrError(f"Cannot load {file} into the {path.name} network: {first}") from None
    return network.eval(), int(parser["network_def"]["in_channels"])


def bundle_detail(bundle: str | os.PathLike, scale: int = 2) -> float:
    """The share of its added detail a bundle keeps at ``scale`` (``detail`` in its ``inference.json``;
    :func:`mrsr.inference.super_resolve`); 1 for a bundle that sets none.

    Raises:
        MrsrError: unknown bundle, or a value outside [0, 1].
    """
    from mrsr.inference import check_detail

    parser = _inference_parser(find_bundle(bundle), scale)
    return check_detail(parser.get_parsed_content("detail") if "detail" in parser else 1.0)


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
