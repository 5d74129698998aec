"""A regular (non-editable) install of mrsr carries its MONAI bundles: a wheel, installed away from the source tree.

The wheel is built from a copy of the working tree (so no ``build/`` folder lands in the checkout) with the
running interpreter's setuptools (``--no-build-isolation``: offline), installed with ``pip install --target``
into a folder of its own, and imported from there with ``$MRSR_BUNDLES`` unset and the working directory
outside the repository, so that neither the editable install nor the source tree's ``bundles/`` can answer.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from importlib.metadata import version
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BUNDLE_NAMES = ("durn", "iconet", "medgan", "msrn", "wasa")
# what `git status --ignored` would leave out, and the repository's history and virtual environments
NOT_SOURCES = shutil.ignore_patterns(
    ".git", ".venv", "venv", "build", "dist", "*.egg-info", "__pycache__", "*.pyc", ".pytest_cache", "runs", "eval",
    "benchmark", "mrsr_demo",
)  # fmt: skip
CHECK = """
import json, sys
import mrsr, mrsr.bundle as mb
network, in_channels = mb.load_bundle_network("msrn", 2)
print(json.dumps({
    "mrsr": mrsr.__file__,
    "bundles": [str(b) for b in mb.list_bundles()],
    "scales": {b.name: mb.bundle_scales(b) for b in mb.list_bundles()},
    "weights": {b.name: mb.weights_path(b, 2).stat().st_size for b in mb.list_bundles()},
    "msrn": [type(network).__name__, in_channels],
}))
"""


def _run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600, **kwargs)
    assert result.returncode == 0, f"{' '.join(cmd)}\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="module")
def wheel_install(tmp_path_factory):
    """(the built wheel, the --target folder it is installed in)."""
    setuptools = tuple(int(p) for p in version("setuptools").split(".")[:2])
    if setuptools < (70, 1):  # bdist_wheel moved into setuptools in 70.1; the test extra asks for it
        pytest.fail(f"setuptools {version('setuptools')} cannot build wheels by itself: pip install -e '.[test]'")
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    shutil.copytree(REPO, src, ignore=NOT_SOURCES)
    junk = src / "bundles" / "msrn_mr_sr" / "runs" / "train_x2"  # a training run inside a bundle: not shipped
    junk.mkdir(parents=True)
    (junk / "model_best.pt").write_bytes(b"not for the wheel")
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--disable-pip-version-check",
          "-q", "-w", str(tmp / "dist"), str(src)])  # fmt: skip
    (wheel,) = (tmp / "dist").glob("mrsr-*.whl")
    site = tmp / "site"
    _run([sys.executable, "-m", "pip", "install", "--no-deps", "--disable-pip-version-check", "-q", "--target",
          str(site), str(wheel)])  # fmt: skip
    return wheel, site


def _isolated_env(site: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("MRSR_BUNDLES", "PYTHONPATH")}
    return {**env, "PYTHONPATH": str(site)}


def test_wheel_ships_each_bundles_configs_weights_card_and_license(wheel_install):
    wheel, _ = wheel_install
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in BUNDLE_NAMES:
        root = f"mrsr/bundles/{name}_mr_sr"
        files = ["LICENSE", "docs/README.md", "docs/data_license.txt", "models/model.pt", "models/model_x4.pt"]
        files += ["models/model.ts", "models/model_x4.ts"]  # TorchScript, for MONAI Deploy
        files += ["configs/logging.conf", "configs/datalist.json"]
        files += [f"configs/{f}.json" for f in ("metadata", "inference", "train", "evaluate", "multi_gpu_train")]
        expected = {f"{root}/{f}" for f in files}
        assert expected <= names, sorted(expected - names)
    assert not [n for n in names if "/runs/" in n or (n.endswith(".py") and n.startswith("mrsr/bundles/"))]
    assert not [n for n in names if n.startswith("bundles/")]  # inside the package, not a top-level folder


def test_installed_wheel_finds_and_loads_its_bundles(wheel_install, tmp_path):
    """What failed: after `pip install .` (not -e), `mrsr bundles` found none and `--bundle msrn` failed."""
    _, site = wheel_install
    env, site = _isolated_env(site), site.resolve()
    result = _run([sys.executable, "-c", CHECK], cwd=tmp_path, env=env)
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert Path(found["mrsr"]).resolve().is_relative_to(site)  # the wheel's copy, not the editable install
    assert [Path(b).name for b in found["bundles"]] == [f"{n}_mr_sr" for n in BUNDLE_NAMES]
    assert all(Path(b).is_relative_to(site / "mrsr" / "bundles") for b in found["bundles"])
    assert found["scales"] == {f"{n}_mr_sr": [2, 4] for n in BUNDLE_NAMES}
    for name in BUNDLE_NAMES:  # the weights themselves, not empty placeholders
        source = REPO / "bundles" / f"{name}_mr_sr" / "models" / "model.pt"
        assert found["weights"][f"{name}_mr_sr"] == source.stat().st_size
    assert found["msrn"] == ["MSRN", 1]
    # the command line lists them too
    listing = json.loads(_run([sys.executable, "-m", "mrsr", "bundles", "--json"], cwd=tmp_path, env=env).stdout)
    assert [row["bundle"] for row in listing] == list(BUNDLE_NAMES)
