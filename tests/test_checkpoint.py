"""Weights files: round trip, safe loading, clear errors."""

from __future__ import annotations

import pickle

import pytest
import torch

from mrsr.checkpoint import load_network, save_weights
from mrsr.errors import MrsrError
from mrsr.networks import get_network, presets


@pytest.fixture
def msrn_file(tmp_path):
    kwargs = {**presets("msrn")["small"], "scale": 2, "in_channels": 3}
    net = get_network("msrn", **kwargs)
    return save_weights(tmp_path / "msrn.pt", net, "msrn", kwargs), net


def test_round_trip_rebuilds_the_same_network(msrn_file):
    path, net = msrn_file
    loaded, name, kwargs = load_network(path)
    assert name == "msrn" and kwargs["in_channels"] == 3 and not loaded.training
    x = torch.rand(1, 3, 9, 11)
    torch.testing.assert_close(loaded(x), net.eval()(x))


def test_bare_state_dict_needs_the_construction(tmp_path, msrn_file):
    _, net = msrn_file
    torch.save(net.state_dict(), tmp_path / "bare.pt")
    loaded, _, _ = load_network(tmp_path / "bare.pt", "msrn", preset="small", scale=2, in_channels=3)
    with pytest.raises(MrsrError, match="do not fit"):
        load_network(tmp_path / "bare.pt", "msrn", preset="small", scale=2, in_channels=1)
    with pytest.raises(MrsrError, match="do not name their network .* give the network and its construction"):
        load_network(tmp_path / "bare.pt")  # a bundle's models/model.pt is such a file


def test_mismatches_are_explained(msrn_file):
    path, _ = msrn_file
    with pytest.raises(MrsrError, match="not 'durn'"):
        load_network(path, "durn")
    with pytest.raises(MrsrError, match="trained with scale=2"):
        load_network(path, scale=4)


class Payload:
    def __reduce__(self):
        return (print, ("this ran",))


def test_pickled_code_is_refused(tmp_path):
    evil = tmp_path / "evil.pt"
    with open(evil, "wb") as f:
        pickle.dump({"state_dict": Payload()}, f)
    with pytest.raises(MrsrError, match="safe"):
        load_network(evil, "msrn")


def test_missing_and_non_dict_files(tmp_path):
    with pytest.raises(MrsrError, match="No such weights"):
        load_network(tmp_path / "none.pt", "msrn")
    torch.save(torch.zeros(3), tmp_path / "tensor.pt")
    with pytest.raises(MrsrError, match="not weights"):
        load_network(tmp_path / "tensor.pt", "msrn")
