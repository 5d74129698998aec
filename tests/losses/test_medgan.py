"""MedGAN losses with a small PatchDiscriminator and a random VGG-19: terms, gradients, conditioning."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mrsr.errors import MrsrError
from mrsr.losses.medgan import DiscriminatorPerceptualLoss, MedGANLoss
from mrsr.losses.vgg import VGG19Features
from mrsr.networks.medgan import PatchDiscriminator
from mrsr.transforms.resample import upsample_aligned

TERMS = {"adversarial", "perceptual", "style", "content", "pixel", "total"}


@pytest.fixture(scope="module")
def vgg():
    torch.manual_seed(0)
    return VGG19Features(pretrained=False)  # relu1_1 ... relu5_1, MedGAN's layers


def small_d(in_channels: int = 2) -> PatchDiscriminator:
    return PatchDiscriminator(**PatchDiscriminator.PRESETS["small"], in_channels=in_channels)


def batch(scale: int = 2, lr_channels: int = 1, size: int = 32):
    hr = torch.rand(2, 1, size, size)
    sr = torch.rand(2, 1, size, size, requires_grad=True)
    return sr, hr, torch.rand(2, lr_channels, size // scale, size // scale)


def test_discriminator_perceptual_loss_by_hand():
    fake = [torch.rand(2, 4, 8, 8), torch.rand(2, 8, 4, 4)]
    real = [torch.rand(2, 4, 8, 8), torch.rand(2, 8, 4, 4)]
    expected = 2.0 * (fake[0] - real[0]).abs().sum() / (2 * 4 * 8 * 8) + 0.5 * (fake[1] - real[1]).abs().mean()
    torch.testing.assert_close(DiscriminatorPerceptualLoss([2.0, 0.5])(fake, real), expected)
    torch.testing.assert_close(DiscriminatorPerceptualLoss()(fake, fake), torch.tensor(0.0))
    with pytest.raises(ValueError, match="2 layer weights for 1"):
        DiscriminatorPerceptualLoss([1.0, 1.0])(fake[:1], real[:1])


def test_generator_terms_finite_and_gradients_only_to_the_image(vgg):
    d = small_d()
    loss = MedGANLoss(d, vgg=vgg)
    sr, hr, lr = batch()
    total, terms = loss(lr, sr, hr)
    assert set(terms) == TERMS
    assert all(torch.isfinite(v) and v.ndim == 0 and not v.requires_grad for v in terms.values())
    assert all(terms[k] > 0 for k in ("perceptual", "style", "content", "pixel"))
    total.backward()
    assert sr.grad is not None and sr.grad.abs().sum() > 0
    assert all(p.grad is None for p in d.parameters())  # the generator step leaves the discriminator alone
    assert all(p.requires_grad for p in d.parameters())  # ... and gives its flags back
    assert all(p.grad is None for p in vgg.parameters())


def test_total_is_the_weighted_sum_of_the_terms(vgg):
    weights = {"adversarial": 0.5, "perceptual": 3.0, "style": 2.0, "content": 0.1, "pixel": 7.0}
    loss = MedGANLoss(small_d(), vgg=vgg, **{f"{k}_weight": v for k, v in weights.items()})
    sr, hr, lr = batch()
    total, terms = loss(lr, sr, hr)
    torch.testing.assert_close(total.detach(), sum(w * terms[k] for k, w in weights.items()))
    torch.testing.assert_close(terms["pixel"], F.l1_loss(sr, hr).detach())


def test_identical_images_have_no_reconstruction_terms(vgg):
    loss = MedGANLoss(small_d(), vgg=vgg)
    _, hr, lr = batch()
    _, terms = loss(lr, hr.clone(), hr)
    assert all(float(terms[k]) == 0.0 for k in ("perceptual", "style", "content", "pixel"))


def test_vgg_terms_off_build_no_vgg(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))  # no VGG-19 weights anywhere
    with pytest.raises(MrsrError, match="VGG-19 ImageNet weights not found"):
        MedGANLoss(small_d())
    loss = MedGANLoss(small_d(), style_weight=0.0, content_weight=0.0)
    assert not any(isinstance(m, VGG19Features) for m in loss.modules())
    sr, hr, lr = batch()
    total, terms = loss(lr, sr, hr)
    assert float(terms["style"]) == 0.0 == float(terms["content"])
    total.backward()
    only_style = MedGANLoss(small_d(), vgg=VGG19Features(("relu1_1",), pretrained=False), content_weight=0.0,
                            style_layer_weights={"relu1_1": 1.0})  # fmt: skip
    assert only_style.content is None and only_style.vgg_layers == ("relu1_1",)


def test_condition_is_the_interpolated_generator_input():
    sr, _, lr = batch(scale=4)
    torch.testing.assert_close(MedGANLoss(small_d(2), style_weight=0, content_weight=0).condition(lr, sr),
                               upsample_aligned(lr, 4))  # fmt: skip
    assert MedGANLoss(small_d(1), style_weight=0, content_weight=0).condition(None, sr) is None  # unconditional
    sr, _, lr3 = batch(scale=2, lr_channels=3)  # 2.5D input
    centre = MedGANLoss(small_d(2), style_weight=0, content_weight=0).condition(lr3, sr)
    torch.testing.assert_close(centre, upsample_aligned(lr3[:, 1:2], 2))
    assert MedGANLoss(small_d(4), style_weight=0, content_weight=0).condition(lr3, sr).shape == (2, 3, 32, 32)
    assert MedGANLoss(small_d(2), style_weight=0, content_weight=0).condition(sr.detach(), sr) is not None  # s = 1
    with pytest.raises(ValueError, match="pass the LR input"):
        MedGANLoss(small_d(2), style_weight=0, content_weight=0).condition(None, sr)
    with pytest.raises(ValueError, match="integer multiple"):
        MedGANLoss(small_d(2), style_weight=0, content_weight=0).condition(torch.rand(2, 1, 12, 12), sr)


class MeanDiscriminator(nn.Module):
    """A stub whose patch logits are 1 for intensity 0.9 ("real") and 0 for 0.1, to check the loss's direction."""

    in_channels = 1

    def features(self, x, condition=None):
        return [x]

    def forward_with_features(self, x, condition=None):
        return self(x), [x]

    def forward(self, x, condition=None):
        return (F.avg_pool2d(x, 4) - 0.1) / 0.8


