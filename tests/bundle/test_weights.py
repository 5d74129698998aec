"""mrsr.bundle.weights: the shipped weights of a scale, and trained weights installed only where they fit."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from mrsr.bundle import BUNDLES_ENV, find_bundle, install_weights, load_bundle_network, shipped_weights, weights_path
from mrsr.checkpoint import save_weights
from mrsr.errors import MrsrError


def test_shipped_weights_names_the_scales_there_are():
    assert shipped_weights("msrn", 4) == str(weights_path("msrn", 4))
    with pytest.raises(MrsrError, match=r"no weights for x3 \(it has: x2, x4\)"):
        shipped_weights("msrn", 3)


def test_install_weights_checks_the_fit(tmp_path, monkeypatch):
    shutil.copytree(find_bundle("msrn"), tmp_path / "msrn_mr_sr")
    monkeypatch.setenv(BUNDLES_ENV, str(tmp_path))
    network, in_channels = load_bundle_network("msrn", 2)
    kwargs = json.loads((tmp_path / "msrn_mr_sr" / "configs" / "inference.json").read_text())["network_def"]
    kwargs = {k: (2 if k == "scale" else v) for k, v in kwargs.items() if not k.startswith("_")}
    with torch.no_grad():
        for p in network.parameters():
            p.add_(0.01)
    save_weights(tmp_path / "w.pt", network, "msrn", kwargs)
    out = install_weights(tmp_path / "w.pt", "msrn", 2)
    loaded, _ = load_bundle_network("msrn", 2)
    for a, b in zip(loaded.state_dict().values(), network.state_dict().values()):
        torch.testing.assert_close(a, b)
    before = out.read_bytes()
    from mrsr.networks import MSRN

    save_weights(tmp_path / "other.pt", MSRN(features=8, num_blocks=1), "msrn", {"features": 8, "num_blocks": 1})
    with pytest.raises(MrsrError, match="features=8 \\(bundle: 16\\)"):
        install_weights(tmp_path / "other.pt", "msrn", 2)
    # same tensors, another residual: only the options tell
    save_weights(tmp_path / "cubic.pt", network, "msrn", {**kwargs, "global_residual": "cubic"})
    with pytest.raises(MrsrError, match="global_residual='cubic' \\(bundle: 'sinc_reflect'\\)"):
        install_weights(tmp_path / "cubic.pt", "msrn", 2)
    save_weights(tmp_path / "x4.pt", network, "msrn", kwargs)
    with pytest.raises(MrsrError, match="scale=2 \\(bundle: 4\\)"):
        install_weights(tmp_path / "x4.pt", "msrn", 4)
    assert out.read_bytes() == before  # the bundle keeps its weights


class Config:
    """Python state saved beside the weights: loading it needs weights_only=False."""


def test_unreadable_weights_are_explained_in_one_line(tmp_path):
    (tmp_path / "notes.txt").write_text("hello, these are not weights\n")
    network, _ = load_bundle_network("msrn", 2)
    torch.save({"model": network.state_dict(), "cfg": Config()}, tmp_path / "full.pt")
    for name, message in (("notes.txt", "is not a PyTorch weights file"), ("full.pt", "holds Python objects")):
        with pytest.raises(MrsrError) as refused:
            load_bundle_network("msrn", 2, weights=tmp_path / name)
        text = str(refused.value)
        assert message in text and len(text.splitlines()) == 1, text
        assert "weights_only" not in text and "\x1b" not in text


def test_bundle_detail_is_the_inference_configs_per_scale(tmp_path, monkeypatch):
    from mrsr.bundle import bundle_detail
    from mrsr.bundle.discovery import bundle_scales

    config = json.loads((find_bundle("msrn") / "configs" / "inference.json").read_text())
    for scale in bundle_scales("msrn"):
        assert bundle_detail("msrn", scale) == config["details"][str(scale)]
    shutil.copytree(find_bundle("msrn"), tmp_path / "msrn_mr_sr")
    monkeypatch.setenv(BUNDLES_ENV, str(tmp_path))
    path = tmp_path / "msrn_mr_sr" / "configs" / "inference.json"
    path.write_text(json.dumps({**config, "details": {"2": 0.125}}))
    assert bundle_detail("msrn", 2) == 0.125 and bundle_detail("msrn", 4) == 1.0  # a scale it names none for: all
    path.write_text(json.dumps({k: v for k, v in config.items() if k not in ("detail", "details")}))
    assert bundle_detail("msrn", 2) == 1.0  # a bundle written before detail existed
    path.write_text(json.dumps({**config, "details": {"2": 2}}))
    with pytest.raises(MrsrError, match="detail must be a number from 0"):
        bundle_detail("msrn", 2)
