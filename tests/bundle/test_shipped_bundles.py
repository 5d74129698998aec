"""The shipped bundle folders: metadata, network I/O, inference, training, export, generated files, model cards."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.bundle import ConfigParser, ckpt_export, onnx_export, verify_metadata, verify_net_in_out
from monai.bundle import run as bundle_run

from mrsr.bundle import (
    DO_NO_HARM_DB,
    bundle_scales,
    evaluate_bundle,
    find_bundle,
    load_bundle_network,
    read_metadata,
    weights_path,
)
from mrsr.data import sample_path
from tests.bundle.conftest import BUNDLE_NAMES, REPO, SCHEMA, export_args, load_script

CONFIGS = ("inference", "train", "multi_gpu_train", "evaluate")


@pytest.mark.parametrize("name", BUNDLE_NAMES)
def test_metadata_verifies_against_monai_schema(name, tmp_path):
    schema = tmp_path / "schema.json"
    shutil.copyfile(SCHEMA, schema)  # verify_metadata reuses an existing file instead of downloading
    verify_metadata(meta_file=str(find_bundle(name) / "configs" / "metadata.json"), filepath=str(schema))
    meta = read_metadata(name)
    assert meta["network_data_format"]["inputs"]["image"]["num_channels"] == 1
    assert meta["references"] and meta["intended_use"]


@pytest.mark.parametrize("name", BUNDLE_NAMES)
def test_metadata_is_in_model_zoo_form(name):
    """A name, papers only, NIfTI as the zoo writes it, and the package versions that were installed, not minimums."""
    meta = read_metadata(name)
    assert meta["name"].endswith("MR super-resolution") and meta["data_type"] == "nibabel"
    assert all("blog" not in ref and "http" not in ref and ".py" not in ref for ref in meta["references"])
    packages = meta["required_packages_version"]
    assert {"mrsr", "nibabel", "pydicom", "pytorch-ignite", "nilearn", "dipy", "pydicom-data"} <= set(packages)
    assert all(v.count(".") >= 2 for k, v in packages.items()), packages  # installed versions: x.y.z


@pytest.mark.parametrize("name", BUNDLE_NAMES)
def test_network_in_out_verifies(name):
    root = find_bundle(name)
    verify_net_in_out(
        net_id="network_def",
        meta_file=str(root / "configs" / "metadata.json"),
        config_file=str(root / "configs" / "inference.json"),
        device="cpu",
        any=24,
        bundle_root=str(root),
    )


@pytest.mark.parametrize("name", BUNDLE_NAMES)
def test_shipped_weights_are_small_and_load_at_every_scale(name):
    scales = bundle_scales(name)
    assert 2 in scales
    for scale in scales:
        assert weights_path(name, scale).stat().st_size < 25e6
        network, in_channels = load_bundle_network(name, scale)
        out = network(torch.rand(1, in_channels, 20, 24))
        assert out.shape == (1, 1, 20 * scale, 24 * scale)


@pytest.mark.parametrize("name", BUNDLE_NAMES)
def test_inference_config_writes_the_hr_grid(name, lr_sample, tmp_path):
    """The shipped sample degraded x2, through inference.json: the output lies on the sample's own grid."""
    lr_path, hr = lr_sample
    root = find_bundle(name)
    bundle_run(
        config_file=str(root / "configs" / "inference.json"),
        bundle_root=str(root),
        input=str(lr_path),
        output_dir=str(tmp_path),
        device="cpu",
    )
    out = nib.load(tmp_path / "t1_lr_sr_x2.nii.gz")
    assert out.shape == tuple(hr.shape[1:])
    np.testing.assert_allclose(out.affine, np.asarray(hr.affine), atol=1e-5)
    sr = np.asarray(out.dataobj)
    assert np.isfinite(sr).all() and 0.5 * float(hr.max()) < sr.max() < 1.5 * float(hr.max())