@pytest.mark.parametrize("criterion", ["bce", "least_squares", "hinge"])
def test_discriminator_loss_low_when_it_tells_real_from_fake(criterion):
    loss = MedGANLoss(MeanDiscriminator(), style_weight=0, content_weight=0, criterion=criterion)
    bright, dark = torch.full((2, 1, 16, 16), 0.9), torch.full((2, 1, 16, 16), 0.1)
    right, right_terms = loss.discriminator_loss(None, dark, bright)
    wrong, _ = loss.discriminator_loss(None, bright, dark)
    assert right < wrong
    assert right_terms["real"] < loss.discriminator_loss(None, dark, dark)[1]["real"]
    # the generator's adversarial term falls as its output looks real to the discriminator
    assert loss(None, bright, bright)[1]["adversarial"] < loss(None, dark, bright)[1]["adversarial"]


def test_discriminator_loss_trains_the_discriminator_only():
    d = small_d()
    loss = MedGANLoss(d, style_weight=0, content_weight=0)
    sr, hr, lr = batch()
    total, terms = loss.discriminator_loss(lr, sr, hr)
    torch.testing.assert_close(total.detach(), 0.5 * (terms["real"] + terms["fake"]))
    total.backward()
    assert sr.grad is None  # the SR image is detached
    assert all(p.grad is not None for p in d.parameters())


def test_bf16_autocast(vgg):
    loss = MedGANLoss(small_d(), vgg=vgg)
    sr, hr, lr = batch()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        total, terms = loss(lr, sr, hr)
        d_total, _ = loss.discriminator_loss(lr, sr, hr)
    assert torch.isfinite(total) and torch.isfinite(d_total)
    assert all(torch.isfinite(v) for v in terms.values())
    total.backward()
    assert torch.isfinite(sr.grad).all()


def test_bad_weights_and_criterion():
    with pytest.raises(ValueError, match=">= 0"):
        MedGANLoss(small_d(), pixel_weight=-1.0, style_weight=0, content_weight=0)
    with pytest.raises(ValueError, match="criterion"):
        MedGANLoss(small_d(), criterion="wasserstein", style_weight=0, content_weight=0)


def test_discriminator_given_per_call_and_unwrapped(vgg):
    d = small_d()
    loss = MedGANLoss(vgg=vgg)  # the trainer owns the discriminator (possibly DDP-wrapped)
    assert not any(isinstance(m, PatchDiscriminator) for m in loss.modules())
    sr, hr, lr = batch()
    with pytest.raises(ValueError, match="no discriminator"):
        loss.generator_loss(lr, sr, hr)
    wrapped = nn.DataParallel(d.eval())  # on a CPU it calls the module; stands in for DistributedDataParallel
    total, _ = loss.generator_loss(lr, sr, hr, wrapped)  # eval: no power iteration, comparable passes
    torch.testing.assert_close(total, MedGANLoss(d, vgg=vgg).generator_loss(lr, sr, hr)[0])
    d_total, _ = loss.discriminator_loss(lr, sr, hr, wrapped)
    d_total.backward()
    assert all(p.grad is not None for p in d.parameters())
