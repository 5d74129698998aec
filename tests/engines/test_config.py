"""TrainConfig: validation, JSON round trip, what --resume may change."""

from __future__ import annotations

import pytest

from mrsr.engines import TrainConfig
from mrsr.errors import MrsrError


def test_defaults_and_round_trip(tmp_path):
    config = TrainConfig("msrn", "m.json", neighbours=2, windows=["none", "hamming"], snr_range=[20, 40])
    assert config.out == "runs/msrn_x2" and config.in_channels == 5
    config.save(tmp_path / "c.json")
    import json

    again = TrainConfig.from_dict(json.loads((tmp_path / "c.json").read_text()))
    assert again == config and again.windows == ("none", "hamming") and again.snr_range == (20, 40)


@pytest.mark.parametrize(
    "kw,message",
    [
        ({"network": "unet"}, "Unknown network"),
        ({"network": "patch_discriminator"}, "Unknown network"),  # registered, but not an SR network
        ({"patch_size": 0}, "patch_size"),
        ({"iterations": 0}, "iterations"),
        ({"neighbours": -1}, "neighbours"),
        ({"lr_schedule": "step"}, "lr_schedule"),
        ({"lr": 0.0}, "learning rate"),
        ({"warmup": -1}, "warmup"),
        ({"grad_clip": 0.0}, "grad_clip"),
        ({"windows": ("gauss",)}, "window"),
        ({"snr_range": (0, 3)}, "SNR"),
    ],
)
def test_bad_options(kw, message):
    with pytest.raises(MrsrError, match=message):
        TrainConfig(**{"network": "msrn", "manifest": "m.json", **kw})


def test_network_aliases_train_their_network():
    config = TrainConfig("MedGAN", "m.json")
    assert config.network == "casnet" and config.spec.discriminator and config.out == "runs/casnet_x2"


def test_unknown_keys_are_refused():
    with pytest.raises(MrsrError, match="batchsize"):
        TrainConfig.from_dict({"network": "msrn", "manifest": "m.json", "batchsize": 4})


def test_resume_may_change_length_and_device_only():
    saved = TrainConfig("msrn", "m.json", epochs=2, device="cpu")
    merged = saved.resumed_with(TrainConfig("msrn", "m.json", epochs=5, device="cuda", num_workers=2))
    assert (merged.epochs, merged.device, merged.num_workers) == (5, "cuda", 2)
    with pytest.raises(MrsrError, match="lr: 0.0005 -> 0.001"):
        saved.resumed_with(TrainConfig("msrn", "m.json", lr=1e-3))
