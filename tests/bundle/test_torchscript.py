"""The TorchScript files every bundle ships (``models/model.ts``, ``models/model_x4.ts``; MONAI Deploy loads them):
the eager network's output on real slices, the shipped weights, and MONAI's checks.

``python bundles/make_bundles.py --torchscript`` writes them; ``--check`` reports a stale one.
"""

from __future__ import annotations

import functools
import json
import shutil
from pathlib import Path

import pytest
import torch
from monai.bundle import verify_net_in_out

from mrsr.bundle import bundle_scales, find_bundle, load_bundle_network, weights_path
from mrsr.data import load_volume, sample_path
from mrsr.transforms import RobustNormalize
from tests.bundle.conftest import BUNDLE_NAMES, REPO, load_script

CASES = [(name, scale) for name in BUNDLE_NAMES for scale in bundle_scales(name)]
# (top, left, height, width) of the crops of the T1 sample's 128 x 128 axial slices: odd and even sizes, brain inside
CROPS = ((40, 36, 37, 45), (30, 30, 48, 64))
SLICE = 31  # the middle of the sample's 62 axial slices
ATOL = 1e-5


def torchscript_file(name: str, scale: int) -> Path:
    return weights_path(name, scale).with_suffix(".ts")


@functools.lru_cache(maxsize=1)
def _normalised_sample() -> torch.Tensor:
    """The bundled T1 sample (128, 128, 62), normalised as the bundles' preprocessing does, clipped to [0, 1]."""
    return RobustNormalize()(load_volume(sample_path())).as_tensor()[0].clamp(0, 1)


def real_slices(in_channels: int, crop: tuple[int, int, int, int]) -> torch.Tensor:
    """A (1, in_channels, h, w) crop of the sample: ``in_channels`` adjacent axial slices around the middle one
    (2.5D networks take a slice with its neighbours)."""
    top, left, height, width = crop
    first = SLICE - in_channels // 2
    block = _normalised_sample()[top : top + height, left : left + width, first : first + in_channels]
    return block.permute(2, 0, 1)[None].contiguous()


@pytest.mark.parametrize(("name", "scale"), CASES)
def test_torchscript_gives_the_eager_output_on_real_slices(name, scale):
    exported = torch.jit.load(str(torchscript_file(name, scale)), map_location="cpu").eval()
    eager, in_channels = load_bundle_network(name, scale)
    for crop in CROPS:
        x = real_slices(in_channels, crop)
        with torch.no_grad():
            got, expected = exported(x), eager(x)
        assert got.shape == (1, 1, scale * crop[2], scale * crop[3])
        torch.testing.assert_close(got, expected, rtol=0, atol=ATOL)


@pytest.mark.parametrize(("name", "scale"), CASES)
def test_torchscript_holds_the_shipped_weights_and_its_scales_config(name, scale):
    """Weights retrained into the .pt file without a new export fail here (and `make_bundles.py --check`)."""
    extra = {"metadata.json": "", "inference.json": ""}
    exported = torch.jit.load(str(torchscript_file(name, scale)), map_location="cpu", _extra_files=extra)
    state = torch.load(weights_path(name, scale), map_location="cpu", weights_only=True)
    scripted = exported.state_dict()
    assert scripted.keys() == state.keys()
    assert all(torch.equal(scripted[k], state[k]) for k in state), f"{name} x{scale}: rerun make_bundles --torchscript"
    configs = find_bundle(name) / "configs"
    config, bundle_config = json.loads(extra["inference.json"]), json.loads((configs / "inference.json").read_text())
    assert config == {**bundle_config, "scale": scale}  # the bundle's inference config, at the file's scale
    meta, bundle_meta = json.loads(extra["metadata.json"]), json.loads((configs / "metadata.json").read_text())
    assert meta["network_data_format"] == bundle_meta["network_data_format"]


def test_check_reports_weights_without_their_torchscript(tmp_path, monkeypatch):
    """make_bundles.py's check names the scale whose .pt changed after the export, and a missing .ts."""
    monkeypatch.syspath_prepend(str(REPO / "bundles"))  # make_bundles imports model_card beside it
    stale_torchscript = load_script("make_bundles").stale_torchscript
    root = tmp_path / "msrn_mr_sr"
    shutil.copytree(find_bundle("msrn"), root, ignore=shutil.ignore_patterns("runs", "eval"))
    assert stale_torchscript(root) == []
    state = torch.load(root / "models" / "model.pt", weights_only=True)
    key = next(iter(state))
    state[key] = state[key] + 1e-3  # "retrained"
    torch.save(state, root / "models" / "model.pt")
    (root / "models" / "model_x4.ts").unlink()
    assert stale_torchscript(root) == [2, 4]


@pytest.mark.parametrize("scale", [2, 4])
def test_torchscript_verifies_with_monai(scale):
    """MONAI's verify_net_in_out on the TorchScript file itself (the metadata's channels and dtype)."""
    root = find_bundle("wasa")
    verify_net_in_out(
        net_id="network_def",
        meta_file=str(root / "configs" / "metadata.json"),
        config_file=str(root / "configs" / "inference.json"),
        device="cpu",
        any=24,
        bundle_root=str(root),
        scale=scale,
        network_def=f"$torch.jit.load({str(torchscript_file('wasa', scale))!r})",
    )
