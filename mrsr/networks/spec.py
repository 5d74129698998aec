"""What mrsr knows about a network, in one record registered beside the network's class.

Everything that differs between networks outside their ``forward`` lives in a :class:`NetworkSpec`:
the class (with its ``PRESETS``), other spellings of its name, the training loss it uses, how it is
trained (ICONet supervises every stage; MedGAN's CasNet trains against a discriminator) and the
name of its bundle. The registry (:mod:`mrsr.networks`), :func:`mrsr.losses.get_loss`, the trainer,
:class:`mrsr.engines.TrainConfig`, the command line and the bundle tools read the spec; none of
them compares network names.

A spec holds data only (strings, flags), so the network layer does not import the layers above
it: the losses and engines look their parts up by the spec's keys.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

__all__ = ["NetworkSpec", "LOSS_KINDS"]

#: the training losses :func:`mrsr.losses.get_loss` builds, by ``NetworkSpec.loss``
LOSS_KINDS = ("l1", "l1_perceptual", "multistage", "medgan", "none")


@dataclass(frozen=True)
class NetworkSpec:
    """A registered network.

    Args:
        name: registry name (lower case, ``_`` between words).
        network: the ``nn.Module`` class, or ``"module.path:ClassName"`` imported on first use.
        aliases: other names accepted for it (e.g. ``"medgan"`` for ``"casnet"``).
        loss: its default training loss, one of :data:`LOSS_KINDS`: ``"l1"`` (pixel L1),
            ``"l1_perceptual"`` (L1 plus an optional VGG term), ``"multistage"`` (every stage's
            output and reconstruction), ``"medgan"`` (the adversarial, perceptual and style terms),
            ``"none"`` (not trained on its own: a discriminator).
        stages: the network exposes ``forward_stages(x)`` and is supervised on every stage's output;
            its training targets include the intermediate grids, and it cannot train wrapped in
            :class:`~mrsr.networks.DataConsistent` (the stages have no LR input of their own).
        discriminator: registry name of the network it is trained against with a conditional GAN
            step, or None for plain supervised training.
        bundle: the name of its bundle folder (``<bundle>_mr_sr``), or None if it ships none.
        super_resolution: False for auxiliary networks (a discriminator): built by name but not
            listed by :func:`mrsr.networks.available`.
        display_name: how people write its name (``"ICONet"``, ``"MedGAN"``); the registry name if empty.
        title: one line saying what it is (listings, bundle metadata and model cards).
        references: the papers it implements, full citations.
    """

    name: str
    network: type[nn.Module] | str
    aliases: tuple[str, ...] = ()
    loss: str = "l1"
    stages: bool = False
    discriminator: str | None = None
    bundle: str | None = None
    super_resolution: bool = True
    display_name: str = ""
    title: str = ""
    references: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.loss not in LOSS_KINDS:
            kinds = ", ".join(LOSS_KINDS)
            raise ValueError(f"NetworkSpec {self.name!r}: loss must be one of {kinds}, got {self.loss!r}.")
        target = self.network
        if not (isinstance(target, str) and ":" in target) and not isinstance(target, type):
            raise TypeError(f"NetworkSpec {self.name!r}: network must be a class or a 'module:Class' string.")

    @property
    def bundle_folder(self) -> str | None:
        """The bundle's folder name, ``<bundle>_mr_sr`` (None without a bundle)."""
        return f"{self.bundle}_mr_sr" if self.bundle else None
