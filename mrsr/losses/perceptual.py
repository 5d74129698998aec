"""Losses on VGG-19 features: perceptual (WASA), style and content (MedGAN), and WASA's L1 + perceptual.

All take the prediction and the target as (B, 1 or 3, H, W) images in [0, 1] and can share one
:class:`~mrsr.losses.vgg.VGG19Features` (pass it as ``vgg``; it must reach the deepest layer
used). The target's features are computed without gradients; gradients flow to the prediction
only, never into the frozen VGG.
"""

from __future__ import annotations

import abc
import os
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from mrsr.losses.vgg import VGG19Features

__all__ = [
    "MEDGAN_VGG_LAYERS",
    "PixelPerceptualLoss",
    "VGGContentLoss",
    "VGGPerceptualLoss",
    "VGGStyleLoss",
    "gram_matrix",
]

Features = dict[str, torch.Tensor]

#: MedGAN's style and content layers: the first layer of each of VGG-19's five blocks, weight 1
MEDGAN_VGG_LAYERS: dict[str, float] = {"relu1_1": 1.0, "relu2_1": 1.0, "relu3_1": 1.0, "relu4_1": 1.0, "relu5_1": 1.0}


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """MedGAN's Gram matrix ``Gr_{m,n} = 1 / (h w d) * sum_{h,w} V_{h,w,m} V_{h,w,n}``, in float32.

    Args:
        features: (B, d, h, w) feature maps.

    Returns:
        (B, d, d) Gram matrices.
    """
    b, d, h, w = features.shape
    flat = features.float().reshape(b, d, h * w)
    with torch.autocast(
        features.device.type, enabled=False
    ):  # fp16 sums of h*w products overflow, bf16 ones lose precision
        return torch.bmm(flat, flat.transpose(1, 2)) / (h * w * d)


class _VGGLoss(nn.Module, abc.ABC):
    """Shared part: per-layer weights, the (possibly shared) VGG, features of prediction and target."""

    default_layers: Mapping[str, float] = MEDGAN_VGG_LAYERS

    def __init__(
        self,
        layer_weights: Mapping[str, float] | None = None,
        vgg: VGG19Features | None = None,
        weights: str | os.PathLike | None = None,
    ) -> None:
        super().__init__()
        layer_weights = self.default_layers if layer_weights is None else layer_weights
        if not layer_weights:
            raise ValueError(f"{type(self).__name__}: layer_weights is empty.")
        self.layer_weights = {str(k): float(v) for k, v in layer_weights.items()}
        self.vgg = vgg if vgg is not None else VGG19Features(tuple(self.layer_weights), weights=weights)
        self.vgg.validate_layers(tuple(self.layer_weights))  # a shared VGG must reach these layers

    def features(self, pred: torch.Tensor, target: torch.Tensor) -> tuple[Features, Features]:
        """VGG features of ``pred`` (with gradients) and ``target`` (without) at this loss's layers."""
        layers = tuple(self.layer_weights)
        with torch.no_grad():
            target_features = self.vgg(target, layers)
        return self.vgg(pred, layers), target_features

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The loss of ``pred`` against ``target``, both (B, 1 or 3, H, W) in [0, 1]; a scalar."""
        return self.forward_features(*self.features(pred, target))

    def forward_features(self, pred_features: Features, target_features: Features) -> torch.Tensor:
        """The loss from precomputed features (``{layer: (B, C, H, W)}``; e.g. one VGG pass shared by losses)."""
        terms = [w * self.layer_loss(pred_features[k], target_features[k]) for k, w in self.layer_weights.items()]
        return sum(terms[1:], terms[0])  # sum(), not stack: terms may differ in dtype under autocast

    @abc.abstractmethod
    def layer_loss(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The unweighted loss of one layer's features, (B, C, H, W) each; a scalar."""


