"""SR networks of mrsr and the name -> class registry.

One network per module (``durn``, ``wasa``, ``iconet``, ``msrn``, ``medgan``), shared blocks in
:mod:`mrsr.networks.blocks`. Every network takes ``spatial_dims=2``, ``in_channels`` (1 for 2D,
2k+1 for 2.5D), ``out_channels``, ``scale`` and maps an LR batch (B, C, h, w) in [0, 1] to
(B, out_channels, s*h, s*w).

Registry:

- :func:`get_network` builds a network by name, optionally from a named preset, with keyword
  overrides: ``get_network("msrn", preset="small", scale=2, in_channels=3)``.
- :func:`available` lists the registered names; :func:`get_network_class` returns a class;
  :func:`presets` a class's preset names.
- :func:`register` adds a class under a name (use as a decorator on a class defined anywhere, or
  call ``register("name", "module.path:ClassName")`` for a lazily imported one).

Preset convention (every network class follows it): the class has a ``PRESETS`` class attribute,
a ``dict[str, dict[str, Any]]`` mapping a preset name to constructor keyword arguments. Every class
has at least ``"default"`` (the paper's size; equal to the constructor defaults) and ``"small"``
(a CPU-trainable size: seconds per step on a 64x64 HR patch). Presets hold size parameters
only (features, blocks, levels ...), never ``scale``, ``in_channels`` or ``out_channels``, so the
caller's keyword arguments always complete or override them.

The built-in networks are imported lazily, on first use, so importing :mod:`mrsr.networks` is
cheap and a network module that fails to import does not break the others.

>>> "msrn" in available()
True
>>> net = get_network("msrn", preset="small", scale=2)
>>> tuple(net(torch.rand(1, 1, 8, 8)).shape)
(1, 1, 16, 16)
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import torch  # noqa: F401  (used by the doctest)
from torch import nn

__all__ = [
    "register",
    "get_network",
    "get_network_class",
    "available",
    "presets",
    "SR_NETWORKS",
    "AUXILIARY_NETWORKS",
    "DURN",
    "WASA",
    "ICONet",
    "MSRN",
    "CasNet",
    "PatchDiscriminator",
    "DataConsistent",
]

# name -> "module:Class" (lazy) or the class itself once registered / resolved
_REGISTRY: dict[str, str | type[nn.Module]] = {
    "durn": "mrsr.networks.durn:DURN",
    "wasa": "mrsr.networks.wasa:WASA",
    "iconet": "mrsr.networks.iconet:ICONet",
    "msrn": "mrsr.networks.msrn:MSRN",
    "casnet": "mrsr.networks.medgan:CasNet",
    "patch_discriminator": "mrsr.networks.medgan:PatchDiscriminator",
}

# other spellings accepted by get_network (not listed by available())
_ALIASES: dict[str, str] = {
    "medgan": "casnet",
    "patchgan": "patch_discriminator",
    "discriminator": "patch_discriminator",
}

#: the names that are super-resolution networks (LR in, SR out); the rest are auxiliary (discriminators)
SR_NETWORKS: tuple[str, ...] = ("durn", "wasa", "iconet", "msrn", "casnet")
#: registered networks that are not SR networks: built by name, not listed by :func:`available`
AUXILIARY_NETWORKS: tuple[str, ...] = ("patch_discriminator",)

# class name -> registry name, for ``from mrsr.networks import DURN``
_CLASS_NAMES: dict[str, str] = {
    "DURN": "durn",
    "WASA": "wasa",
    "ICONet": "iconet",
    "MSRN": "msrn",
    "CasNet": "casnet",
    "PatchDiscriminator": "patch_discriminator",
}


def _canonical(name: str) -> str:
    key = str(name).strip().lower().replace("-", "_")
    return _ALIASES.get(key, key)


def register(
    name: str, target: str | type[nn.Module] | None = None
) -> Callable[[type[nn.Module]], type[nn.Module]] | type[nn.Module]:
    """Register a network class under ``name``.

    As a decorator: ``@register("mynet")`` above a class. As a call: ``register("mynet", MyNet)``
    or ``register("mynet", "package.module:MyNet")`` (imported on first use). Re-registering a name
    replaces the previous entry.

    Args:
        name: registry name (case-insensitive; ``-`` and ``_`` are the same).
        target: the class, a ``"module:Class"`` string, or None for decorator use.

    Returns:
        The decorator (``target`` None) or the registered target.
    """
    key = _canonical(name)
    if target is not None:
        if not (isinstance(target, str) and ":" in target) and not isinstance(target, type):
            raise TypeError(f"register: target must be a class or a 'module:Class' string, got {target!r}.")
        _REGISTRY[key] = target
        return target

    def decorator(cls: type[nn.Module]) -> type[nn.Module]:
        _REGISTRY[key] = cls
        return cls

    return decorator


def available(include_auxiliary: bool = False) -> list[str]:
    """The registered super-resolution network names, in registration order.

    Auxiliary networks that are not SR networks (MedGAN's ``patch_discriminator``) are listed only
    with ``include_auxiliary=True``; networks users register are SR networks. Names whose module
    cannot be imported are still listed; :func:`get_network` then raises the import error.
    """
    return [name for name in _REGISTRY if include_auxiliary or name not in AUXILIARY_NETWORKS]


def get_network_class(name: str) -> type[nn.Module]:
    """The class registered under ``name`` (imported on first use).

    Raises:
        KeyError: unknown name (the message lists the known ones).
        ImportError: the module of a registered name cannot be imported.
    """
    key = _canonical(name)
    if key not in _REGISTRY:
        raise KeyError(f"Unknown network {name!r}; available: {', '.join(available(include_auxiliary=True))}.")
    target = _REGISTRY[key]
    if isinstance(target, str):
        module_name, _, cls_name = target.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as e:
            raise ImportError(
                f"Network {key!r} is registered as {target} but its module cannot be imported: {e}"
            ) from e
        target = getattr(module, cls_name)
        _REGISTRY[key] = target
    return target


def presets(name: str) -> dict[str, dict[str, Any]]:
    """The ``PRESETS`` dict of the network registered under ``name`` (a copy)."""
    cls = get_network_class(name)
    return {k: dict(v) for k, v in getattr(cls, "PRESETS", {}).items()}


def get_network(name: str, preset: str | None = None, **kwargs: Any) -> nn.Module:
    """Build the network registered under ``name``.

    Args:
        name: registry name (see :func:`available`), case-insensitive.
        preset: a key of the class's ``PRESETS`` (``"default"``: the paper's size, ``"small"``: a
            CPU-trainable size), or None for the constructor defaults.
        kwargs: constructor arguments; they override the preset's.

    Returns:
        The constructed ``nn.Module``.

    Raises:
        KeyError: unknown network name.
        ValueError: unknown preset, or invalid constructor arguments.
    """
    cls = get_network_class(name)
    params: dict[str, Any] = {}
    if preset is not None:
        table = getattr(cls, "PRESETS", {})
        if preset not in table:
            raise ValueError(
                f"Network {_canonical(name)!r} has no preset {preset!r}; presets: {', '.join(table) or 'none'}."
            )
        params.update(table[preset])
    params.update(kwargs)
    return cls(**params)


def __getattr__(attr: str) -> Any:
    """Lazy access to the network classes: ``from mrsr.networks import MSRN``."""
    if attr in _CLASS_NAMES:
        return get_network_class(_CLASS_NAMES[attr])
    if attr == "DataConsistent":
        from mrsr.networks.consistent import DataConsistent

        return DataConsistent
    raise AttributeError(f"module 'mrsr.networks' has no attribute {attr!r}")