def test_inference_config_reorients_and_keeps_the_slice_direction(tmp_path):
    """--orientation RAS moves the sample's 3 mm coronal slice axis to axis 1; "auto" still leaves it alone."""
    root = find_bundle("msrn")
    bundle_run(config_file=str(root / "configs" / "inference.json"), bundle_root=str(root), output_dir=str(tmp_path),
               orientation="RAS", device="cpu")  # fmt: skip
    out = nib.load(tmp_path / "sample_t1_head_sr_x2.nii.gz")
    assert nib.aff2axcodes(out.affine) == ("R", "A", "S")
    assert out.shape == (256, 62, 256)
    np.testing.assert_allclose(out.header.get_zooms(), (1.0, 3.0, 1.0))


def test_inference_config_skips_existing_outputs_before_any_work(lr_sample, tmp_path, inferences, capsys):
    """An output that exists is checked before the network runs: its input is skipped, the file kept, exit 0."""
    lr_path, _ = lr_sample
    root = find_bundle("msrn")
    existing = tmp_path / "t1_lr_sr_x2.nii.gz"
    existing.write_text("mine")
    bundle_run(config_file=str(root / "configs" / "inference.json"), bundle_root=str(root), input=str(lr_path),
               output_dir=str(tmp_path), device="cpu")  # fmt: skip
    assert inferences == []  # no inference at all
    assert existing.read_text() == "mine"
    err = capsys.readouterr().err
    assert f"mrsr: skip {lr_path}: {existing} exists (pass --overwrite to replace it)" in err
    assert "mrsr: nothing to do" in err


def test_inference_config_skips_existing_outputs_in_a_batch(small_inputs, tmp_path, inferences, capsys):
    """A folder of inputs with one output already there: that input is skipped, the others are written."""
    root = find_bundle("msrn")
    out = tmp_path / "out"
    out.mkdir()
    (out / "a_sr_x2.nii.gz").write_text("mine")
    bundle_run(config_file=str(root / "configs" / "inference.json"), bundle_root=str(root), input=str(small_inputs),
               output_dir=str(out), device="cpu")  # fmt: skip
    assert inferences == [["b.nii.gz"]]
    assert (out / "a_sr_x2.nii.gz").read_text() == "mine"
    assert nib.load(out / "b_sr_x2.nii.gz").shape == (64, 64, 3)
    err = capsys.readouterr().err.splitlines()
    skipped = f"{small_inputs / 'a.nii.gz'}: {out / 'a_sr_x2.nii.gz'} exists (pass --overwrite to replace it)"
    assert f"mrsr: skip {skipped}" in err
    assert f"mrsr: super-resolving {small_inputs / 'b.nii.gz'} (1/1)" in err
    assert f"mrsr: wrote {out / 'b_sr_x2.nii.gz'}" in err
    # --overwrite: both again
    bundle_run(config_file=str(root / "configs" / "inference.json"), bundle_root=str(root), input=str(small_inputs),
               output_dir=str(out), device="cpu", overwrite=True)  # fmt: skip
    assert inferences[1:] == [["a.nii.gz"], ["b.nii.gz"]]
    assert nib.load(out / "a_sr_x2.nii.gz").shape == (64, 64, 3)


def test_monai_bundle_run_from_the_command_line(lr_sample, tmp_path):
    """What the README shows: python -m monai.bundle run (through fire), here at x4 with its own weights."""
    lr_path, _ = lr_sample
    root = find_bundle("msrn")
    if 4 not in bundle_scales(root):
        pytest.fail("the msrn bundle ships no x4 weights")
    cmd = [sys.executable, "-m", "monai.bundle", "run", "--config_file", str(root / "configs" / "inference.json"),
           "--bundle_root", str(root), "--input", str(lr_path), "--output_dir", str(tmp_path),
           "--scale", "4"]  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    # what it does and where it wrote, also into a pipe (not a terminal)
    lines = result.stderr.splitlines()
    assert f"mrsr: super-resolving {lr_path} (1/1)" in lines
    assert f"mrsr: wrote {tmp_path / 't1_lr_sr_x4.nii.gz'}" in lines
    out = nib.load(tmp_path / "t1_lr_sr_x4.nii.gz")
    lr = nib.load(lr_path)
    assert out.shape == (lr.shape[0] * 4, lr.shape[1] * 4, lr.shape[2])
    np.testing.assert_allclose(np.diag(out.affine)[:2], np.diag(lr.affine)[:2] / 4)