class VGGPerceptualLoss(_VGGLoss):
    """Perceptual loss: L1 (or MSE) between VGG-19 features of prediction and target, weighted per layer.

    ``sum_l w_l * mean |V_l(pred) - V_l(target)|`` (Johnson et al., ECCV 2016; Ledig et al., SRGAN,
    CVPR 2017). Default layer: ``conv5_4`` (the last conv before the fifth pooling, before its ReLU)
    with L1 (``vgg19().features[:35]``), as ESRGAN chose (Wang et al., ECCVW 2018: features before
    activation keep more signal than the sparse ReLU outputs). The input is ImageNet-normalised (what
    the VGG weights were trained on).

    Args:
        layer_weights: ``{layer: weight}``; default ``{"conv5_4": 1.0}``.
        criterion: "l1" or "mse" (mean over all elements of a layer).
        vgg: a shared :class:`VGG19Features` reaching the deepest layer; default: build one.
        weights: VGG-19 weights file when building (default: the torch hub cache).

    Shapes:
        pred, target (B, 1 or 3, H, W) -> scalar.
    """

    def __init__(
        self,
        layer_weights: Mapping[str, float] | None = None,
        criterion: str = "l1",
        vgg: VGG19Features | None = None,
        weights: str | os.PathLike | None = None,
    ) -> None:
        if criterion not in ("l1", "mse"):
            raise ValueError(f"VGGPerceptualLoss: criterion must be 'l1' or 'mse', got {criterion!r}.")
        super().__init__({"conv5_4": 1.0} if layer_weights is None else layer_weights, vgg, weights)
        self.criterion = criterion

    def layer_loss(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return (F.l1_loss if self.criterion == "l1" else F.mse_loss)(pred, target)


class VGGStyleLoss(_VGGLoss):
    """MedGAN's style loss: squared Frobenius distance of Gram matrices of VGG-19 features.

    ``L_style = sum_j lambda_sj / (4 d_j^2) * || Gr_j(pred) - Gr_j(target) ||_F^2``, with
    :func:`gram_matrix` ``Gr_j = V_j V_j^T / (h_j w_j d_j)`` (Armanious et al., MedGAN, CMIG 2020),
    averaged over the batch. Default: the first layer of each block (relu1_1 ... relu5_1,
    Gatys et al.'s style layers; the paper does not name the layer within a block), weights 1.

    Args:
        layer_weights: ``{layer: lambda_sj}``; default :data:`MEDGAN_VGG_LAYERS`.
        vgg: a shared :class:`VGG19Features`; default: build one.
        weights: VGG-19 weights file when building (default: the torch hub cache).

    Shapes:
        pred, target (B, 1 or 3, H, W) -> scalar.
    """

    def layer_loss(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        d = pred.shape[1]
        diff = gram_matrix(pred) - gram_matrix(target)
        return (diff.square().sum(dim=(1, 2)) / (4 * d * d)).mean()


class VGGContentLoss(_VGGLoss):
    """MedGAN's content loss: normalised squared distance of VGG-19 features.

    ``L_content = sum_j lambda_cj / (h_j w_j d_j) * || V_j(pred) - V_j(target) ||_F^2`` (MedGAN),
    averaged over the batch: the mean squared error of each layer. Default: the first layer of each
    block (relu1_1 ... relu5_1, where the MedGAN text puts lambda_cj), weights 1.

    Args:
        layer_weights: ``{layer: lambda_cj}``; default :data:`MEDGAN_VGG_LAYERS`.
        vgg: a shared :class:`VGG19Features`; default: build one.
        weights: VGG-19 weights file when building (default: the torch hub cache).

    Shapes:
        pred, target (B, 1 or 3, H, W) -> scalar.
    """

    def layer_loss(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(pred.float(), target.float())


class PixelPerceptualLoss(nn.Module):
    """WASA's training loss: ``L1(pred, target) + perceptual_weight * perceptual(pred, target)``.

    The WASA method trains with ``L = L1 + 0.1 * L_perc``, the VGG-19 perceptual loss of
    :class:`VGGPerceptualLoss`.

    Args:
        perceptual: the perceptual loss (default: a :class:`VGGPerceptualLoss` with its defaults).
        perceptual_weight: its weight (0.1).

    Shapes:
        pred, target (B, 1 or 3, H, W) -> scalar.
    """

    def __init__(self, perceptual: VGGPerceptualLoss | None = None, perceptual_weight: float = 0.1) -> None:
        super().__init__()
        self.perceptual = perceptual if perceptual is not None else VGGPerceptualLoss()
        self.perceptual_weight = float(perceptual_weight)

    def forward_terms(self, pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The total and its unweighted terms ``{"pixel", "perceptual"}`` (detached, for logging)."""
        pixel = F.l1_loss(pred, target)
        perceptual = self.perceptual(pred, target)
        total = pixel + self.perceptual_weight * perceptual
        return total, {"pixel": pixel.detach(), "perceptual": perceptual.detach()}

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.forward_terms(pred, target)[0]
