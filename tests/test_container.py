"""The Dockerfile, built and run: ``benchmarks/container_check.sh`` (slow, minutes; needs podman or docker).

The check builds the image offline from a local base, runs ``mrsr demo``, ``mrsr infer --bundle`` (NIfTI and
DICOM), ``python -m monai.bundle run`` and ``mrsr selfsr`` in it and compares each output with the same command
run here. The fast tests below read the Dockerfile and ``.dockerignore`` for what the image promises.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = (ROOT / "Dockerfile").read_text()


def test_dockerfile_takes_a_base_runs_as_non_root_and_enters_mrsr():
    assert re.search(r"^ARG BASE=pytorch/pytorch:\S+cuda\S+$", DOCKERFILE, flags=re.M)
    assert re.search(r"^FROM \$\{BASE\}$", DOCKERFILE, flags=re.M)
    assert re.search(r"^USER mrsr$", DOCKERFILE, flags=re.M)
    assert 'ENTRYPOINT ["mrsr"]' in DOCKERFILE
    for label in ("title", "description", "licenses", "version", "revision", "base.name"):
        assert f"org.opencontainers.image.{label}=" in DOCKERFILE


def test_dockerignore_keeps_the_context_to_what_the_image_installs():
    lines = [ln for ln in (ROOT / ".dockerignore").read_text().splitlines() if ln and not ln.startswith("#")]
    assert lines[0] == "*"  # everything out, then what the Dockerfile copies back in
    included = {ln[1:].rstrip("/") for ln in lines if ln.startswith("!")}
    assert {"mrsr", "setup.cfg", "setup.py", "pyproject.toml", "bundles/*_mr_sr", "wheelhouse"} <= included
    copied = set(re.findall(r"/tmp/context/([\w.]+)", DOCKERFILE)) - {"wheelhouse"}
    assert copied <= {p.split("/")[0] for p in included}, copied - included


def _engine() -> str | None:
    return shutil.which("podman") or shutil.which("docker")


@pytest.mark.slow
@pytest.mark.skipif(_engine() is None, reason="neither podman nor docker is installed")
def test_container_check_passes():
    env = {**os.environ, "PYTHON": sys.executable}
    run = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "container_check.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert re.search(r"^container check: (\d+) passed, 0 failed$", run.stdout, flags=re.M)
    # every step ran in the container and was compared with the same command outside
    for output in ("demo/sr_zerofill.nii.gz", "t1_sr.nii.gz", "t1_sr_dicom", "bundle_run/", "t1_iso.nii.gz"):
        assert re.search(rf"^ok\s+{re.escape(output)}", run.stdout, flags=re.M), output
