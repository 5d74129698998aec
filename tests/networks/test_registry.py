"""Tests of the network registry (mrsr.networks): names, aliases, specs, presets by name, register/unregister, errors.

The conventions every registered network follows (interface, presets, exports ...) are test_contract.py.
"""

from __future__ import annotations

import pytest
from torch import nn

from mrsr import networks
from mrsr.networks import (
    SR_NETWORKS,
    NetworkSpec,
    available,
    get_network,
    get_network_class,
    get_spec,
    register,
    specs,
    unregister,
)

NAMES = ["durn", "wasa", "iconet", "msrn", "casnet", "patch_discriminator"]


def test_available_lists_every_network():
    assert set(NAMES) <= set(available(include_auxiliary=True))
    assert set(SR_NETWORKS) == set(NAMES) - {"patch_discriminator"}


def test_available_lists_only_sr_networks_by_default():
    assert available() == list(SR_NETWORKS)
    assert "patch_discriminator" not in available()


@pytest.mark.parametrize("name", NAMES)
def test_every_name_resolves_to_a_module_class(name):
    cls = get_network_class(name)
    assert isinstance(cls, type) and issubclass(cls, nn.Module)


def test_preset_and_overrides():
    net = get_network("msrn", preset="small", scale=2, in_channels=3)
    assert net.head.in_channels == 3 and net.scale == 2
    assert len(net.blocks) == networks.MSRN.PRESETS["small"]["num_blocks"]
    wider = get_network("msrn", preset="small", features=8)
    assert wider.head.out_channels == 8


def test_names_are_case_and_dash_insensitive_and_aliases():
    assert get_network_class("MSRN") is get_network_class("msrn")
    assert get_network_class("Patch-Discriminator") is get_network_class("patch_discriminator")
    assert get_network_class("medgan") is get_network_class("casnet")


def test_unknown_name_and_preset():
    with pytest.raises(KeyError, match="available"):
        get_network("srgan")
    with pytest.raises(ValueError, match="presets"):
        get_network("msrn", preset="huge")


def test_lazy_class_attributes():
    from mrsr.networks import DURN, MSRN, CasNet, PatchDiscriminator

    assert MSRN is get_network_class("msrn") and DURN is get_network_class("durn")
    assert CasNet.__name__ == "CasNet" and PatchDiscriminator.__name__ == "PatchDiscriminator"
    with pytest.raises(AttributeError):
        _ = networks.NoSuchNetwork


def test_register_decorator_and_lazy_string():
    @register("tiny_test_net")
    class Tiny(nn.Module):
        PRESETS = {"default": {}, "small": {}}

        def __init__(self, scale: int = 2) -> None:
            super().__init__()
            self.scale = scale

    try:
        assert "tiny_test_net" in available()
        assert isinstance(get_network("tiny_test_net", preset="small", scale=3), Tiny)
        register("tiny_lazy_net", "mrsr.networks.msrn:MSRN")
        assert get_network_class("tiny_lazy_net") is get_network_class("msrn")
        register("tiny_broken_net", "mrsr.networks.no_such_module:X")
        with pytest.raises(ImportError, match="tiny_broken_net"):
            get_network_class("tiny_broken_net")
        with pytest.raises(TypeError):
            register("tiny_bad", 42)
    finally:
        for key in ("tiny_test_net", "tiny_lazy_net", "tiny_broken_net"):
            unregister(key)
    assert "tiny_test_net" not in available()


def test_each_network_has_one_spec_with_its_training_and_bundle():
    """The spec is the one place a network's training step, loss and bundle are known."""
    casnet = get_spec("MedGAN")
    assert casnet.name == "casnet" and casnet.discriminator == "patch_discriminator" and casnet.bundle == "medgan"
    assert get_spec("iconet").stages and get_spec("iconet").loss == "multistage"
    assert get_spec("wasa").loss == "l1_perceptual" and get_spec("msrn").loss == get_spec("durn").loss == "l1"
    assert [s.name for s in specs()] == list(SR_NETWORKS)
    assert all(s.bundle and s.references and s.title for s in specs())  # every shipped SR network: a bundle, papers
    assert not get_spec("patch_discriminator").super_resolution
    assert get_spec(get_spec("casnet").discriminator).loss == "none"


def test_register_a_spec_of_your_own():
    spec = register(NetworkSpec("tiny_spec_net", "mrsr.networks.msrn:MSRN", aliases=("tsn",), loss="l1"))
    try:
        assert get_spec("TSN") is spec and get_network_class("tiny_spec_net") is get_network_class("msrn")
        assert spec.bundle_folder is None and get_spec("msrn").bundle_folder == "msrn_mr_sr"
    finally:
        unregister("tiny_spec_net")
    with pytest.raises(KeyError, match="available"):
        get_spec("tsn")
    with pytest.raises(ValueError, match="loss must be one of"):
        NetworkSpec("bad", "a:B", loss="mse")
