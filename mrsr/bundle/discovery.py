"""Where the bundles are: the search path, a bundle by name or folder, its metadata and the scales it ships.

Bundles are looked up in the folders of ``$MRSR_BUNDLES`` (``os.pathsep``-separated), then in the
installed package (``mrsr/bundles/``: a wheel carries them there, see setup.py), then in the source
tree's ``bundles/`` (an editable install or a checkout). Nothing here imports torch or MONAI.

>>> find_bundle("casnet").name  # a network's name finds its bundle
'medgan_mr_sr'
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mrsr.errors import MrsrError

__all__ = [
    "BUNDLES_ENV",
    "PACKAGED_BUNDLES",
    "SOURCE_BUNDLES",
    "SUFFIX",
    "bundle_scales",
    "bundle_search_path",
    "find_bundle",
    "list_bundles",
    "read_metadata",
    "weights_path",
]

BUNDLES_ENV = "MRSR_BUNDLES"
# a bundle's folder is <name>_mr_sr
SUFFIX = "_mr_sr"

_PACKAGE = Path(__file__).resolve().parents[1]  # mrsr/
# where a regular install (a wheel) has the bundles: setup.py copies bundles/<name>_mr_sr/ there
PACKAGED_BUNDLES = _PACKAGE / "bundles"
# the repository's own bundles: an editable install or a checkout
SOURCE_BUNDLES = _PACKAGE.parent / "bundles"


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


def _network_bundle(name: str) -> str:
    """The bundle of the network registered as ``name`` (``casnet`` or ``medgan`` -> ``medgan``), else ``name``.

    Asked only when no bundle has the name itself, so finding a bundle by its own name needs no torch.
    """
    from mrsr.networks import get_spec

    try:
        return get_spec(name).bundle or name
    except KeyError:
        return name


def find_bundle(name_or_path: str | os.PathLike) -> Path:
    """A bundle folder from a path or a name: ``msrn``, ``msrn_mr_sr``, ``medgan`` (or ``casnet``).

    Raises:
        MrsrError: no such bundle; the message lists the ones there are.
    """
    path = Path(name_or_path)
    if _is_bundle(path):
        return path.resolve()
    name = str(name_or_path).strip().lower()
    bundles = list_bundles()
    for candidate in (name, _network_bundle(name)):
        folder = candidate if candidate.endswith(SUFFIX) else candidate + SUFFIX
        for bundle in bundles:
            if bundle.name == folder:
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


def bundle_scales(bundle: str | os.PathLike) -> list[int]:
    """The scales a bundle ships weights for."""
    return [s for s in (2, 3, 4, 8) if weights_path(bundle, s).is_file()]


def read_metadata(bundle: str | os.PathLike) -> dict[str, Any]:
    """The bundle's ``configs/metadata.json`` as a dict."""
    return json.loads((find_bundle(bundle) / "configs" / "metadata.json").read_text())


# ------------------------------------------------------- the bundle a `python -m monai.bundle` command line names


def _cli_options(argv: Sequence[str] | None = None) -> dict[str, str]:
    """The ``--key value`` / ``--key=value`` options of the command line (``python -m monai.bundle ...``).

    >>> _cli_options(["run", "--scale", "4", "--amp", "--bundle_root=b"])
    {'scale': '4', 'amp': 'True', 'bundle_root': 'b'}
    """
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
    """The files of ``--config_file`` (one, or a list as ``"['a.json','b.json']"``).

    >>> [p.name for p in _config_files({"config_file": "['configs/train.json','configs/multi_gpu_train.json']"})]
    ['train.json', 'multi_gpu_train.json']
    """
    value = options.get("config_file", "")
    return [Path(m) for m in re.findall(r"[^\s'\",\[\]]+\.(?:json|yaml|yml)", value)]


def _bundle_root_hint() -> str:
    """The ``--bundle_root`` to suggest: the bundle folder of the command line's config file, as typed."""
    for file in _config_files(_cli_options()):
        if file.parent.name == "configs" and _is_bundle(file.parent.parent):
            return str(file.parent.parent)
    return f"bundles/<name>{SUFFIX}"
