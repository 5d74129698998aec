"""Fixtures of the engine tests: a small real-data manifest and a fast training config."""

from __future__ import annotations

import json

import pytest

from mrsr.engines import TrainConfig

# real scans that ship in packages (data_manifests/README.md): the bundled T1 head trains, nibabel's brain validates
TRAIN_IMAGE = "pkg:mrsr/data/sample_t1_head.nii.gz"
VAL_IMAGE = "pkg:nibabel/tests/data/anatomical.nii"


@pytest.fixture
def tiny_manifest(tmp_path):
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps({"training": [{"image": TRAIN_IMAGE}], "validation": [{"image": VAL_IMAGE}]}))
    return str(path)


def tiny_config(manifest: str, out, **kw) -> TrainConfig:
    """A run that takes seconds on a CPU: a narrow MSRN, 8 steps of 4 patches per epoch, 2 epochs."""
    options = dict(
        network="msrn", manifest=manifest, out=str(out), preset="small",
        network_kwargs={"features": 8, "num_blocks": 1}, patch_size=12, batch_size=4, samples_per_epoch=32,
        epochs=2, lr=1e-3, progress=False, device="cpu",
    )  # fmt: skip
    options.update(kw)
    return TrainConfig(**options)


@pytest.fixture
def make_config(tiny_manifest):
    """Factory: ``make_config(out, **overrides)`` -> a tiny :class:`TrainConfig` on the real-data manifest."""
    return lambda out, **kw: tiny_config(kw.pop("manifest", tiny_manifest), out, **kw)
