"""Training runs on MONAI engines: every network, files written, exact resume, clear errors."""

from __future__ import annotations

import json

import pytest
import torch

from mrsr.checkpoint import load_network
from mrsr.engines import TrainConfig, train
from mrsr.engines.handlers import RunRecorder
from mrsr.engines.trainer import CosineSchedule, load_checkpoint
from mrsr.errors import MrsrError

SMALLEST = {  # each network at its narrowest that still is the network, so every one trains in seconds
    "durn": {"features": 8},
    "wasa": {"features": 8, "num_blocks": 1, "skip_features": 8},
    "iconet": {"features": 8, "num_blocks": 1},
    "msrn": {"features": 8, "num_blocks": 1},
    "casnet": {"features": 8, "num_levels": 4, "max_features": 16, "num_blocks": 1},
}


@pytest.mark.parametrize("network", sorted(SMALLEST))
def test_every_network_trains_and_writes_its_run(make_config, tmp_path, network):
    scale = 4 if network == "iconet" else 2  # ICONet runs two x2 stages at x4
    # no VGG-19 weights can be had offline: MedGAN trains without its style and content terms here
    loss = {"style_weight": 0, "content_weight": 0} if network == "casnet" else {}
    config = make_config(tmp_path / "run", network=network, network_kwargs=SMALLEST[network], scale=scale, loss=loss,
                         samples_per_epoch=16, epochs=1, neighbours=1 if network == "msrn" else 0)  # fmt: skip
    history = train(config)
    run = tmp_path / "run"
    assert len(history["loss"]) == 4 and all(torch.isfinite(torch.tensor(history["loss"])))
    assert {"zerofill", "bicubic"} == set(history["baselines"])
    assert history["epochs"][0]["val_psnr"] > 0 and 0 < history["epochs"][0]["val_ssim"] <= 1
    for name in ("config.json", "checkpoint.pt", "model_last.pt", "model_best.pt", "history.json"):
        assert (run / name).is_file(), name
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))
    net, name, kwargs = load_network(run / "model_best.pt")  # what `mrsr infer --weights` loads
    assert name == network and kwargs["in_channels"] == config.in_channels == net.in_channels
    if network == "casnet":
        assert any(k.startswith("d_") for k in history["terms"])


def test_iconet_is_supervised_on_whole_slice_stage_targets(make_config, tmp_path):
    """ICONet's batches carry the coarser grids' targets from whole slices (not from the HR patch),
    and its trainer hands them to the loss in ICONet.stage_factors order."""
    from mrsr.engines.distributed import DistContext
    from mrsr.engines.trainer import StageTargetBatch, _loaders
    from mrsr.networks import ICONet

    config = make_config(tmp_path / "run", network="iconet", network_kwargs=SMALLEST["iconet"], scale=4, epochs=1)
    loader, _, _ = _loaders(config, DistContext())
    batch = next(iter(loader))
    b, p = batch["image"].shape[0], config.patch_size
    assert batch["label_4"].shape == (b, 1, p, p) and batch["label_2"].shape == (b, 1, 2 * p, 2 * p)
    image, targets = StageTargetBatch(ICONet.stage_factors(4))(batch, torch.device("cpu"))
    assert image is not None and torch.equal(targets["rec"][0], batch["label_4"])
    assert torch.equal(targets["sr"][0], batch["label_2"]) and torch.equal(targets["rec"][1], batch["label_2"])
    assert torch.equal(targets["sr"][1], batch["label"])
    assert "label_2" not in next(iter(_loaders(make_config(tmp_path / "d", epochs=1), DistContext())[0]))


def test_tensorboard_has_losses_metrics_and_panels(make_config, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    train(make_config(tmp_path / "run", epochs=1))
    acc = EventAccumulator(str(tmp_path / "run" / "tensorboard"), size_guidance={"images": 0})
    acc.Reload()
    assert {"train/loss", "train/lr", "val/psnr", "val/ssim"} <= set(acc.Tags()["scalars"])
    (image,) = acc.Images("val/panel")
    assert (image.height, image.width) == (32, 4 * 40)  # LR | SR | HR | error of the 32x40 validation slice


def test_resume_after_a_kill_mid_epoch_matches_an_uninterrupted_run(make_config, tmp_path, monkeypatch):
    full = train(make_config(tmp_path / "full"))

    original = RunRecorder.iteration_completed

    def killed_at_12(self, engine):
        original(self, engine)
        if engine.state.iteration == 12:  # mid epoch 2 (8 steps per epoch)
            raise KeyboardInterrupt

    monkeypatch.setattr(RunRecorder, "iteration_completed", killed_at_12)
    with pytest.raises(KeyboardInterrupt):
        train(make_config(tmp_path / "cut"))
    monkeypatch.setattr(RunRecorder, "iteration_completed", original)
    saved = json.loads((tmp_path / "cut" / "history.json").read_text())
    assert [e["epoch"] for e in saved["epochs"]] == [1]  # the finished epoch survived the kill

    resumed = train(make_config(tmp_path / "cut"), resume=True)
    torch.testing.assert_close(torch.tensor(resumed["loss"]), torch.tensor(full["loss"]), rtol=1e-5, atol=1e-7)
    assert len(resumed["loss"]) == 16
    a = torch.load(tmp_path / "full" / "model_last.pt", weights_only=True)["state_dict"]
    b = torch.load(tmp_path / "cut" / "model_last.pt", weights_only=True)["state_dict"]
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-7)