@pytest.mark.parametrize("name", BUNDLE_NAMES)
def test_train_config_runs_a_few_iterations(name, tiny_manifest, tmp_path):
    root = find_bundle(name)
    out = tmp_path / "run"
    bundle_run(
        config_file=str(root / "configs" / "train.json"),
        bundle_root=str(root),
        manifest=tiny_manifest,
        output_dir=str(out),
        preset="small",
        iterations=2,
        batch_size=2,
        samples_per_epoch=4,
        patch_size=16,
        device="cpu",
        progress=False,
    )
    history = json.loads((out / "history.json").read_text())
    assert len(history["loss"]) == 2 and all(np.isfinite(history["loss"]))
    assert (out / "model_best.pt").is_file()
    config = json.loads((out / "config.json").read_text())
    train_json = json.loads((root / "configs" / "train.json").read_text())
    assert config["network_kwargs"] == train_json["network_kwargs"] and config["preset"] == "small"


def test_train_config_is_a_component_graph(tiny_manifest, tmp_path):
    """The model zoo's parts: train#dataset, train#handlers, train#trainer, validate#dataset/evaluator, val_interval."""
    from monai.engines import SupervisedEvaluator, SupervisedTrainer
    from monai.handlers import StatsHandler

    parser = ConfigParser()
    parser.read_config(str(find_bundle("msrn") / "configs" / "train.json"))
    parser.update({
        "bundle_root": str(find_bundle("msrn")), "manifest": tiny_manifest, "output_dir": str(tmp_path / "run"),
        "preset": "small", "iterations": 2, "batch_size": 2, "samples_per_epoch": 4, "patch_size": 16,
        "device": "cpu", "progress": False, "val_interval": 2,
        "train#handlers": [{"_target_": "StatsHandler", "epoch_log": False,
                            "output_transform": "$monai.handlers.from_engine(['loss'], first=True)"}],
    })  # fmt: skip
    parser.get_parsed_content("imports")
    assert len(parser.get_parsed_content("train#dataset")) == 4
    trainer = parser.get_parsed_content("train#trainer")
    assert isinstance(trainer, SupervisedTrainer)
    assert isinstance(parser.get_parsed_content("validate#evaluator"), SupervisedEvaluator)
    stats = parser.get_parsed_content("train#handlers")[0]
    assert isinstance(stats, StatsHandler) and trainer.has_event_handler(stats.iteration_completed)
    history = parser.get_parsed_content("train#workflow").run()
    assert len(history["loss"]) == 2 and "val_psnr" not in history["epochs"][0]  # val_interval 2: epoch 1 unscored
    assert json.loads((tmp_path / "run" / "config.json").read_text())["val_every"] == 2


def test_train_config_trains_the_default_size():
    for name in BUNDLE_NAMES:
        config = json.loads((find_bundle(name) / "configs" / "train.json").read_text())
        assert config["preset"] == "default"


def test_train_config_takes_a_datalist_and_dataset_dir(tmp_path):
    """Your own data: --datalist with paths relative to --dataset_dir; a network option overridden by its id."""
    data = tmp_path / "data"
    data.mkdir()
    shutil.copyfile(sample_path(), data / "train.nii.gz")
    shutil.copyfile(Path(nib.__file__).parent / "tests" / "data" / "anatomical.nii", data / "val.nii")
    datalist = tmp_path / "mine.json"
    datalist.write_text(json.dumps({"training": [{"image": "train.nii.gz"}], "validation": [{"image": "val.nii"}]}))
    root = find_bundle("msrn")
    out = tmp_path / "run"
    overrides = {"datalist": str(datalist), "dataset_dir": str(data), "network_kwargs#features": 8}
    bundle_run(config_file=str(root / "configs" / "train.json"), bundle_root=str(root), output_dir=str(out),
               preset="small", iterations=1, batch_size=2, samples_per_epoch=2, patch_size=16, device="cpu",
               progress=False, **overrides)  # fmt: skip
    config = json.loads((out / "config.json").read_text())
    assert (config["manifest"], config["data_root"]) == (str(datalist), str(data))
    assert config["network_kwargs"] == {"global_residual": "sinc_reflect", "features": 8}


