"""mrsr.bundle and the shipped bundles: metadata, network I/O, inference, training, export, weights."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.bundle import ckpt_export, onnx_export, verify_metadata, verify_net_in_out
from monai.bundle import run as bundle_run
from monai.data import MetaTensor

from mrsr.bundle import (
    DO_NO_HARM_DB,
    BUNDLES_ENV,
    bundle_scales,
    evaluate_bundle,
    find_bundle,
    install_weights,
    list_bundles,
    load_bundle_network,
    one_line_errors,
    read_metadata,
    require_torchrun,
    shipped_weights,
    weights_path,
)
from mrsr.checkpoint import save_weights
from mrsr.data import load_volume, sample_path, save_volume
from mrsr.errors import MrsrError
from mrsr.transforms import KSpaceTruncate, RobustNormalize

REPO = Path(__file__).resolve().parents[1]
BUNDLE_NAMES = ("durn", "iconet", "medgan", "msrn", "wasa")
# MONAI's published bundle metadata schema (Apache-2.0), kept here so verify_metadata runs offline
SCHEMA = Path(__file__).parent / "data" / "monai_meta_schema_20240725.json"
TRAIN_IMAGE = "pkg:mrsr/data/sample_t1_head.nii.gz"
VAL_IMAGE = "pkg:nibabel/tests/data/anatomical.nii"


def _causes(err: BaseException) -> str:
    """The messages of an exception and of everything it was raised from (MONAI wraps config errors)."""
    messages = []
    while err is not None:
        messages.append(str(err))
        err = err.__cause__ or err.__context__
    return " | ".join(messages)


def _make_bundles_module():
    spec = importlib.util.spec_from_file_location("make_bundles", REPO / "bundles" / "make_bundles.py")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(REPO / "bundles"))
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def lr_sample(tmp_path_factory):
    """The shipped T1 sample degraded x2 in-plane: (LR file, HR volume)."""
    hr = load_volume(sample_path())
    path = tmp_path_factory.mktemp("lr") / "t1_lr.nii.gz"
    save_volume(KSpaceTruncate(2, axes=(0, 1))(hr), path)
    return path, hr


@pytest.fixture
def small_inputs(tmp_path):
    """A folder of two small real volumes (32 x 32 x 3 blocks of the T1 sample): a.nii.gz, b.nii.gz."""
    folder = tmp_path / "in"
    folder.mkdir()
    for name, z in (("a", 25), ("b", 35)):
        block = load_volume(sample_path())[0, 40:72, 40:72, z : z + 3].numpy()
        nib.save(nib.Nifti1Image(block, np.diag([2.0, 2.0, 3.0, 1.0])), folder / f"{name}.nii.gz")
    return folder


@pytest.fixture
def inferences(monkeypatch):
    """The names of the volumes the bundles' VolumeInferer super-resolves, call by call."""
    from mrsr.inference import VolumeInferer

    calls = []
    original = VolumeInferer.__call__

    def counting(self, inputs, network, *args, **kwargs):
        names = inputs.meta.get("filename_or_obj", "?") if isinstance(inputs, MetaTensor) else "?"
        calls.append([Path(n).name for n in (names if isinstance(names, (list, tuple)) else [names])])
        return original(self, inputs, network, *args, **kwargs)

    monkeypatch.setattr(VolumeInferer, "__call__", counting)
    return calls


@pytest.fixture
def tiny_manifest(tmp_path):
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps({"training": [{"image": TRAIN_IMAGE}], "validation": [{"image": VAL_IMAGE}]}))
    return str(path)


def test_every_bundle_is_found_by_name_alias_and_folder():
    assert [b.name for b in list_bundles()] == [f"{n}_mr_sr" for n in BUNDLE_NAMES]
    assert find_bundle("casnet") == find_bundle("MedGAN") == find_bundle("medgan_mr_sr")
    assert find_bundle(REPO / "bundles" / "msrn_mr_sr") == (REPO / "bundles" / "msrn_mr_sr").resolve()
    with pytest.raises(MrsrError, match="No bundle 'srgan'.*durn, iconet, medgan, msrn, wasa"):
        find_bundle("srgan")


def test_bundles_env_folders_come_first(tmp_path, monkeypatch):
    shutil.copytree(REPO / "bundles" / "msrn_mr_sr" / "configs", tmp_path / "msrn_mr_sr" / "configs")
    monkeypatch.setenv(BUNDLES_ENV, str(tmp_path))
    assert find_bundle("msrn") == tmp_path / "msrn_mr_sr"
    assert bundle_scales("msrn") == []  # that copy has no weights
    with pytest.raises(MrsrError, match="no weights for x2 \\(it has: none\\)"):
        load_bundle_network("msrn", 2)


