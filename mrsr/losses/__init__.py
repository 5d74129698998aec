"""Training losses of the mrsr networks, and :func:`get_loss`, each network's default loss.

Modules:

- :mod:`~mrsr.losses.vgg`: :class:`VGG19Features`, a frozen VGG-19 feature extractor (torchvision's
  layout and weights file, no torchvision; weights from a path or the torch hub cache, never
  downloaded);
- :mod:`~mrsr.losses.perceptual`: :class:`VGGPerceptualLoss` (WASA), :class:`VGGStyleLoss` and
  :class:`VGGContentLoss` (MedGAN), :class:`PixelPerceptualLoss` (WASA's L1 + 0.1 x perceptual);
- :mod:`~mrsr.losses.medgan`: :class:`DiscriminatorPerceptualLoss` and :class:`MedGANLoss`
  (generator objective and discriminator loss, adversarial terms by MONAI's
  ``PatchAdversarialLoss``);
- :mod:`~mrsr.losses.multistage`: :class:`MultiStageLoss`, ICONet's per-stage supervision.

Default losses (:func:`get_loss`), chosen by the network's ``NetworkSpec.loss``:

===================  ====================  ===========================================================
``NetworkSpec.loss``  networks              loss
===================  ====================  ===========================================================
"l1"                 "durn", "msrn"        ``nn.L1Loss()`` (both papers train with L1)
"l1_perceptual"      "wasa"                ``nn.L1Loss()``; with VGG weights (``vgg_weights``/``vgg``)
                                           or ``perceptual_weight > 0``: :class:`PixelPerceptualLoss`,
                                           L1 + 0.1 x VGG perceptual (as WASA's reference)
"multistage"         "iconet"              :class:`MultiStageLoss` (all stages; a plain tensor: the
                                           final output)
"medgan"             "casnet" ("medgan")   :class:`MedGANLoss` (discriminator given here or to each call)
===================  ====================  ===========================================================
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

from torch import nn

from mrsr.errors import MrsrError
from mrsr.losses.medgan import DiscriminatorPerceptualLoss, MedGANLoss
from mrsr.losses.multistage import MultiStageLoss
from mrsr.losses.perceptual import (
    MEDGAN_VGG_LAYERS,
    PixelPerceptualLoss,
    VGGContentLoss,
    VGGPerceptualLoss,
    VGGStyleLoss,
    gram_matrix,
)
from mrsr.losses.vgg import VGG19_LAYERS, VGG19_URL, VGG19Features, find_vgg19_weights

__all__ = [
    "MEDGAN_VGG_LAYERS",
    "VGG19_LAYERS",
    "VGG19_URL",
    "DiscriminatorPerceptualLoss",
    "MedGANLoss",
    "MultiStageLoss",
    "PixelPerceptualLoss",
    "VGG19Features",
    "VGGContentLoss",
    "VGGPerceptualLoss",
    "VGGStyleLoss",
    "find_vgg19_weights",
    "get_loss",
    "gram_matrix",
]

_PERCEPTUAL_OPTIONS = ("perceptual_weight", "vgg_weights", "vgg", "layer_weights", "criterion")
_MULTISTAGE_OPTIONS = ("rec_weight", "criterion")


def _check_options(name: str, given: dict[str, Any], allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        raise MrsrError(f"The {name} loss has no option {', '.join(unknown)}; options: {', '.join(allowed) or 'none'}.")


def _l1_loss(name: str, options: dict[str, Any], scale: int | None, discriminator: Any) -> nn.Module:
    _check_options(name, options, ())
    return nn.L1Loss()


def _l1_perceptual_loss(name: str, options: dict[str, Any], scale: int | None, discriminator: Any) -> nn.Module:
    _check_options(name, options, _PERCEPTUAL_OPTIONS)
    weight = options.get("perceptual_weight")
    has_vgg = options.get("vgg_weights") is not None or options.get("vgg") is not None
    weight = (0.1 if has_vgg else 0.0) if weight is None else float(weight)
    if weight <= 0:
        return nn.L1Loss()
    perceptual = VGGPerceptualLoss(
        options.get("layer_weights"), options.get("criterion", "l1"), options.get("vgg"), options.get("vgg_weights")
    )
    return PixelPerceptualLoss(perceptual, weight)


def _multistage_loss(name: str, options: dict[str, Any], scale: int | None, discriminator: Any) -> nn.Module:
    _check_options(name, options, _MULTISTAGE_OPTIONS)
    return MultiStageLoss(scale, **options)


def _medgan_loss(name: str, options: dict[str, Any], scale: int | None, discriminator: Any) -> nn.Module:
    _check_options(name, options, tuple(inspect.signature(MedGANLoss).parameters)[1:])
    return MedGANLoss(None if isinstance(discriminator, Mapping) else discriminator, **options)


# NetworkSpec.loss -> builder(network name, options, scale, discriminator)
_BUILDERS: dict[str, Callable[[str, dict[str, Any], int | None, Any], nn.Module]] = {
    "l1": _l1_loss,
    "l1_perceptual": _l1_perceptual_loss,
    "multistage": _multistage_loss,
    "medgan": _medgan_loss,
}


def get_loss(
    network_name: str, *, scale: int | None = None, discriminator: nn.Module | Mapping | None = None, **weights: Any
) -> nn.Module:
    """The default training loss of a network (see the module docstring's table).

    Args:
        network_name: "durn", "msrn", "wasa", "iconet", "casnet" (alias "medgan"), case-insensitive.
        scale: the SR factor; checked by "iconet" (else taken from its number of stages), ignored
            by the others.
        discriminator: "casnet": the patch discriminator, or None to pass it to each call (a mapping,
            a training config's discriminator build options, counts as None); ignored by the others.
        weights: options of the chosen loss: "wasa": ``perceptual_weight`` (default 0.1 when
            ``vgg_weights`` or ``vgg`` is given, else 0), ``vgg_weights``, ``vgg``,
            ``layer_weights``, ``criterion``; "iconet": ``rec_weight``, ``criterion``; "casnet":
            the keyword arguments of :class:`MedGANLoss`; "durn"/"msrn": none.

    Returns:
        The loss module. "durn", "msrn", "wasa" and "iconet" losses are called ``loss(pred, hr)``
        (ICONet's with the dict of ``forward_stages`` or a tensor) and return a scalar;
        :class:`MedGANLoss` has ``generator_loss`` and ``discriminator_loss``, each returning
        ``(scalar, terms)``.

    Raises:
        MrsrError: unknown network or option; building a VGG term without VGG-19 weights (the
            message says where to put them; or set the VGG weights to 0).
    """
    from mrsr.networks import get_spec, specs

    try:
        spec = get_spec(network_name)
    except KeyError:
        spec = None
    if spec is None or spec.loss not in _BUILDERS:
        known = ", ".join(s.name for s in specs() if s.loss in _BUILDERS)
        raise MrsrError(f"No default loss for network {network_name!r}; known: {known}.")
    return _BUILDERS[spec.loss](spec.name, dict(weights), scale, discriminator)
