"""VGG perceptual, style and content losses: exact maths on small tensors, weights, gradients, frozen VGG."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from mrsr.errors import MrsrError
from mrsr.losses.perceptual import (
    MEDGAN_VGG_LAYERS,
    PixelPerceptualLoss,
    VGGContentLoss,
    VGGPerceptualLoss,
    VGGStyleLoss,
    gram_matrix,
)
from mrsr.losses.vgg import VGG19Features

LOSSES = [VGGPerceptualLoss, VGGStyleLoss, VGGContentLoss]


@pytest.fixture(scope="module")
def vgg():
    """A random VGG-19 up to relu2_1, shared by the losses of a test."""
    torch.manual_seed(0)
    return VGG19Features(("relu1_1", "relu1_2", "relu2_1"), pretrained=False)


def two_layers(cls, vgg, w1=1.0, w2=0.5):
    return cls({"relu1_2": w1, "relu2_1": w2}, vgg=vgg)


def test_gram_matrix_matches_a_hand_computation():
    v = torch.tensor([[[1.0, 2.0], [3.0, 4.0]], [[0.0, 1.0], [1.0, 0.0]]])[None]  # (1, d=2, h=2, w=2)
    expected = torch.tensor([[1 + 4 + 9 + 16, 0 + 2 + 3 + 0], [0 + 2 + 3 + 0, 0 + 1 + 1 + 0]]) / (2 * 2 * 2)
    torch.testing.assert_close(gram_matrix(v), expected[None])
    assert gram_matrix(torch.rand(3, 5, 4, 6, dtype=torch.bfloat16)).dtype == torch.float32


def test_style_loss_normalisation_by_hand(vgg):
    a, b = torch.rand(2, 3, 4, 5), torch.rand(2, 3, 4, 5)
    loss = VGGStyleLoss({"relu1_1": 2.0}, vgg=vgg).forward_features({"relu1_1": a}, {"relu1_1": b})
    per_sample = []
    for i in range(2):
        fa, fb = a[i].reshape(3, 20), b[i].reshape(3, 20)
        ga, gb = fa @ fa.T / (4 * 5 * 3), fb @ fb.T / (4 * 5 * 3)
        per_sample.append(((ga - gb) ** 2).sum() / (4 * 3**2))
    torch.testing.assert_close(loss, 2.0 * torch.stack(per_sample).mean())


def test_content_loss_normalisation_by_hand(vgg):
    a, b = torch.rand(2, 3, 4, 5), torch.rand(2, 3, 4, 5)
    loss = VGGContentLoss({"relu1_1": 3.0}, vgg=vgg).forward_features({"relu1_1": a}, {"relu1_1": b})
    per_sample = [((a[i] - b[i]) ** 2).sum() / (4 * 5 * 3) for i in range(2)]
    torch.testing.assert_close(loss, 3.0 * torch.stack(per_sample).mean())


@pytest.mark.parametrize("criterion", ["l1", "mse"])
def test_perceptual_loss_by_hand(vgg, criterion):
    loss = VGGPerceptualLoss({"relu1_1": 1.0, "relu2_1": 0.25}, criterion=criterion, vgg=vgg)
    x, y = torch.rand(2, 1, 16, 16), torch.rand(2, 1, 16, 16)
    fx, fy = vgg(x, ["relu1_1", "relu2_1"]), vgg(y, ["relu1_1", "relu2_1"])
    dist = F.l1_loss if criterion == "l1" else F.mse_loss
    expected = dist(fx["relu1_1"], fy["relu1_1"]) + 0.25 * dist(fx["relu2_1"], fy["relu2_1"])
    torch.testing.assert_close(loss(x, y), expected)


@pytest.mark.parametrize("cls", LOSSES, ids=lambda c: c.__name__)
def test_zero_for_identical_inputs(vgg, cls):
    x = torch.rand(2, 1, 16, 16)
    assert float(two_layers(cls, vgg)(x, x.clone())) == 0.0


@pytest.mark.parametrize("cls", LOSSES, ids=lambda c: c.__name__)
def test_weights_scale_the_terms(vgg, cls):
    x, y = torch.rand(2, 1, 16, 16), torch.rand(2, 1, 16, 16)
    first, second = cls({"relu1_2": 1.0}, vgg=vgg)(x, y), cls({"relu2_1": 1.0}, vgg=vgg)(x, y)
    assert first > 0 and second > 0
    torch.testing.assert_close(two_layers(cls, vgg, 3.0, 0.5)(x, y), 3.0 * first + 0.5 * second)


@pytest.mark.parametrize("cls", LOSSES, ids=lambda c: c.__name__)
def test_gradients_reach_the_prediction_not_the_vgg(vgg, cls):
    pred = torch.rand(2, 1, 16, 16, requires_grad=True)
    target = torch.rand(2, 1, 16, 16, requires_grad=True)
    two_layers(cls, vgg)(pred, target).backward()
    assert pred.grad is not None and pred.grad.abs().sum() > 0
    assert target.grad is None  # the target's features are computed without gradients
    assert all(p.grad is None and not p.requires_grad for p in vgg.parameters())


def test_three_channel_images(vgg):
    x, y = torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16)
    assert torch.isfinite(two_layers(VGGStyleLoss, vgg)(x, y))


def test_defaults_and_shared_vgg_checks(vgg, tmp_path, monkeypatch):
    deep = VGG19Features(("conv5_4",), pretrained=False)
    assert VGGPerceptualLoss(vgg=deep).layer_weights == {"conv5_4": 1.0}
    assert VGGStyleLoss(vgg=deep).layer_weights == MEDGAN_VGG_LAYERS == VGGContentLoss(vgg=deep).layer_weights
    with pytest.raises(ValueError, match="lies deeper"):
        VGGStyleLoss(vgg=vgg)  # relu5_1 is beyond this shallow VGG
    with pytest.raises(ValueError, match="empty"):
        VGGContentLoss({}, vgg=vgg)
    with pytest.raises(ValueError, match="criterion"):
        VGGPerceptualLoss(criterion="l2", vgg=deep)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.raises(MrsrError, match="VGG-19 ImageNet weights not found"):
        VGGPerceptualLoss()


def test_pixel_perceptual_loss_is_l1_plus_weighted_perceptual(vgg):
    perceptual = VGGPerceptualLoss({"relu2_1": 1.0}, vgg=vgg)
    loss = PixelPerceptualLoss(perceptual, perceptual_weight=0.1)
    x, y = torch.rand(2, 1, 16, 16, requires_grad=True), torch.rand(2, 1, 16, 16)
    total, terms = loss.forward_terms(x, y)
    torch.testing.assert_close(terms["pixel"], F.l1_loss(x, y).detach())
    torch.testing.assert_close(terms["perceptual"], perceptual(x, y).detach())
    torch.testing.assert_close(total, terms["pixel"] + 0.1 * terms["perceptual"])
    loss(x, y).backward()
    assert x.grad is not None
