"""mrsr.bundle.discovery: the search path, bundles by name, alias and folder; and what importing the package loads."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

import mrsr.bundle
from mrsr.bundle import BUNDLES_ENV, bundle_scales, find_bundle, list_bundles, load_bundle_network
from mrsr.errors import MrsrError
from tests.bundle.conftest import BUNDLE_NAMES, REPO


def test_every_bundle_is_found_by_name_alias_and_folder():
    assert [b.name for b in list_bundles()] == [f"{n}_mr_sr" for n in BUNDLE_NAMES]
    assert find_bundle("casnet") == find_bundle("MedGAN") == find_bundle("medgan_mr_sr")
    assert find_bundle(REPO / "bundles" / "msrn_mr_sr") == (REPO / "bundles" / "msrn_mr_sr").resolve()
    with pytest.raises(MrsrError, match="No bundle 'srgan'.*durn, iconet, medgan, msrn, wasa"):
        find_bundle("srgan")


def test_bundles_env_folders_come_first(tmp_path, monkeypatch):
    shutil.copytree(REPO / "bundles" / "msrn_mr_sr" / "configs", tmp_path / "msrn_mr_sr" / "configs")
    monkeypatch.setenv(BUNDLES_ENV, str(tmp_path))
    assert find_bundle("msrn") == tmp_path / "msrn_mr_sr"
    assert bundle_scales("msrn") == []  # that copy has no weights
    with pytest.raises(MrsrError, match="no weights for x2 \\(it has: none\\)"):
        load_bundle_network("msrn", 2)


def test_find_bundle_of_a_folder_that_is_no_bundle_names_bundle_root(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(MrsrError, match="--bundle_root bundles/<name>_mr_sr"):
        find_bundle(".")


def test_importing_the_package_loads_neither_torch_nor_monai():
    """Finding and listing bundles is cheap; the weights, errors and evaluation modules load on first use."""
    code = "import sys, mrsr.bundle as mb; mb.list_bundles(); print(sorted({'torch', 'monai'} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "[]"


def test_every_public_name_is_an_attribute_of_the_package():
    for name in mrsr.bundle.__all__:
        assert getattr(mrsr.bundle, name) is not None, name
    assert set(mrsr.bundle.__all__) <= set(dir(mrsr.bundle))
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        mrsr.bundle.nothing  # noqa: B018
