"""VGG-19's convolutional stack as a frozen feature extractor for the perceptual, style and content losses.

The layers follow torchvision's ``vgg19().features`` index for index, so its ImageNet weights file
(``vgg19-dcbb9e9d.pth``, keys ``features.0.weight`` ...) loads without torchvision. Nothing is
downloaded: the weights come from an explicit path or the torch hub cache; random initialisation
(``pretrained=False``) is for tests.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from mrsr.errors import MrsrError

__all__ = ["VGG19_LAYERS", "VGG19_URL", "VGG19Features", "find_vgg19_weights"]

#: torchvision's ImageNet weights of VGG-19, for the user to fetch by hand
VGG19_URL = "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"

_BLOCKS = ((64, 2), (128, 2), (256, 4), (512, 4), (512, 4))  # (channels, convs) of the five blocks
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


def _layer_names() -> tuple[str, ...]:
    names: list[str] = []
    for b, (_, convs) in enumerate(_BLOCKS, start=1):
        for i in range(1, convs + 1):
            names += [f"conv{b}_{i}", f"relu{b}_{i}"]
        names.append(f"pool{b}")
    return tuple(names)


#: names of the 37 layers of ``features``, in torchvision's order (``features.0`` is "conv1_1")
VGG19_LAYERS: tuple[str, ...] = _layer_names()


def _build_layers(depth: int) -> list[nn.Module]:
    """The first ``depth`` layers of VGG-19's ``features``, torchvision's layout."""
    layers: list[nn.Module] = []
    c_in = 3
    for c_out, convs in _BLOCKS:
        for _ in range(convs):
            # non-inplace ReLU: a requested conv output must survive; autograd saves the ReLU output either way
            layers += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU()]
            c_in = c_out
        layers.append(nn.MaxPool2d(2, 2))
    return layers[:depth]


def find_vgg19_weights() -> Path | None:
    """The VGG-19 weights in the torch hub cache (``torch.hub.get_dir()/checkpoints/vgg19-*.pth``), if any."""
    found = sorted((Path(torch.hub.get_dir()) / "checkpoints").glob("vgg19-*.pth"))
    return found[0] if found else None


def _missing_weights_error() -> MrsrError:
    where = Path(torch.hub.get_dir()) / "checkpoints"
    return MrsrError(
        f"VGG-19 ImageNet weights not found: download {VGG19_URL} on a machine with internet and put it in "
        f'{where} (or pass its path: mrsr train --loss \'{{"vgg_weights": "PATH"}}\'), or turn the VGG terms off '
        "(MedGAN: style_weight and content_weight 0; WASA: perceptual_weight 0)."
    )


def _read_features_state(path: Path) -> dict[str, torch.Tensor]:
    """``features`` tensors of a VGG-19 state dict (full: ``classifier.*`` dropped; or features only)."""
    if not path.is_file():
        raise MrsrError(f"No such VGG-19 weights file: {path}")
    try:
        content = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise MrsrError(f"Cannot read VGG-19 weights {path}: not a (safe) PyTorch weights file ({first}).") from None
    if not isinstance(content, dict):
        raise MrsrError(f"{path} holds a {type(content).__name__}, not a VGG-19 state dict.")
    features = {k.removeprefix("features."): v for k, v in content.items() if k.startswith("features.")}
    return features or {k: v for k, v in content.items() if not k.startswith("classifier.")}


class VGG19Features(nn.Module):
    """Frozen VGG-19 feature extractor with torchvision's layer layout (no torchvision needed).

    Simonyan and Zisserman, "Very Deep Convolutional Networks for Large-Scale Image Recognition",
    ICLR 2015. ``features`` holds the first layers of torchvision's ``vgg19().features`` up to the
    deepest layer in ``layers`` (same indices, so ``features.N.weight`` of a torchvision state dict
    loads); the classifier is never built. Layer names: ``convB_I``, ``reluB_I`` (block B = 1..5,
    conv I = 1..2 in blocks 1-2, 1..4 in blocks 3-5) and ``poolB``; see :data:`VGG19_LAYERS`.

    Weights: ``weights`` (a file path), else the torch hub cache (:func:`find_vgg19_weights`), read
    with ``torch.load(..., weights_only=True)``; a full VGG-19 state dict (``classifier.*`` is
    dropped) or a features-only one (``features.N.*`` or ``N.*`` keys). Without a file,
    :class:`~mrsr.errors.MrsrError` says where to put it. ``pretrained=False``: random
    initialisation (He normal, as torchvision's), for tests.

    The module is frozen: its parameters never require gradients and it stays in eval mode
    (VGG's features have no dropout or batch norm; gradients still flow to the *input*).

    Input: intensities in [0, 1]; one channel is repeated to three (grey -> RGB), then the ImageNet
    mean and std normalise it, as the weights expect.

    Args:
        layers: the layers :meth:`forward` returns by default; the stack is built up to the deepest.
        weights: path of the weights file.
        pretrained: load ImageNet weights (``weights`` or the hub cache); False: random init.

    Shapes:
        input (B, 1 or 3, H, W); output ``{name: (B, C_name, H / 2**p, W / 2**p)}`` with p the
        number of pooling layers before ``name``.

    >>> vgg = VGG19Features(("relu1_2", "relu2_1"), pretrained=False)
    >>> {k: tuple(v.shape) for k, v in vgg(torch.rand(2, 1, 16, 16)).items()}
    {'relu1_2': (2, 64, 16, 16), 'relu2_1': (2, 128, 8, 8)}
    """

    def __init__(
        self,
        layers: Sequence[str] = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"),
        weights: str | os.PathLike | None = None,
        pretrained: bool = True,
    ) -> None:
        super().__init__()
        self.layers = self._check_layers(layers)
        if weights is not None and not pretrained:
            raise ValueError("VGG19Features: weights were given with pretrained=False; drop one of them.")
        depth = max(VGG19_LAYERS.index(name) for name in self.layers) + 1
        self.features = nn.Sequential(*_build_layers(depth))
        self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        if pretrained:
            path = Path(weights) if weights is not None else find_vgg19_weights()
            if path is None:
                raise _missing_weights_error()
            self.load_features(path)
        else:
            self._init_random()
        self.requires_grad_(False)
        self.eval()

    @staticmethod
    def _check_layers(layers: Sequence[str]) -> tuple[str, ...]:
        if isinstance(layers, str):
            layers = (layers,)
        unknown = [name for name in layers if name not in VGG19_LAYERS]
        if unknown or not layers:
            raise ValueError(
                f"VGG19Features: unknown layers {unknown or '(none given)'}; valid: {', '.join(VGG19_LAYERS)}."
            )
        return tuple(dict.fromkeys(layers))  # unique, in the caller's order

    def _init_random(self) -> None:
        for m in self.features:
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)

    def load_features(self, path: str | os.PathLike) -> None:
        """Load the ``features`` weights of a VGG-19 state dict file (see the class docstring).

        Raises:
            MrsrError: unreadable file, or tensors missing or of the wrong shape (not VGG-19).
        """
        path = Path(path)
        state = _read_features_state(path)
        own = self.features.state_dict()
        bad = [k for k, v in own.items() if k not in state or tuple(state[k].shape) != tuple(v.shape)]
        if bad:
            raise MrsrError(
                f"{path} does not hold VGG-19 weights in torchvision's layout ({len(bad)} tensors missing or of "
                f"the wrong shape, first: features.{bad[0]}); use {VGG19_URL}."
            )
        self.features.load_state_dict({k: state[k] for k in own})

    def train(self, mode: bool = True) -> VGG19Features:
        """Stay in eval mode: the extractor is frozen (``train()`` of a parent module is a no-op here)."""
        return super().train(False)

    def _normalise(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] not in (1, 3):
            raise ValueError(f"VGG19Features expects (B, 1 or 3, H, W) images in [0, 1], got shape {tuple(x.shape)}.")
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        return (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)

    def validate_layers(self, layers: Sequence[str]) -> tuple[str, ...]:
        """``layers`` as a tuple of unique names, checked to lie within the built stack.

        Raises:
            ValueError: an unknown layer, or one deeper than this instance was built.
        """
        names = self._check_layers(layers)
        deepest = max(names, key=VGG19_LAYERS.index)
        if VGG19_LAYERS.index(deepest) >= len(self.features):
            raise ValueError(
                f"VGG19Features was built up to {VGG19_LAYERS[len(self.features) - 1]}; {deepest} lies deeper "
                "(build it with the deepest layer you need)."
            )
        return names

    def forward(self, x: torch.Tensor, layers: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        """Feature maps of ``x`` (B, 1 or 3, H, W) at ``layers`` (default: those given at construction).

        The forward stops at the deepest requested layer, which must lie within the built stack.

        Returns:
            ``{name: (B, C, H', W')}`` in the order of ``layers``.
        """
        names = self.layers if layers is None else self.validate_layers(layers)
        stop = max(VGG19_LAYERS.index(name) for name in names)
        wanted = set(names)
        found: dict[str, torch.Tensor] = {}
        h = self._normalise(x)
        for name, layer in zip(VGG19_LAYERS[: stop + 1], self.features):
            h = layer(h)
            if name in wanted:
                found[name] = h
        return {name: found[name] for name in names}
