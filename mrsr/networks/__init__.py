"""SR networks of mrsr and their registry of :class:`NetworkSpec` records.

One network per module (``durn``, ``wasa``, ``iconet``, ``msrn``, ``medgan``), shared blocks in
:mod:`mrsr.networks.blocks`. Every network takes ``spatial_dims=2``, ``in_channels`` (1 for 2D,
2k+1 for 2.5D), ``out_channels``, ``scale`` and maps an LR batch (B, C, h, w) in [0, 1] to
(B, out_channels, s*h, s*w).

Registry (one :class:`NetworkSpec` per network, registered at the end of the network's own module:
its class, aliases, training loss and step, bundle name):

- :func:`get_spec` returns a network's spec; :func:`specs` lists them.
- :func:`get_network` builds a network by name, optionally from a named preset, with keyword
  overrides: ``get_network("msrn", preset="small", scale=2, in_channels=3)``.
- :func:`available` lists the registered names; :func:`get_network_class` returns a class;
  :func:`presets` a class's preset names.
- :func:`register` adds a spec, or a class under a name (use as a decorator on a class defined
  anywhere, or call ``register("name", "module.path:ClassName")`` for a lazily imported one).

Preset convention (every network class follows it): the class has a ``PRESETS`` class attribute,
a ``dict[str, dict[str, Any]]`` mapping a preset name to constructor keyword arguments. Every class
has at least ``"default"`` (the paper's size; equal to the constructor defaults) and ``"small"``
(a CPU-trainable size: seconds per step on a 64x64 HR patch). Presets hold size parameters
only (features, blocks, levels ...), never ``scale``, ``in_channels`` or ``out_channels``, so the
caller's keyword arguments always complete or override them.

The built-in network modules are imported on first use of the registry, so importing
:mod:`mrsr.networks` is cheap; a module that fails to import does not break the others (its
networks are missing, and asking for an unknown name says which module failed and why).

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

from mrsr.errors import MrsrError
from mrsr.networks.spec import LOSS_KINDS, NetworkSpec


class UnknownNetworkError(MrsrError, KeyError):
    """A network name the registry does not know: a user's error (:class:`MrsrError`), and a ``KeyError`` as the
    registry's lookups have always raised."""

    __str__ = Exception.__str__  # the message as it is, not quoted as KeyError's

__all__ = [
    "NetworkSpec",
    "LOSS_KINDS",
    "get_spec",
    "specs",
    "register",
    "unregister",
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
    "BASELINES",
    "get_baseline",
    "is_baseline",
]

# the built-in network modules: each registers its NetworkSpec(s) when imported (on first use of the registry)
_BUILTIN_MODULES = ("durn", "wasa", "iconet", "msrn", "medgan")
_SPECS: dict[str, NetworkSpec] = {}  # registry name -> spec, in registration order
_ALIASES: dict[str, str] = {}  # other spelling -> registry name
_CLASSES: dict[str, type[nn.Module]] = {}  # registry name -> class, once imported
_builtins_loaded = False
_BROKEN: dict[str, str] = {}  # built-in module -> why it failed to import


def _key(name: str) -> str:
    return str(name).strip().lower().replace("-", "_")


def _load_builtins() -> None:
    global _builtins_loaded
    if _builtins_loaded:
        return
    _builtins_loaded = True  # set first: the modules call register() while they import
    for module in _BUILTIN_MODULES:
        try:
            importlib.import_module(f"{__name__}.{module}")
        except ImportError as err:
            _BROKEN[module] = str(err)


def register(
    name: str | NetworkSpec, target: str | type[nn.Module] | None = None
) -> Callable[[type[nn.Module]], type[nn.Module]] | type[nn.Module] | NetworkSpec:
    """Register a network: a :class:`NetworkSpec`, or a class under a name.

    ``register(NetworkSpec(...))`` is how each built-in network module registers itself. For a
    network of your own: ``@register("mynet")`` above a class, ``register("mynet", MyNet)`` or
    ``register("mynet", "package.module:MyNet")`` (imported on first use): an SR network trained
    with L1. Re-registering a name replaces the previous entry.

    Args:
        name: a spec, or a registry name (case-insensitive; ``-`` and ``_`` are the same).
        target: the class, a ``"module:Class"`` string, or None for decorator use.

    Returns:
        The spec, the decorator (``target`` None) or the registered target.
    """
    _load_builtins()
    if isinstance(name, NetworkSpec):
        return _add(name)
    if target is not None:
        _add(NetworkSpec(_key(name), target))
        return target

    def decorator(cls: type[nn.Module]) -> type[nn.Module]:
        _add(NetworkSpec(_key(name), cls))
        return cls

    return decorator


