"""setuptools build hook; the project's metadata and options are in setup.cfg.

The repository keeps the MONAI bundles at its top, ``bundles/<name>_mr_sr/`` (where ``python -m monai.bundle``
commands and the model cards point). A wheel carries them inside the package, as
``mrsr/bundles/<name>_mr_sr/`` (configs and datalist, weights and their TorchScript exports, model card, data
licences, LICENSE), where :func:`mrsr.bundle.bundle_search_path` finds them after a regular ``pip install .``
(also with ``--target``, ``--user`` or ``--prefix``: they go wherever the package goes). An editable install
reads the source tree's ``bundles/`` instead, so nothing is copied then. What training or inference leaves
inside a bundle (``runs/``, ``eval/``) and the scripts and recipes that write the bundles (``bundles/*.py``,
``bundles/recipes/``) are not shipped. MANIFEST.in puts the same files into the sdist, so a wheel built from it
carries them too.
"""

from __future__ import annotations

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
# the files of a bundle, relative to its folder
BUNDLE_FILES = ("LICENSE", "configs/*.json", "configs/*.conf", "models/*.pt", "models/*.ts", "docs/*.md", "docs/*.txt")
PACKAGED_AS = "mrsr/bundles"  # mrsr.bundle.PACKAGED_BUNDLES


def bundle_files(root: Path = HERE) -> list[tuple[Path, str]]:
    """``(source file, path inside the wheel)`` of every shipped file of every bundle under ``root/bundles``.

    No ``bundles/`` folder (a Docker build that copies it later) ships none.
    """
    out = []
    for bundle in sorted((root / "bundles").glob("*_mr_sr")):
        if not (bundle / "configs" / "inference.json").is_file():
            continue
        for pattern in BUNDLE_FILES:
            for file in sorted(bundle.glob(pattern)):
                if file.is_file():
                    out.append((file, f"{PACKAGED_AS}/{bundle.name}/{file.relative_to(bundle).as_posix()}"))
    return out


class build_py_with_bundles(build_py):
    """``build_py`` that also copies the bundles into the built package (not for editable installs)."""

    def _bundle_outputs(self) -> list[tuple[Path, Path]]:
        if getattr(self, "editable_mode", False):
            return []
        return [(src, Path(self.build_lib) / dest) for src, dest in bundle_files()]

    def run(self) -> None:
        super().run()
        for src, dest in self._bundle_outputs():
            self.mkpath(str(dest.parent))
            self.copy_file(str(src), str(dest), preserve_mode=False)

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        return [*super().get_outputs(include_bytecode), *(str(dest) for _, dest in self._bundle_outputs())]


setup(cmdclass={"build_py": build_py_with_bundles})
