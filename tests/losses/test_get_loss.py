"""get_loss: each network's default training loss, and its options."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mrsr.errors import MrsrError
from mrsr.losses import (
    MedGANLoss,
    MultiStageLoss,
    PixelPerceptualLoss,
    VGG19Features,
    get_loss,
)
from mrsr.networks.medgan import PatchDiscriminator


@pytest.fixture
def no_hub_weights(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))


def test_l1_networks():
    for name in ("durn", "MSRN"):
        assert isinstance(get_loss(name), nn.L1Loss)
    with pytest.raises(MrsrError, match="has no option perceptual_weight"):
        get_loss("durn", perceptual_weight=0.1)


def test_wasa_adds_the_perceptual_term_only_with_a_vgg(tmp_path, no_hub_weights):
    assert isinstance(get_loss("wasa"), nn.L1Loss)
    assert isinstance(get_loss("wasa", perceptual_weight=0), nn.L1Loss)
    with pytest.raises(MrsrError, match="VGG-19 ImageNet weights not found"):
        get_loss("wasa", perceptual_weight=0.1)
    src = VGG19Features(("relu1_1",), pretrained=False)
    torch.save({f"features.{k}": v for k, v in src.features.state_dict().items()}, tmp_path / "vgg.pth")
    loss = get_loss("wasa", vgg_weights=tmp_path / "vgg.pth", layer_weights={"relu1_1": 1.0})
    assert isinstance(loss, PixelPerceptualLoss) and loss.perceptual_weight == 0.1
    assert torch.equal(loss.perceptual.vgg.features[0].weight, src.features[0].weight)
    shared = get_loss("wasa", vgg=src, layer_weights={"relu1_1": 1.0}, perceptual_weight=0.3)
    assert shared.perceptual.vgg is src and shared.perceptual_weight == 0.3
    x, y = torch.rand(1, 1, 8, 8), torch.rand(1, 1, 8, 8)
    assert shared(x, y) > 0


def test_iconet():
    loss = get_loss("iconet", scale=4, rec_weight=0.5)
    assert isinstance(loss, MultiStageLoss) and loss.scale == 4 and loss.rec_weight == 0.5
    assert get_loss("iconet").scale is None  # taken from the number of stages
    with pytest.raises(MrsrError, match="has no option perceptual_weight"):
        get_loss("iconet", perceptual_weight=0.1)


def test_casnet(no_hub_weights):
    d = PatchDiscriminator(**PatchDiscriminator.PRESETS["small"])
    loss = get_loss("medgan", discriminator=d, style_weight=0, content_weight=0, pixel_weight=5.0)
    assert isinstance(loss, MedGANLoss) and loss.discriminator is d and loss.weights["pixel"] == 5.0
    # a training config's discriminator build options are not a discriminator: passed to each call then
    loss = get_loss("casnet", discriminator={"features": 16}, style_weight=0, content_weight=0)
    assert loss.discriminator is None
    with pytest.raises(MrsrError, match="has no option lambda1"):
        get_loss("casnet", discriminator=d, lambda1=20)
    with pytest.raises(MrsrError, match="VGG-19 ImageNet weights not found"):
        get_loss("casnet", discriminator=d)


def test_unknown_network():
    with pytest.raises(MrsrError, match="No default loss"):
        get_loss("unet")
