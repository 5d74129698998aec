"""MedGAN's losses (Armanious et al., CMIG 2020): discriminator perceptual, generator, discriminator.

The discriminator is a :class:`~mrsr.networks.medgan.PatchDiscriminator` (or anything with its
interface: ``in_channels``, ``forward(x, condition)``, ``features(x, condition)`` and
``forward_with_features(x, condition)``); the adversarial terms use MONAI's
:class:`monai.losses.PatchAdversarialLoss`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping, Sequence

import torch
import torch.nn.functional as F
from monai.losses import PatchAdversarialLoss
from torch import nn
from torch.nn.parallel import DataParallel, DistributedDataParallel
from torch.nn.utils import parametrize

from mrsr.losses.perceptual import MEDGAN_VGG_LAYERS, VGGContentLoss, VGGStyleLoss
from mrsr.losses.vgg import VGG19Features
from mrsr.networks.blocks import centre_channel
from mrsr.transforms.resample import upsample_aligned

__all__ = ["DiscriminatorPerceptualLoss", "MedGANLoss"]

Terms = dict[str, torch.Tensor]


class DiscriminatorPerceptualLoss(nn.Module):
    """MedGAN's perceptual loss: weighted L1 between the discriminator's hidden features of fake and real.

    ``L_perceptual = sum_i lambda_pi * P_i`` with ``P_i = 1 / (h_i w_i d_i) * || D_i(fake, y) - D_i(real, y) ||_1``
    (MedGAN), averaged over the batch: the mean absolute difference of each feature map. The
    real features are detached (they are the target).

    Args:
        layer_weights: ``lambda_pi`` per feature map, as many as the discriminator returns; default 1 each.

    Shapes:
        fake_features, real_features: sequences of (B, C_i, H_i, W_i) -> scalar.
    """

    def __init__(self, layer_weights: Sequence[float] | None = None) -> None:
        super().__init__()
        self.layer_weights = None if layer_weights is None else [float(w) for w in layer_weights]

    def forward(self, fake_features: Sequence[torch.Tensor], real_features: Sequence[torch.Tensor]) -> torch.Tensor:
        if len(fake_features) != len(real_features):
            raise ValueError(f"{len(fake_features)} fake but {len(real_features)} real feature maps.")
        weights = self.layer_weights or [1.0] * len(fake_features)
        if len(weights) != len(fake_features):
            raise ValueError(f"{len(weights)} layer weights for {len(fake_features)} discriminator feature maps.")
        terms = [w * F.l1_loss(f, r.detach()) for w, f, r in zip(weights, fake_features, real_features)]
        return sum(terms[1:], terms[0])


@contextlib.contextmanager
def _frozen(module: nn.Module) -> Iterator[None]:
    """Parameters of ``module`` do not require gradients inside (the graph built then has none for them)."""
    flags = [(p, p.requires_grad) for p in module.parameters()]
    try:
        for p, _ in flags:
            p.requires_grad_(False)
        yield
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)


class MedGANLoss(nn.Module):
    """MedGAN's generator objective (:meth:`generator_loss`, also ``forward``) and discriminator loss.

    Generator: ``w_adv * L_cGAN + lambda1 * L_perceptual + lambda2 * L_style + lambda3 * L_content
    + lambda_L1 * L1`` (MedGAN), with

    - ``L_cGAN``: :class:`monai.losses.PatchAdversarialLoss` of the discriminator's patch logits of
      the SR image (target "real"); criterion "bce", the log-likelihood of the cGAN objective.
    - ``L_perceptual``: :class:`DiscriminatorPerceptualLoss` of the discriminator's hidden features
      (SR vs HR, same condition).
    - ``L_style`` / ``L_content``: :class:`~mrsr.losses.perceptual.VGGStyleLoss` /
      :class:`~mrsr.losses.perceptual.VGGContentLoss` on one shared VGG-19 pass per image.
    - ``L1``: pixel L1 of SR against HR.

    Discriminator: ``0.5 * (L_adv(D(HR), real) + L_adv(D(SR), fake))`` (halved as in pix2pix, which
    slows the discriminator relative to the generator), SR detached.

    Defaults: ``lambda1 = 20``, ``lambda2 = lambda3 = 1e-4``, all per-layer weights 1, from the
    MedGAN paper's experimental setup, adversarial weight 1. The paper's
    perceptual sum runs over i = 0..L for L hidden layers; we read i = 0 as the discriminator's
    input, a pixel L1 (the condition channels cancel), and keep it as the separate ``pixel``
    term with ``lambda_L1 = lambda1 * lambda_p0 = 20``; the perceptual term covers the hidden
    layers only.

    Conditioning: the discriminator sees the image concatenated with the generator's input (the LR
    interpolated to the HR grid, :func:`~mrsr.transforms.resample.upsample_aligned`, cubic as
    CasNet) when its ``in_channels`` leave room for it: ``in_channels - C_img`` condition channels,
    all LR channels if that is their number, else the centre (super-resolved) LR channel when one;
    with ``in_channels == C_img`` it is unconditional and ``lr`` is not needed.

    VGG terms: a term with weight 0 is not computed; with ``style_weight == content_weight == 0`` no
    VGG is built. Otherwise ``vgg`` (a :class:`~mrsr.losses.vgg.VGG19Features` reaching the layers of
    the active terms, shared by both: one pass per image) or one
    built from ``vgg_weights`` / the torch hub cache; without weights that raises
    :class:`~mrsr.errors.MrsrError` (set both weights to 0 to train without them).

    Gradients: the generator objective back-propagates through the discriminator to the SR image
    but leaves no gradients in the discriminator's parameters (they are frozen while the graph is
    built); the frozen VGG gets none either. Within one call, all discriminator passes share one
    set of spectrally normalised weights (one power iteration per call), so the features of SR
    and HR are compared under the same normalisation.

    Args:
        discriminator: the (conditional) patch discriminator, registered as a submodule; or None and
            pass it to each call (e.g. a trainer's DDP-wrapped one).
        vgg: shared VGG-19 feature extractor for the style and content terms.
        vgg_weights: VGG-19 weights file, when ``vgg`` is not given.
        adversarial_weight: weight of ``L_cGAN`` (1).
        perceptual_weight: ``lambda1`` (20).
        style_weight: ``lambda2`` (1e-4).
        content_weight: ``lambda3`` (1e-4).
        pixel_weight: ``lambda_L1`` (20).
        perceptual_layer_weights: ``lambda_pi`` per discriminator feature map (default 1 each).
        style_layer_weights: ``{vgg layer: lambda_sj}`` (default relu1_1 ... relu5_1, 1 each).
        content_layer_weights: ``{vgg layer: lambda_cj}`` (default relu1_1 ... relu5_1, 1 each).
        criterion: adversarial criterion of PatchAdversarialLoss: "bce", "least_squares" or "hinge".
        interp_mode: interpolation of the LR to the HR grid for the condition.

    Calls: ``generator_loss(lr, sr, hr, discriminator=None)`` and ``discriminator_loss(lr, sr, hr,
    discriminator=None)``; ``discriminator`` overrides the one given at construction (a
    ``DistributedDataParallel`` / ``DataParallel`` wrapper is unwrapped where needed).

    Shapes:
        lr (B, C_lr, H / s, W / s) (or on the HR grid, s = 1; None for an unconditional
        discriminator); sr, hr (B, C_img, H, W) in [0, 1]. Both methods return
        ``(scalar loss, {term: detached scalar})``.
    """

    def __init__(
        self,
        discriminator: nn.Module | None = None,
        vgg: VGG19Features | None = None,
        vgg_weights: str | os.PathLike | None = None,
        adversarial_weight: float = 1.0,
        perceptual_weight: float = 20.0,
        style_weight: float = 1e-4,
        content_weight: float = 1e-4,
        pixel_weight: float = 20.0,
        perceptual_layer_weights: Sequence[float] | None = None,
        style_layer_weights: Mapping[str, float] | None = None,
        content_layer_weights: Mapping[str, float] | None = None,
        criterion: str = "bce",
        interp_mode: str = "cubic",
    ) -> None:
        super().__init__()
        self.discriminator = discriminator
        self.weights = {
            "adversarial": float(adversarial_weight),
            "perceptual": float(perceptual_weight),
            "style": float(style_weight),
            "content": float(content_weight),
            "pixel": float(pixel_weight),
        }
        if any(w < 0 for w in self.weights.values()):
            raise ValueError(f"MedGANLoss: loss weights must be >= 0, got {self.weights}.")
        self.adversarial = PatchAdversarialLoss(criterion=criterion)
        self.perceptual = DiscriminatorPerceptualLoss(perceptual_layer_weights)
        self.interp_mode = interp_mode
        self.style: VGGStyleLoss | None = None
        self.content: VGGContentLoss | None = None
        style_layers = dict(MEDGAN_VGG_LAYERS if style_layer_weights is None else style_layer_weights)
        content_layers = dict(MEDGAN_VGG_LAYERS if content_layer_weights is None else content_layer_weights)
        active = {**(style_layers if style_weight > 0 else {}), **(content_layers if content_weight > 0 else {})}
        self.vgg_layers = tuple(active)  # one VGG pass per image serves both terms
        if active:
            vgg = vgg if vgg is not None else VGG19Features(self.vgg_layers, weights=vgg_weights)
            if style_weight > 0:
                self.style = VGGStyleLoss(style_layers, vgg=vgg)
            if content_weight > 0:
                self.content = VGGContentLoss(content_layers, vgg=vgg)

    # --- discriminator ---

    def _discriminator(self, discriminator: nn.Module | None) -> tuple[nn.Module, nn.Module]:
        """(the discriminator to call, the bare module with ``in_channels`` / ``features``)."""
        d = discriminator if discriminator is not None else self.discriminator
        if d is None:
            raise ValueError("MedGANLoss has no discriminator: pass one at construction or to each call.")
        return d, d.module if isinstance(d, (DataParallel, DistributedDataParallel)) else d

    def condition(
        self, lr: torch.Tensor | None, sr: torch.Tensor, discriminator: nn.Module | None = None
    ) -> torch.Tensor | None:
        """The discriminator's condition for images like ``sr`` (B, C_img, H, W): None when unconditional.

        Returns:
            (B, in_channels - C_img, H, W): ``lr`` (or its centre channel) interpolated to the HR grid.
        """
        extra = int(self._discriminator(discriminator)[1].in_channels) - sr.shape[1]
        if extra <= 0:
            if extra < 0:
                raise ValueError(f"The discriminator takes {extra + sr.shape[1]} channels, fewer than the image's.")
            return None
        if lr is None:
            raise ValueError(f"The discriminator is conditional ({extra} condition channels): pass the LR input.")
        if lr.shape[1] != extra:
            if extra != 1:
                raise ValueError(f"The discriminator wants {extra} condition channels; the LR has {lr.shape[1]}.")
            lr = centre_channel(lr)
        scale = sr.shape[-1] // lr.shape[-1]
        if tuple(sr.shape[-2:]) != (scale * lr.shape[-2], scale * lr.shape[-1]):
            raise ValueError(f"SR size {tuple(sr.shape[-2:])} is not an integer multiple of LR {tuple(lr.shape[-2:])}.")
        lr = lr.detach().to(sr.dtype)
        return lr if scale == 1 else upsample_aligned(lr, scale, self.interp_mode)

    def _adversarial(self, logits: torch.Tensor, real: bool, for_discriminator: bool) -> torch.Tensor:
        # float32 and no autocast: MONAI's "bce" applies sigmoid + BCELoss, which CUDA autocast refuses
        with torch.autocast(logits.device.type, enabled=False):
            return self.adversarial(logits.float(), target_is_real=real, for_discriminator=for_discriminator)

    # --- objectives ---

    def generator_loss(
        self, lr: torch.Tensor | None, sr: torch.Tensor, hr: torch.Tensor, discriminator: nn.Module | None = None
    ) -> tuple[torch.Tensor, Terms]:
        """The generator objective of ``sr`` against ``hr``; ``lr``, the generator's input, gives the condition.

        The discriminator runs unwrapped (no DDP forward): its parameters get no gradients here.

        Returns:
            ``(total, terms)``; ``terms`` holds the unweighted, detached "adversarial", "perceptual",
            "style", "content" and "pixel" values (0 for terms that are off) and "total".
        """
        _, d = self._discriminator(discriminator)
        cond = self.condition(lr, sr, d)
        with _frozen(d), parametrize.cached():  # fake and real see the same spectrally normalised weights
            fake_logits, fake_features = d.forward_with_features(sr, cond)
            terms = {"adversarial": self._adversarial(fake_logits, True, False), "pixel": F.l1_loss(sr, hr)}
            if self.weights["perceptual"] > 0:
                with torch.no_grad():
                    real_features = d.features(hr, cond)
                terms["perceptual"] = self.perceptual(fake_features, real_features)
        terms.update(self._vgg_terms(sr, hr))
        total = sum(self.weights[k] * v for k, v in terms.items())
        out = {k: terms[k].detach() if k in terms else torch.zeros((), device=sr.device) for k in self.weights}
        return total, {**out, "total": total.detach()}

    def forward(
        self, lr: torch.Tensor | None, sr: torch.Tensor, hr: torch.Tensor, discriminator: nn.Module | None = None
    ) -> tuple[torch.Tensor, Terms]:
        """:meth:`generator_loss`."""
        return self.generator_loss(lr, sr, hr, discriminator)

    def _vgg_terms(self, sr: torch.Tensor, hr: torch.Tensor) -> Terms:
        if not self.vgg_layers:
            return {}
        vgg = (self.style if self.style is not None else self.content).vgg  # type: ignore[union-attr]
        sr_features = vgg(sr, self.vgg_layers)
        with torch.no_grad():
            hr_features = vgg(hr, self.vgg_layers)
        terms: Terms = {}
        if self.style is not None:
            terms["style"] = self.style.forward_features(sr_features, hr_features)
        if self.content is not None:
            terms["content"] = self.content.forward_features(sr_features, hr_features)
        return terms

    def discriminator_loss(
        self, lr: torch.Tensor | None, sr: torch.Tensor, hr: torch.Tensor, discriminator: nn.Module | None = None
    ) -> tuple[torch.Tensor, Terms]:
        """The discriminator's loss on real ``hr`` and fake ``sr`` (detached), in one batch through any DDP wrapper.

        The discriminator must treat samples independently (no batch norm; PatchDiscriminator has none).

        Returns:
            ``(loss, {"real", "fake", "total"})``: the adversarial loss of the real and the fake
            logits (detached) and the total ``0.5 * (real + fake)``.
        """
        d, _ = self._discriminator(discriminator)
        cond = self.condition(lr, sr, d)
        # one pass over real and fake: one DDP forward, one power iteration, the same weights for both
        both = torch.cat([hr.to(sr.dtype), sr.detach()])
        real_logits, fake_logits = d(both, None if cond is None else torch.cat([cond, cond])).chunk(2)
        real = self._adversarial(real_logits, True, True)
        fake = self._adversarial(fake_logits, False, True)
        total = 0.5 * (real + fake)
        return total, {"real": real.detach(), "fake": fake.detach(), "total": total.detach()}
