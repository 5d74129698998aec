"""Tests of the network registry (mrsr.networks) and the conventions every registered network follows."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mrsr import networks
from mrsr.networks import (
    SR_NETWORKS,
    NetworkSpec,
    available,
    get_network,
    get_network_class,
    get_spec,
    presets,
    register,
    specs,
    unregister,
)

NAMES = ["durn", "wasa", "iconet", "msrn", "casnet", "patch_discriminator"]
SIZE_ONLY = {"scale", "in_channels", "out_channels", "spatial_dims"}


def test_available_lists_every_network():
    assert set(NAMES) <= set(available(include_auxiliary=True))
    assert set(SR_NETWORKS) == set(NAMES) - {"patch_discriminator"}


def test_available_lists_only_sr_networks_by_default():
    assert available() == list(SR_NETWORKS)
    assert "patch_discriminator" not in available()


@pytest.mark.parametrize("name", NAMES)
def test_every_name_resolves_with_presets(name):
    """Each registered class imports and has PRESETS with 'default' and 'small' holding size parameters only."""
    cls = get_network_class(name)
    assert isinstance(cls, type) and issubclass(cls, nn.Module)
    table = presets(name)
    assert {"default", "small"} <= set(table)
    for preset, kwargs in table.items():
        assert not SIZE_ONLY & set(kwargs), f"{name} preset {preset!r} sets {SIZE_ONLY & set(kwargs)}"


@pytest.mark.parametrize("name", SR_NETWORKS)
@pytest.mark.parametrize("scale", [2, 4])
def test_registered_sr_networks_follow_the_interface(name, scale):
    """The shared contract: small preset, 2.5D input, any size -> (B, out_channels, s*h, s*w)."""
    torch.manual_seed(0)
    net = get_network(name, preset="small", scale=scale, in_channels=3).eval()
    with torch.no_grad():
        y = net(torch.rand(2, 3, 13, 17))
    assert y.shape == (2, 1, 13 * scale, 17 * scale)
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("name", SR_NETWORKS)
def test_sr_networks_reject_3d(name):
    with pytest.raises(ValueError, match="spatial_dims"):
        get_network(name, preset="small", spatial_dims=3)


@pytest.mark.parametrize("name", SR_NETWORKS)
def test_default_preset_is_the_constructor_default(name):
    with torch.device("meta"):
        a = get_network(name)
        b = get_network(name, preset="default")
    assert [(n, p.shape) for n, p in a.named_parameters()] == [(n, p.shape) for n, p in b.named_parameters()]


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
        networks.NoSuchNetwork


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


@pytest.mark.parametrize("name", ["durn", "msrn", "casnet"])
def test_torch_export(name):
    """torch.export (TorchScript's successor since torch 2.10 deprecated it) gives the eager output."""
    torch.manual_seed(0)
    net = get_network(name, preset="small", scale=3, in_channels=3).eval()
    x = torch.rand(1, 3, 13, 17)
    exported = torch.export.export(net, (x,))
    with torch.no_grad():
        torch.testing.assert_close(exported.module()(x), net(x))


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
