"""Helpers of the dataset tests: the ``data_manifests/`` scripts as modules, empty files, a script's help."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[3] / "data_manifests"


def script(name: str):
    """A data_manifests/ script as a module (they are not a package)."""
    spec = importlib.util.spec_from_file_location(f"manifest_script_{name}", SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def script_help(name: str, capsys) -> str:
    """What ``data_manifests/NAME.py --help`` prints, whitespace collapsed; it exits with 0."""
    with pytest.raises(SystemExit) as ex:
        script(name).main(["--help"])
    assert ex.value.code == 0
    return " ".join(capsys.readouterr().out.split())