def _add(spec: NetworkSpec) -> NetworkSpec:
    key = _key(spec.name)
    _SPECS[key] = spec
    _CLASSES.pop(key, None)
    for alias in spec.aliases:
        _ALIASES[_key(alias)] = key
    return spec


def unregister(name: str) -> None:
    """Remove a network (and its aliases) from the registry; unknown names are ignored."""
    _load_builtins()
    key = _canonical(name)
    _SPECS.pop(key, None)
    _CLASSES.pop(key, None)
    for alias in [a for a, k in _ALIASES.items() if k == key]:
        del _ALIASES[alias]


def _canonical(name: str) -> str:
    key = _key(name)
    return _ALIASES.get(key, key)


def get_spec(name: str) -> NetworkSpec:
    """The :class:`NetworkSpec` registered under ``name`` or one of its aliases.

    Raises:
        KeyError: unknown name (the message lists the known ones).
    """
    _load_builtins()
    key = _canonical(name)
    if key not in _SPECS:
        broken = "".join(f" (module {m} failed to import: {why})" for m, why in _BROKEN.items())
        known = ", ".join(available(include_auxiliary=True))
        raise UnknownNetworkError(f"Unknown network {name!r}; available: {known}.{broken}")
    return _SPECS[key]


def specs(include_auxiliary: bool = False) -> list[NetworkSpec]:
    """The registered specs in registration order (SR networks only, unless ``include_auxiliary``)."""
    _load_builtins()
    return [s for s in _SPECS.values() if include_auxiliary or s.super_resolution]


def available(include_auxiliary: bool = False) -> list[str]:
    """The registered super-resolution network names, in registration order.

    Auxiliary networks that are not SR networks (MedGAN's ``patch_discriminator``) are listed only
    with ``include_auxiliary=True``; networks registered by name are SR networks. Names whose module
    cannot be imported are still listed; :func:`get_network` then raises the import error.
    """
    return [s.name for s in specs(include_auxiliary)]


def get_network_class(name: str) -> type[nn.Module]:
    """The class registered under ``name`` (imported on first use).

    Raises:
        KeyError: unknown name (the message lists the known ones).
        ImportError: the module of a registered name cannot be imported.
    """
    spec = get_spec(name)
    if spec.name not in _CLASSES:
        target = spec.network
        if isinstance(target, str):
            module_name, _, cls_name = target.partition(":")
            try:
                module = importlib.import_module(module_name)
            except ImportError as e:
                raise ImportError(
                    f"Network {spec.name!r} is registered as {target} but its module cannot be imported: {e}"
                ) from e
            target = getattr(module, cls_name)
        _CLASSES[spec.name] = target
    return _CLASSES[spec.name]


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
            raise MrsrError(
                f"Network {_canonical(name)!r} has no preset {preset!r}; presets: {', '.join(table) or 'none'}."
            )
        params.update(table[preset])
    params.update(kwargs)
    return cls(**params)


def __getattr__(attr: str) -> Any:
    """Lazy access to the network classes: ``from mrsr.networks import MSRN``."""
    for spec in specs(include_auxiliary=True):
        target = spec.network
        if attr == (target.partition(":")[2] if isinstance(target, str) else target.__name__):
            return get_network_class(spec.name)
    if attr == "SR_NETWORKS":  # computed: networks users register count too
        return tuple(available())
    if attr == "AUXILIARY_NETWORKS":
        return tuple(s.name for s in specs(include_auxiliary=True) if not s.super_resolution)
    if attr == "DataConsistent":
        from mrsr.networks.consistent import DataConsistent

        return DataConsistent
    if attr in ("BASELINES", "get_baseline", "is_baseline"):  # the interpolation baselines' one table
        from mrsr.networks import baselines

        return getattr(baselines, attr)
    raise AttributeError(f"module 'mrsr.networks' has no attribute {attr!r}")