@pytest.mark.parametrize("name", BUNDLE_NAMES)
def test_metadata_verifies_against_monai_schema(name, tmp_path):
    schema = tmp_path / "schema.json"
    shutil.copyfile(SCHEMA, schema)  # verify_metadata reuses an existing file instead of downloading
    verify_metadata(meta_file=str(find_bundle(name) / "configs" / "metadata.json"), filepath=str(schema))
    meta = read_metadata(name)
    assert meta["network_data_format"]["inputs"]["image"]["num_channels"] == 1
    assert meta["references"] and meta["intended_use"]


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
           "--bundle_root", str(root), "--input", str(lr_path), "--output_dir", str(tmp_path), "--scale", "4"]  # fmt: skip
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


@pytest.mark.parametrize("traceback", [False, True])
def test_monai_bundle_run_ends_bad_input_with_one_line(tmp_path, traceback):
    """MONAI prints every config error as a chain of tracebacks; the bundles' initialize step prints one line."""
    root = find_bundle("msrn")
    cmd = [sys.executable, "-m", "monai.bundle", "run", "--config_file", str(root / "configs" / "inference.json"),
           "--bundle_root", str(root), "--input", str(tmp_path / "missing.nii.gz"), "--output_dir", str(tmp_path / "out")]  # fmt: skip
    result = subprocess.run(
        cmd + (["--traceback", "True"] if traceback else []), capture_output=True, text=True, timeout=300
    )
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    if traceback:
        assert "Traceback" in result.stderr and "missing.nii.gz" in result.stderr
    else:
        assert "Traceback" not in result.stderr, result.stderr[-2000:]
        assert last.startswith("mrsr: error: No such file or folder") and "missing.nii.gz" in last
    assert not (tmp_path / "out").exists()


def test_monai_bundle_run_without_bundle_root_says_to_pass_it(tmp_path):
    """From the repository root without --bundle_root, MONAI's default bundle_root '.' is no bundle."""
    cmd = [sys.executable, "-m", "monai.bundle", "run", "--config_file", "bundles/msrn_mr_sr/configs/inference.json",
           "--output_dir", str(tmp_path / "out")]  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=REPO)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("mrsr: error:") and "--bundle_root bundles/msrn_mr_sr" in last
    assert not (tmp_path / "out").exists()


