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


class Config:
    """Python state saved beside the weights: loading it needs weights_only=False."""


def _refusal(path) -> str:
    with pytest.raises(MrsrError) as refused:
        load_network(path, "msrn")
    message = str(refused.value)
    assert len(message.splitlines()) == 1 and "weights_only" not in message and "\x1b" not in message
    return message


def test_a_text_file_is_not_weights(tmp_path):
    (tmp_path / "notes.txt").write_text("hello, these are not weights\n")
    assert "notes.txt is not a PyTorch weights file" in _refusal(tmp_path / "notes.txt")
    (tmp_path / "config.json").write_text('{"features": 16}')
    assert "config.json is not a PyTorch weights file" in _refusal(tmp_path / "config.json")


def test_a_checkpoint_with_python_objects_is_refused_with_mrsrs_own_advice(tmp_path, msrn_file):
    _, net = msrn_file
    torch.save({"model": net.state_dict(), "cfg": Config()}, tmp_path / "full.pt")
    torch.save(net, tmp_path / "module.pt")
    advice = (
        "that mrsr does not unpickle, for safety; save the state_dict only, e.g. torch.save(model.state_dict(), path)"
    )
    assert f"holds Python objects (tests.test_checkpoint.Config) {advice}" in _refusal(tmp_path / "full.pt")
    assert f"holds Python objects (mrsr.networks.msrn.MSRN) {advice}" in _refusal(tmp_path / "module.pt")
    with open(tmp_path / "plain.pkl", "wb") as f:
        pickle.dump({"state_dict": net.state_dict()}, f)  # pickle's own format (protocol 4), not torch.save's
    assert "plain.pkl is a Python pickle that is not PyTorch weights" in _refusal(tmp_path / "plain.pkl")


def test_missing_and_non_dict_files(tmp_path):
    with pytest.raises(MrsrError, match="No such weights"):
        load_network(tmp_path / "none.pt", "msrn")
    torch.save(torch.zeros(3), tmp_path / "tensor.pt")
    with pytest.raises(MrsrError, match="not weights"):
        load_network(tmp_path / "tensor.pt", "msrn")