@pytest.mark.parametrize("name", BUNDLE_NAMES)
def test_configs_keep_inside_the_bundle(name, monkeypatch):
    """No config reaches outside its bundle: train and evaluate read the bundle's own datalist (a copy of the
    real-data manifest, pkg: paths only) unless --datalist / --dataset_dir say otherwise."""
    root = find_bundle(name)
    for config in CONFIGS:
        text = (root / "configs" / f"{config}.json").read_text()
        assert "../" not in text and str(REPO) not in text, config
    datalist = json.loads((root / "configs" / "datalist.json").read_text())
    assert datalist == json.loads((REPO / "data_manifests" / "real_data.json").read_text())
    images = [e["image"] for section in ("training", "validation", "test") for e in datalist[section]]
    assert all(image.startswith("pkg:") for image in images)
    for config in ("train", "evaluate"):
        parser = ConfigParser()
        parser.read_config(str(root / "configs" / f"{config}.json"))
        parser["bundle_root"] = str(root)
        assert parser.get_parsed_content("manifest") == str(root / "configs" / "datalist.json")
        assert parser.get_parsed_content("data_root") is None
        parser["dataset_dir"] = "/my/data"
        assert parser.get_parsed_content("data_root") == "/my/data"
    # multi_gpu_train.json: each rank on its LOCAL_RANK device
    parser = ConfigParser()
    parser.read_config([str(root / "configs" / f"{c}.json") for c in ("train", "multi_gpu_train")])
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert parser.get_parsed_content("device") == ("cuda:1" if torch.cuda.is_available() else "cpu")


def test_multi_gpu_config_trains_two_gloo_ranks(tiny_manifest, tmp_path):
    """torchrun --nproc_per_node=2 -m monai.bundle run train.json + multi_gpu_train.json, on CPUs (gloo)."""
    root = find_bundle("msrn")
    files = f"['{root / 'configs' / 'train.json'}','{root / 'configs' / 'multi_gpu_train.json'}']"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "monai.bundle",
           "run", "--config_file", files, "--bundle_root", str(root), "--manifest", tiny_manifest, "--output_dir",
           str(tmp_path / "run"), "--preset", "small", "--iterations", "2", "--batch_size", "2",
           "--samples_per_epoch", "8", "--patch_size", "16", "--num_workers", "0", "--progress", "False"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert len(history["loss"]) == 2