def test_resume_can_extend_a_finished_run(make_config, tmp_path):
    train(make_config(tmp_path / "run", epochs=1))
    history = train(make_config(tmp_path / "run", epochs=2), resume=True)
    assert [e["epoch"] for e in history["epochs"]] == [1, 2] and len(history["loss"]) == 16


def test_run_folder_is_protected_and_resume_checks_settings(make_config, tmp_path):
    train(make_config(tmp_path / "run", epochs=1, val_every=0))
    with pytest.raises(MrsrError, match="not empty"):
        train(make_config(tmp_path / "run", epochs=1, val_every=0))
    with pytest.raises(MrsrError, match="patch_size"):
        train(make_config(tmp_path / "run", epochs=2, val_every=0, patch_size=10), resume=True)
    with pytest.raises(MrsrError, match="No checkpoint"):
        train(make_config(tmp_path / "other"), resume=True)
    history = train(make_config(tmp_path / "run", epochs=1, val_every=0), overwrite=True)
    assert len(history["loss"]) == 8 and "baselines" not in history


def test_missing_manifest_files_fail_before_training(make_config, tmp_path):
    manifest = tmp_path / "m.json"
    manifest.write_text(json.dumps({"training": [{"image": "a.nii.gz"}, {"image": "b.nii.gz"}], "validation": []}))
    with pytest.raises(MrsrError, match=r"a\.nii\.gz.*b\.nii\.gz"):
        train(make_config(tmp_path / "run", manifest=str(manifest), data_root=str(tmp_path)))
    assert not (tmp_path / "run").exists()


def test_cosine_schedule():
    s = CosineSchedule(100, 0.01)
    assert s(0) == pytest.approx(1.0) and s(50) == pytest.approx(0.505) and s(100) == pytest.approx(0.01)
    assert s(500) == pytest.approx(0.01)


def test_warmup_ramps_linearly_then_the_cosine_spans_the_rest():
    s = CosineSchedule(110, 0.01, warmup=10)
    assert [s(k) for k in (0, 4, 9)] == pytest.approx([0.1, 0.5, 1.0])
    assert s(10) == pytest.approx(1.0) and s(60) == pytest.approx(0.505) and s(110) == pytest.approx(0.01)
    longer_than_run = CosineSchedule(5, 0.01, warmup=10)
    assert longer_than_run(4) == pytest.approx(0.5) and longer_than_run(10) == pytest.approx(1.0)


@pytest.mark.slow
@pytest.mark.parametrize("network", sorted(SMALLEST))
def test_small_presets_train_on_the_real_data_manifest(tmp_path, network):
    """Each small preset, from Python, on data_manifests/real_data.json (MNI152 + dipy b0 train, dipy b0 validates)."""
    from pathlib import Path

    from mrsr.engines import TrainConfig

    manifest = Path(__file__).resolve().parents[2] / "data_manifests" / "real_data.json"
    scale = 4 if network == "iconet" else 2
    loss = {"style_weight": 0, "content_weight": 0} if network == "casnet" else {}
    config = TrainConfig(network, str(manifest), out=str(tmp_path / "run"), scale=scale, loss=loss, batch_size=4,
                         samples_per_epoch=40, epochs=2, progress=False, device="cpu")  # fmt: skip
    history = train(config)
    assert len(history["loss"]) == 20 and history["loss"][-1] < history["loss"][0]
    assert len(history["epochs"]) == 2 and history["best"] is not None


def test_training_with_data_consistency(make_config, tmp_path):
    config = make_config(tmp_path / "run", network="msrn", network_kwargs=SMALLEST["msrn"], samples_per_epoch=16,
                         epochs=1, data_consistency=True)  # fmt: skip
    history = train(config)
    assert all(torch.isfinite(torch.tensor(history["loss"]))) and history["epochs"][0]["val_psnr"] > 0
    net, name, _ = load_network(tmp_path / "run" / "model_best.pt")  # the bare network, no wrapper
    assert name == "msrn" and not any(k.startswith("network.") for k in net.state_dict())
    with pytest.raises(MrsrError, match="ICONet cannot train with --data-consistency"):
        make_config(tmp_path / "iconet", network="iconet", data_consistency=True)


def test_training_on_a_synthetic_mix(make_config, tmp_path):
    """A short run with half the samples synthetic (MNI152 tissue maps and k-means maps of the real volume):
    the loss is finite and falls, validation (real volumes only) runs, and the fraction is part of the run."""
    config = make_config(tmp_path / "run", synthetic=0.5, epochs=2)
    history = train(config)
    assert all(torch.isfinite(torch.tensor(history["loss"]))) and history["epochs"][-1]["val_psnr"] > 0
    assert history["loss"][-1] < history["loss"][0]
    assert TrainConfig.from_dict(json.loads((tmp_path / "run" / "config.json").read_text())).synthetic == 0.5
    with pytest.raises(MrsrError, match="fraction"):
        make_config(tmp_path / "bad", synthetic=1.5)


def test_an_unreadable_checkpoint_is_one_line_without_unsafe_advice(tmp_path):
    (tmp_path / "last.pt").write_text("not a checkpoint\n")
    with pytest.raises(MrsrError, match="is not a PyTorch weights file") as err:
        load_checkpoint(tmp_path / "last.pt")
    assert "weights_only" not in str(err.value) and len(str(err.value).splitlines()) == 1
