"""VGG19Features: torchvision's layout, weights loading (path, hub cache, errors), channels, frozen."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mrsr.errors import MrsrError
from mrsr.losses.vgg import VGG19_LAYERS, VGG19_URL, VGG19Features, find_vgg19_weights

# torchvision's vgg19().features: index of every conv and its (out, in) channels
TORCHVISION_CONVS = {
    0: (64, 3), 2: (64, 64), 5: (128, 64), 7: (128, 128),
    10: (256, 128), 12: (256, 256), 14: (256, 256), 16: (256, 256),
    19: (512, 256), 21: (512, 512), 23: (512, 512), 25: (512, 512),
    28: (512, 512), 30: (512, 512), 32: (512, 512), 34: (512, 512),
}  # fmt: skip


@pytest.fixture
def empty_hub(tmp_path, monkeypatch):
    """A torch hub directory without any weights."""
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    return tmp_path / "hub"


def torchvision_file(path, depth_layer: str = "relu3_1", prefix: str = "features."):
    """A random state dict in torchvision's layout (up to ``depth_layer``) with a classifier, saved to ``path``."""
    src = VGG19Features((depth_layer,), pretrained=False)
    state = {prefix + k: v.clone() for k, v in src.features.state_dict().items()}
    if prefix:
        state.update({"classifier.0.weight": torch.rand(4, 8), "classifier.0.bias": torch.rand(4)})
    torch.save(state, path)
    return src


def test_layer_names_follow_torchvision_indices():
    assert len(VGG19_LAYERS) == 37
    expected = {"conv1_1": 0, "relu1_1": 1, "relu1_2": 3, "pool1": 4, "relu2_2": 8, "relu3_4": 17, "relu4_1": 20}
    expected.update({"relu5_1": 29, "conv5_4": 34, "relu5_4": 35, "pool5": 36})
    assert {name: VGG19_LAYERS.index(name) for name in expected} == expected
    assert all(VGG19_LAYERS[i].startswith("conv") for i in TORCHVISION_CONVS)


def test_state_dict_has_torchvision_keys_and_shapes():
    vgg = VGG19Features(("pool5",), pretrained=False)
    state = vgg.state_dict()
    expected = {f"features.{i}.weight": (o, c, 3, 3) for i, (o, c) in TORCHVISION_CONVS.items()}
    expected.update({f"features.{i}.bias": (o,) for i, (o, _) in TORCHVISION_CONVS.items()})
    assert {k: tuple(v.shape) for k, v in state.items()} == expected  # no mean/std buffers either


def test_loads_a_torchvision_state_dict_and_drops_the_classifier(tmp_path):
    src = torchvision_file(tmp_path / "vgg19.pth")
    vgg = VGG19Features(("relu2_1", "relu3_1"), weights=tmp_path / "vgg19.pth")
    for a, b in zip(vgg.features.state_dict().values(), src.features.state_dict().values()):
        assert torch.equal(a, b)
    short = VGG19Features(("relu1_2",), weights=tmp_path / "vgg19.pth")  # truncated stack, same file
    assert len(short.features) == 4
    assert torch.equal(short.features[2].weight, src.features[2].weight)


def test_loads_a_features_only_state_dict(tmp_path):
    src = torchvision_file(tmp_path / "features.pth", "relu2_1", prefix="")
    vgg = VGG19Features(("relu2_1",), weights=tmp_path / "features.pth")
    assert torch.equal(vgg.features[5].weight, src.features[5].weight)


def test_finds_the_weights_in_the_hub_cache(empty_hub):
    assert find_vgg19_weights() is None
    (empty_hub / "checkpoints").mkdir(parents=True)
    torch.save({}, empty_hub / "checkpoints" / "vgg19_bn-c79401a0.pth")  # another network: ignored
    assert find_vgg19_weights() is None
    src = torchvision_file(empty_hub / "checkpoints" / "vgg19-dcbb9e9d.pth", "relu1_1")
    assert find_vgg19_weights() == empty_hub / "checkpoints" / "vgg19-dcbb9e9d.pth"
    vgg = VGG19Features(("relu1_1",))
    assert torch.equal(vgg.features[0].weight, src.features[0].weight)


def test_missing_weights_say_where_to_put_them(empty_hub):
    with pytest.raises(MrsrError) as info:
        VGG19Features()
    message = str(info.value)
    assert "\n" not in message
    assert VGG19_URL in message and str(empty_hub / "checkpoints") in message


def test_bad_weights_files_are_explained(tmp_path):
    with pytest.raises(MrsrError, match="No such VGG-19 weights file"):
        VGG19Features(weights=tmp_path / "missing.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a torch file")
    with pytest.raises(MrsrError, match="Cannot read VGG-19 weights"):
        VGG19Features(weights=tmp_path / "junk.pth")
    torch.save({"features.0.weight": torch.rand(64, 1, 3, 3), "features.0.bias": torch.rand(64)}, tmp_path / "x.pth")
    with pytest.raises(MrsrError, match="torchvision's layout"):
        VGG19Features(("relu1_1",), weights=tmp_path / "x.pth")
    with pytest.raises(ValueError, match="pretrained=False"):
        VGG19Features(weights=tmp_path / "x.pth", pretrained=False)


def test_frozen_and_always_in_eval_mode():
    vgg = VGG19Features(("relu2_1",), pretrained=False)
    parent = nn.ModuleDict({"vgg": vgg}).train()
    assert not vgg.training and not any(p.requires_grad for p in vgg.parameters())
    x = torch.rand(1, 1, 16, 16, requires_grad=True)
    vgg(x)["relu2_1"].sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in parent.parameters())


def test_grey_is_repeated_and_imagenet_normalised():
    vgg = VGG19Features(("conv1_1", "relu1_1"), pretrained=False)
    grey = torch.rand(2, 1, 8, 8)
    a, b = vgg(grey), vgg(grey.repeat(1, 3, 1, 1))
    assert torch.equal(a["relu1_1"], b["relu1_1"])
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1).expand(1, 3, 8, 8)
    conv = vgg(mean)["conv1_1"]  # a zero input after normalisation: the conv gives its bias
    torch.testing.assert_close(conv, vgg.features[0].bias.view(1, 64, 1, 1).expand_as(conv))
    with pytest.raises(ValueError, match="1 or 3"):
        vgg(torch.rand(1, 2, 8, 8))


def test_returns_requested_layers_and_stops_at_the_deepest():
    vgg = VGG19Features(("relu1_1", "relu3_1"), pretrained=False)
    assert len(vgg.features) == VGG19_LAYERS.index("relu3_1") + 1
    calls = []
    vgg.features[5].register_forward_hook(lambda *args: calls.append(1))  # conv2_1
    out = vgg(torch.rand(1, 1, 16, 16), ["relu1_2", "conv1_1"])
    assert list(out) == ["relu1_2", "conv1_1"] and not calls
    assert (out["conv1_1"] < 0).any()  # the conv output is not overwritten by its ReLU
    assert tuple(vgg(torch.rand(1, 1, 16, 16))["relu3_1"].shape) == (1, 256, 4, 4) and calls
    with pytest.raises(ValueError, match="lies deeper"):
        vgg(torch.rand(1, 1, 16, 16), ["relu4_1"])
    with pytest.raises(ValueError, match="unknown layers"):
        VGG19Features(("relu6_1",), pretrained=False)