@pytest.mark.parametrize("name", BUNDLE_NAMES)
def test_torchscript_export_matches_eager(name, tmp_path):
    root = find_bundle(name)
    ckpt_export(**export_args(root, tmp_path / "model.ts"))
    exported = torch.jit.load(str(tmp_path / "model.ts")).eval()
    eager, in_channels = load_bundle_network(root, 2)
    for shape in [(2, in_channels, 28, 36), (1, in_channels, 33, 21)]:  # scripted: any slice size
        x = torch.rand(*shape)
        with torch.no_grad():
            torch.testing.assert_close(exported(x), eager(x), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", BUNDLE_NAMES)
def test_onnx_export_matches_eager_at_its_slice_size(name, tmp_path):
    """ONNX (torch.export-based, as monai.bundle onnx_export on torch >= 2.9) at a fixed slice size, run by
    onnxruntime."""
    ort = pytest.importorskip("onnxruntime", reason="pip install -e .[export]")
    root = find_bundle(name)
    onnx_export(**export_args(root, tmp_path / "model.onnx"), input_shape=[1, 1, 40, 48], use_trace=False)
    session = ort.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
    eager, _ = load_bundle_network(root, 2)
    x = torch.rand(1, 1, 40, 48)
    (y,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    with torch.no_grad():
        torch.testing.assert_close(torch.from_numpy(y), eager(x), rtol=1e-4, atol=1e-5)


def test_generated_files_match_make_bundles():
    """The committed configs, datalists, metadata, LICENSE, model cards and data licences are what
    bundles/make_bundles.py writes (edit the script or bundles/recipes/, not the generated files)."""
    result = subprocess.run([sys.executable, str(REPO / "bundles" / "make_bundles.py"), "--check"],
                            capture_output=True, text=True, timeout=300, cwd=REPO)  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]


@pytest.mark.parametrize("name", BUNDLE_NAMES)
def test_recipes_are_the_commands_that_made_the_weights(name):
    """Each recipe's `mrsr train` command gives exactly its settings, for every scale the bundle ships."""
    from mrsr.cli import build_parser, train_config_from_args

    recipe = json.loads((REPO / "bundles" / "recipes" / f"{name}.json").read_text())
    assert sorted(int(key[1:]) for key in recipe["scales"]) == bundle_scales(name)
    for key, run in recipe["scales"].items():
        argv = shlex.split(run["command"])
        assert argv[:2] == ["mrsr", "train"]
        config = json.loads(json.dumps(train_config_from_args(build_parser().parse_args(argv[1:])).to_dict()))
        assert {k: config[k] for k in run["settings"]} == run["settings"], key
        assert run["weights"] == str(weights_path(name, int(key[1:])).relative_to(find_bundle(name)))


def test_model_cards_state_every_test_image_and_the_harm():
    do_no_harm_sentence = load_script("model_card").do_no_harm_sentence
    test_images = {e["name"] for e in json.loads((REPO / "data_manifests" / "real_data.json").read_text())["test"]}
    for name in BUNDLE_NAMES:
        card = (find_bundle(name) / "docs" / "README.md").read_text()
        assert "mrsr train --network" in card
        for key, x in read_metadata(name)["eval_metrics"].items():
            assert set(x["volumes"]) == test_images  # every test image, the recipes were chosen on none
            margins = {v: s[f"{name} +dc"]["psnr"] - s["zerofill"]["psnr"] for v, s in x["volumes"].items()}
            assert x["worst_margin"] == pytest.approx(min(margins.values()), abs=2e-3)
            assert x["do_no_harm"] == (min(margins.values()) >= -DO_NO_HARM_DB)
            assert do_no_harm_sentence(name, key, x) in card
            for image in test_images:
                assert f"| {image} | " in card


@pytest.mark.parametrize("name", BUNDLE_NAMES)
def test_model_cards_follow_the_model_zoo_and_cite_nothing_outside(name):
    root = find_bundle(name)
    card = (root / "docs" / "README.md").read_text()
    headings = [line[3:] for line in card.splitlines() if line.startswith("## ")]
    assert headings == ["Model Overview", "Data", "Preprocessing", "Training configuration", "Input", "Output",
                        "Performance", "MONAI Bundle Commands", "Limitations", "References", "License"]  # fmt: skip
    for ref in read_metadata(name)["references"]:
        assert ref in card
    for text in (card, (root / "docs" / "data_license.txt").read_text()):
        assert "http" not in text and "www." not in text


@pytest.mark.parametrize("name", BUNDLE_NAMES)
def test_data_licence_lists_every_image_the_weights_were_trained_or_scored_on(name):
    licence = (find_bundle(name) / "docs" / "data_license.txt").read_text()
    datalist = json.loads((find_bundle(name) / "configs" / "datalist.json").read_text())
    for section in ("training", "validation", "test"):
        for entry in datalist[section]:
            assert f"\n{entry['name']}\n    file:    {entry['image']}\n" in licence
            assert f"    licence: {entry['licence']}\n" in licence


# the stored numbers are what evaluate_bundle measures now (adaptation left out: it takes minutes)
@pytest.mark.slow
@pytest.mark.parametrize("name", BUNDLE_NAMES)
def test_stored_scores_are_reproduced_at_x2(name):
    report = evaluate_bundle(name, REPO / "data_manifests" / "real_data.json", scale=2, device="cpu")
    stored = read_metadata(name)["eval_metrics"]["x2"]
    for image, scores in report["volumes"].items():
        for method in (name, f"{name} +dc", "zerofill", "bicubic"):
            assert scores[method]["psnr"] == pytest.approx(stored["volumes"][image][method]["psnr"], abs=0.01)
