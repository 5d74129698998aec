"""Network weights on disk: what was built, and its parameters, in one file.

An mrsr weights file is a dict saved with ``torch.save``::

    {"network": "msrn", "network_kwargs": {"scale": 2, "in_channels": 1, ...}, "state_dict": {...}}

:func:`load_network` also accepts a bare ``state_dict`` (then the name and constructor arguments
come from the caller). Files are always read with ``torch.load(..., weights_only=True)``
(:func:`read_weights`): a weights file cannot run code.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mrsr.errors import MrsrError
from mrsr.paths import atomic_path

__all__ = ["save_weights", "load_network", "read_weights"]

#: what to do instead of a file that holds Python objects (never ``weights_only=False``: it runs them)
SAVE_STATE_DICT = "save the state_dict only, e.g. torch.save(model.state_dict(), path)"


def save_weights(path: str | os.PathLike, network: nn.Module, name: str, network_kwargs: dict[str, Any]) -> Path:
    """Save ``network``'s weights with what rebuilds it, atomically.

    Args:
        path: the file to write.
        network: the module.
        name: its registry name (``mrsr.networks.available()``).
        network_kwargs: the constructor arguments that built it (preset expanded).
    """
    path = Path(path)
    state = {k: v.detach().cpu() for k, v in network.state_dict().items()}
    with atomic_path(path) as tmp:
        torch.save({"network": name, "network_kwargs": dict(network_kwargs), "state_dict": state}, tmp)
    return path


def read_weights(path: str | os.PathLike) -> Any:
    """``torch.load(path, map_location="cpu", weights_only=True)``, with mrsr's own one-line errors.

    PyTorch's own messages advise ``weights_only=False`` (which runs whatever code the file holds),
    carry terminal escape codes and span several lines; these say what the file is instead.

    Raises:
        MrsrError: a file that is not PyTorch weights, or one that holds Python objects.
    """
    path = Path(path)
    try:
        with warnings.catch_warnings():  # "Detected pickle protocol 4": the error below says it plainly
            warnings.filterwarnings("ignore", message=".*pickle protocol", category=UserWarning)
            return torch.load(path, map_location="cpu", weights_only=True)
    except MemoryError:
        raise
    except OSError as err:
        raise MrsrError(f"Cannot read weights {path}: {err.strerror or err}.") from None
    except Exception as err:  # arbitrary bytes make the unpickler raise anything, KeyError to RuntimeError
        raise MrsrError(f"Cannot read weights: {_what_it_is(path, err)}") from None


def _what_it_is(path: Path, err: Exception) -> str:
    """Why ``path`` is no weights file, from the weights-only unpickler's refusal and the file's first byte."""
    found = re.search(r"GLOBAL (\S+) was not an allowed global", str(err))
    if found:  # torch.save of a whole module, or of a dict with a config object beside the state_dict
        objects = f"holds Python objects ({found.group(1)}) that mrsr does not unpickle, for safety"
        return f"{path} {objects}; {SAVE_STATE_DICT}."
    with open(path, "rb") as f:
        pickled = f.read(1) == b"\x80"  # pickle's PROTO opcode: pickle.dump's format, not torch.save's zip
    if pickled:
        refusal = "is a Python pickle that is not PyTorch weights; mrsr does not unpickle it, for safety"
        return f"{path} {refusal}; {SAVE_STATE_DICT}."
    return f"{path} is not a PyTorch weights file (a state_dict or an mrsr weights file saved with torch.save)."


def _read(path: Path) -> dict:
    if not path.is_file():
        raise MrsrError(f"No such weights file: {path}")
    content = read_weights(path)
    if not isinstance(content, dict):
        raise MrsrError(f"{path} holds a {type(content).__name__}, not weights (a state_dict or an mrsr weights file).")
    return content


def load_network(
    path: str | os.PathLike, name: str | None = None, preset: str | None = None, **overrides: Any
) -> tuple[nn.Module, str, dict[str, Any]]:
    """Build a network and load its weights.

    Args:
        path: an mrsr weights file or a bare ``state_dict``.
        name: registry name; required for a bare state_dict, checked against an mrsr file.
        preset: preset for a bare state_dict (ignored when the file says how it was built).
        overrides: constructor arguments for a bare state_dict (e.g. ``scale``, ``in_channels``).

    Returns:
        (network in eval mode, its name, its constructor arguments).

    Raises:
        MrsrError: unreadable file, unknown or mismatched network, weights that do not fit.
    """
    from mrsr.networks import available, get_network

    path = Path(path)
    content = _read(path)
    if "state_dict" in content:
        file_name = content.get("network")
        if name is not None and file_name is not None and name.lower() != str(file_name).lower():
            raise MrsrError(
                f"{path} holds weights of {file_name!r}, not {name!r}; drop --network or pass the right file."
            )
        name = name or file_name
        kwargs = dict(content.get("network_kwargs", {}))
        for key, value in overrides.items():
            if key in kwargs and value is not None and kwargs[key] != value:
                raise MrsrError(f"{path} was trained with {key}={kwargs[key]!r}, not {value!r}.")
        state, preset = content["state_dict"], None
    else:
        state, kwargs = content, {k: v for k, v in overrides.items() if v is not None}
        if name is None:  # a bundle's models/model.pt, or a state_dict saved by hand
            raise MrsrError(f"{path} holds bare weights that do not name their network (a bundle's models/*.pt "
                            f"is such a file): give the network and its construction (mrsr infer --network NAME "
                            f"--scale S), or load the bundle.")  # fmt: skip
    if name is None or name.lower() not in available():
        raise MrsrError(f"Unknown network {name!r}; available: {', '.join(available())}.")
    try:
        network = get_network(name, preset=preset, **kwargs)
    except (TypeError, ValueError) as err:
        raise MrsrError(f"Cannot build {name!r} with {kwargs}: {err}") from None
    try:
        result = network.load_state_dict(state, strict=False)
        mismatch = bool(result.missing_keys or result.unexpected_keys)
    except RuntimeError:  # tensors of the wrong shape
        mismatch, result = True, None
    if mismatch:
        counts = (
            ""
            if result is None
            else f" ({len(result.missing_keys)} missing, {len(result.unexpected_keys)} unexpected tensors)"
        )
        raise MrsrError(
            f"The weights in {path} do not fit {name!r} built with {kwargs or 'its defaults'}{counts}; "
            "check --preset, --in-channels and --scale."
        )
    return network.eval(), name.lower(), kwargs