def test_find_bundle_of_a_folder_that_is_no_bundle_names_bundle_root(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(MrsrError, match="--bundle_root bundles/<name>_mr_sr"):
        find_bundle(".")


def test_ckpt_export_of_x4_weights_without_scale_says_pass_scale_4(tmp_path):
    """x4 weights into the config's default x2 network: one line that names the scale, no state_dict traceback."""
    root = find_bundle("msrn")
    cmd = [sys.executable, "-m", "monai.bundle", "ckpt_export", "network_def", "--filepath", str(tmp_path / "m.ts"),
           "--ckpt_file", str(weights_path(root, 4)), "--meta_file", str(root / "configs" / "metadata.json"),
           "--config_file", str(root / "configs" / "inference.json")]  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("mrsr: error:") and "scale 4" in last and "--scale 4" in last
    assert not (tmp_path / "m.ts").exists()


@pytest.mark.parametrize("name", ["durn", "iconet"])
def test_weights_of_another_scale_are_named_by_the_one_line_hook(name, tmp_path, monkeypatch, capsys):
    """The hook names the scale of a checkpoint that does not fit (size mismatches here, not extra tensors)."""
    root = find_bundle(name)
    args = _export_args(root, tmp_path / "m.ts")
    args["ckpt_file"] = str(weights_path(root, 4))
    argv = ["monai/bundle/__main__.py", "ckpt_export", "network_def"]
    for key, value in args.items():
        argv += [f"--{key}", value]
    monkeypatch.setattr(sys, "argv", argv)
    monkeypatch.setattr(sys, "excepthook", sys.__excepthook__)
    with pytest.raises(RuntimeError) as err:
        ckpt_export(**args)
    sys.excepthook(RuntimeError, err.value, err.value.__traceback__)
    printed = capsys.readouterr().err.strip()
    assert printed.startswith("mrsr: error:") and "scale 4" in printed and "--scale 4" in printed
    assert len(printed.splitlines()) == 1


def test_one_line_errors_finds_the_cause_in_monais_chain(monkeypatch, capsys):
    seen = []
    monkeypatch.setattr(sys, "excepthook", lambda *args: seen.append(args[1]))
    one_line_errors()
    one_line_errors()  # installed once
    try:
        try:
            raise MrsrError("No such file or folder: x.nii.gz")
        except MrsrError as cause:
            raise RuntimeError("Failed to evaluate ConfigExpression") from cause
    except RuntimeError as wrapped:
        sys.excepthook(RuntimeError, wrapped, wrapped.__traceback__)
    assert capsys.readouterr().err == "mrsr: error: No such file or folder: x.nii.gz\n"
    internal = KeyError("a bug")
    sys.excepthook(KeyError, internal, None)  # not bad input: the full report, as before
    assert seen == [internal]


def test_shipped_weights_names_the_scales_there_are():
    assert shipped_weights("msrn", 4) == str(weights_path("msrn", 4))
    with pytest.raises(MrsrError, match=r"no weights for x3 \(it has: x2, x4\)"):
        shipped_weights("msrn", 3)


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


def test_train_config_trains_the_default_size():
    for name in BUNDLE_NAMES:
        config = json.loads((find_bundle(name) / "configs" / "train.json").read_text())
        assert config["preset"] == "default"


def test_multi_gpu_config_needs_torchrun(tiny_manifest, tmp_path):
    root = find_bundle("msrn")
    files = [str(root / "configs" / "train.json"), str(root / "configs" / "multi_gpu_train.json")]
    with pytest.raises(RuntimeError) as err:
        bundle_run(config_file=files, bundle_root=str(root), manifest=tiny_manifest, output_dir=str(tmp_path / "r"))
    assert "runs under torchrun" in _causes(err.value)
    assert not (tmp_path / "r").exists()
    with pytest.raises(MrsrError):
        require_torchrun()


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


def _export_args(root: Path, filepath: Path) -> dict:
    """What monai.bundle's ckpt_export / onnx_export need for a bundle's x2 weights."""
    return {
        "net_id": "network_def",
        "filepath": str(filepath),
        "ckpt_file": str(weights_path(root, 2)),
        "meta_file": str(root / "configs" / "metadata.json"),
        "config_file": str(root / "configs" / "inference.json"),
        "bundle_root": str(root),
    }


@pytest.mark.parametrize("name", BUNDLE_NAMES)
def test_torchscript_export_matches_eager(name, tmp_path):
    root = find_bundle(name)
    ckpt_export(**_export_args(root, tmp_path / "model.ts"))
    exported = torch.jit.load(str(tmp_path / "model.ts")).eval()
    eager, in_channels = load_bundle_network(root, 2)
    for shape in [(2, in_channels, 28, 36), (1, in_channels, 33, 21)]:  # scripted: any slice size
        x = torch.rand(*shape)
        with torch.no_grad():
            torch.testing.assert_close(exported(x), eager(x), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", BUNDLE_NAMES)
def test_onnx_export_matches_eager_at_its_slice_size(name, tmp_path):
    """ONNX (torch.export-based, as monai.bundle onnx_export on torch >= 2.9) at a fixed slice size, run by onnxruntime."""
    ort = pytest.importorskip("onnxruntime", reason="pip install -e .[export]")
    root = find_bundle(name)
    onnx_export(**_export_args(root, tmp_path / "model.onnx"), input_shape=[1, 1, 40, 48], use_trace=False)
    session = ort.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
    eager, _ = load_bundle_network(root, 2)
    x = torch.rand(1, 1, 40, 48)
    (y,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    with torch.no_grad():
        torch.testing.assert_close(torch.from_numpy(y), eager(x), rtol=1e-4, atol=1e-5)


def test_generated_files_match_make_bundles(tmp_path):
    """The committed configs are what bundles/make_bundles.py writes (edit the script, not the JSON)."""
    make = _make_bundles_module()
    for name in BUNDLE_NAMES:
        root = find_bundle(name)
        assert json.loads((root / "configs" / "inference.json").read_text()) == make.inference_config(name)
        assert json.loads((root / "configs" / "train.json").read_text()) == make.train_config(name)
        assert json.loads((root / "configs" / "evaluate.json").read_text()) == make.evaluate_config()
        assert json.loads((root / "configs" / "multi_gpu_train.json").read_text()) == make.MULTI_GPU
        meta = read_metadata(name)
        expected = make.metadata(name, meta)
        versions = ("monai_version", "pytorch_version", "numpy_version")  # of the machine that wrote them
        assert {k: v for k, v in meta.items() if k not in versions} == {
            k: v for k, v in expected.items() if k not in versions
        }
        assert (root / "LICENSE").read_text() == (REPO / "LICENSE").read_text()
        card = (root / "docs" / "README.md").read_text()
        assert card == make.model_card_text(name, meta)


def test_model_cards_state_every_test_image_and_the_harm():
    _make_bundles_module()  # puts bundles/ on the path
    from model_card import do_no_harm_sentence

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


# the stored numbers are what evaluate_bundle measures now (adaptation left out: it takes minutes)
@pytest.mark.slow
@pytest.mark.parametrize("name", BUNDLE_NAMES)
def test_stored_scores_are_reproduced_at_x2(name):
    report = evaluate_bundle(name, REPO / "data_manifests" / "real_data.json", scale=2, device="cpu")
    stored = read_metadata(name)["eval_metrics"]["x2"]
    for image, scores in report["volumes"].items():
        for method in (name, f"{name} +dc", "zerofill", "bicubic"):
            assert scores[method]["psnr"] == pytest.approx(stored["volumes"][image][method]["psnr"], abs=0.01)


def test_evaluate_bundle_scores_against_both_baselines(tmp_path):
    manifest = tmp_path / "m.json"
    manifest.write_text(json.dumps({"test": [{"image": VAL_IMAGE, "name": "anat"}]}))
    report = evaluate_bundle("msrn", manifest, scale=2, device="cpu", output=tmp_path / "eval" / "x2.json")
    assert set(report["volumes"]["anat"]) == {"msrn", "msrn +dc", "zerofill", "bicubic"}
    assert json.loads((tmp_path / "eval" / "x2.json").read_text())["mean"]["msrn"]["psnr"] == pytest.approx(
        report["mean"]["msrn"]["psnr"]
    )
    x4 = evaluate_bundle("msrn", manifest, scale=4, device="cpu")  # the baselines upsample x4 too
    assert x4["volumes"]["anat"]["zerofill"]["psnr"] < report["volumes"]["anat"]["zerofill"]["psnr"] - 1
    with pytest.raises(MrsrError, match="no 'validation' section"):
        evaluate_bundle("msrn", manifest, section="validation")


def test_install_weights_checks_the_fit(tmp_path, monkeypatch):
    shutil.copytree(find_bundle("msrn"), tmp_path / "msrn_mr_sr")
    monkeypatch.setenv(BUNDLES_ENV, str(tmp_path))
    network, in_channels = load_bundle_network("msrn", 2)
    kwargs = json.loads((tmp_path / "msrn_mr_sr" / "configs" / "inference.json").read_text())["network_def"]
    kwargs = {k: (2 if k == "scale" else v) for k, v in kwargs.items() if not k.startswith("_")}
    with torch.no_grad():
        for p in network.parameters():
            p.add_(0.01)
    save_weights(tmp_path / "w.pt", network, "msrn", kwargs)
    out = install_weights(tmp_path / "w.pt", "msrn", 2)
    loaded, _ = load_bundle_network("msrn", 2)
    for a, b in zip(loaded.state_dict().values(), network.state_dict().values()):
        torch.testing.assert_close(a, b)
    before = out.read_bytes()
    from mrsr.networks import MSRN

    save_weights(tmp_path / "other.pt", MSRN(features=8, num_blocks=1), "msrn", {"features": 8, "num_blocks": 1})
    with pytest.raises(MrsrError, match="features=8 \\(bundle: 16\\)"):
        install_weights(tmp_path / "other.pt", "msrn", 2)
    # same tensors, another residual: only the options tell
    save_weights(tmp_path / "cubic.pt", network, "msrn", {**kwargs, "global_residual": "cubic"})
    with pytest.raises(MrsrError, match="global_residual='cubic' \\(bundle: 'sinc_reflect'\\)"):
        install_weights(tmp_path / "cubic.pt", "msrn", 2)
    save_weights(tmp_path / "x4.pt", network, "msrn", kwargs)
    with pytest.raises(MrsrError, match="scale=2 \\(bundle: 4\\)"):
        install_weights(tmp_path / "x4.pt", "msrn", 4)
    assert out.read_bytes() == before  # the bundle keeps its weights


