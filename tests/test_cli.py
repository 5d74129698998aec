"""The mrsr command: real runs through subprocesses, every bad input as one line and exit code 2."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from mrsr.cli import main
from mrsr.data import load_volume, sample_path
from tests.conftest import CT5N, MR700, PYDICOM_FILES


def run(*args: str, cwd=None) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    return subprocess.run(
        [sys.executable, "-m", "mrsr", *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=300
    )


def test_degrade_infer_evaluate_pipeline(tmp_path):
    lr, sr, report = tmp_path / "lr.nii.gz", tmp_path / "sr.nii.gz", tmp_path / "m.json"
    assert run("degrade", str(sample_path()), "-o", str(lr), "--scale", "2").returncode == 0
    done = run("infer", str(lr), "-o", str(sr), "--network", "zerofill", "--scale", "2", "--device", "cpu")
    assert done.returncode == 0, done.stderr
    hr_img, sr_img = load_volume(sample_path()), load_volume(sr)
    assert sr_img.shape == hr_img.shape and torch.allclose(sr_img.affine, hr_img.affine)
    done = run("evaluate", "--sr", str(sr), "--hr", str(sample_path()), "--json", str(report), "--border", "2")
    assert done.returncode == 0 and "PSNR" in done.stdout and "border 2" in done.stdout
    scores = json.loads(report.read_text())
    assert 25 < scores["psnr"] < 60 and 0.5 < scores["ssim"] < 1


def _best_bundle(scale: int = 2) -> str | None:
    """The demo's pick: the best stored test PSNR among the bundles that do no harm on any test image."""
    from mrsr.bundle import list_bundles, read_metadata

    scores = {b.name[:-6]: read_metadata(b)["eval_metrics"][f"x{scale}"] for b in list_bundles()}
    harmless = {name: m["psnr"] for name, m in scores.items() if m["do_no_harm"]}
    return max(harmless, key=harmless.get) if harmless else None


def test_demo_runs_the_best_harmless_bundle_and_writes_volumes_metrics_and_panel(tmp_path):
    done = run("demo", "-o", str(tmp_path / "demo"))
    assert done.returncode == 0, done.stderr
    best = _best_bundle()
    names = sorted(p.name for p in (tmp_path / "demo").iterdir())
    expected = ["hr.nii.gz", "lr.nii.gz", "metrics.json", "panel.png", "sr_bicubic.nii.gz", "sr_zerofill.nii.gz"]
    assert names == sorted(expected + ([f"sr_{best}.nii.gz"] if best else []))
    if best is None:  # every bundle loses to zerofill on some test image: the demo says so and shows none
        assert "lose more than 0.1 dB to zerofill on some test image" in done.stderr
    assert (tmp_path / "demo" / "panel.png").read_bytes()[:4] == b"\x89PNG"
    metrics = json.loads((tmp_path / "demo" / "metrics.json").read_text())
    assert metrics["zerofill"]["psnr"] > 25 and "| zerofill |" in done.stdout
    assert metrics["zerofill"]["psnr"] > metrics["bicubic"]["psnr"]
    again = run("demo", "-o", str(tmp_path / "demo"))
    assert again.returncode == 2 and "--overwrite" in again.stderr
    assert main(["demo", "-o", str(tmp_path / "demo"), "--overwrite", "--bundle", "wasa"]) == 0  # named: it runs
    metrics = json.loads((tmp_path / "demo" / "metrics.json").read_text())
    assert sorted(metrics) == ["bicubic", "wasa", "zerofill"]
    assert metrics["wasa"]["psnr"] > metrics["zerofill"]["psnr"]  # real weights on the real (validation) T1 scan
    assert main(["demo", "-o", str(tmp_path / "demo"), "--overwrite", "--bundle", "none"]) == 0
    assert sorted(json.loads((tmp_path / "demo" / "metrics.json").read_text())) == ["bicubic", "zerofill"]
    assert [p.name for p in tmp_path.iterdir()] == ["demo"]  # replaced whole, no temporary folders left


def test_infer_with_a_bundle_lands_on_the_hr_grid(tmp_path):
    lr, sr = tmp_path / "lr.nii.gz", tmp_path / "sr.nii.gz"
    assert main(["degrade", str(sample_path()), "-o", str(lr)]) == 0
    assert main(["infer", str(lr), "-o", str(sr), "--bundle", "msrn", "--device", "cpu"]) == 0
    hr_img, sr_img = load_volume(sample_path()), load_volume(sr)
    assert sr_img.shape == hr_img.shape and torch.allclose(sr_img.affine, hr_img.affine)


def _thick_axis_first(tmp_path) -> Path:
    """A real 12 x 32 x 32 block of the T1 sample stored slices-first, at 5 x 1 x 1 mm."""
    import nibabel as nib

    block = load_volume(sample_path())[0, 40:72, 40:72, 25:37].permute(2, 0, 1).numpy()
    path = tmp_path / "thick_first.nii.gz"
    nib.save(nib.Nifti1Image(block, np.diag([5.0, 1.0, 1.0, 1.0])), path)
    return path


def test_cli_and_bundle_take_the_same_slice_axis(tmp_path, capsys):
    """Both default to auto (the 5 mm axis here): the same volume, grid and values from either."""
    from monai.bundle import run as bundle_run

    from mrsr.bundle import find_bundle

    thick, cli_out = _thick_axis_first(tmp_path), tmp_path / "cli.nii.gz"
    assert main(["infer", str(thick), "-o", str(cli_out), "--bundle", "msrn", "--device", "cpu"]) == 0
    assert "12 slices across axis 0 (auto" in capsys.readouterr().err
    root = find_bundle("msrn")
    bundle_run(config_file=str(root / "configs" / "inference.json"), bundle_root=str(root), input=str(thick),
               output_dir=str(tmp_path / "bundle"), device="cpu")  # fmt: skip
    cli, bundle = load_volume(cli_out), load_volume(tmp_path / "bundle" / "thick_first_sr_x2.nii.gz")
    assert cli.shape == bundle.shape == (1, 12, 64, 64)
    np.testing.assert_allclose(cli.pixdim.tolist(), [5.0, 0.5, 0.5])
    torch.testing.assert_close(cli.affine, bundle.affine)
    torch.testing.assert_close(cli, bundle, atol=1e-4 * float(cli.abs().max()), rtol=0)


def test_infer_is_data_consistent_by_default_and_says_so(tmp_path):
    import nibabel as nib

    from mrsr.bundle import bundle_detail
    from mrsr.transforms import fourier_resize

    one = tmp_path / "one.nii.gz"  # a single 4 mm slice: the output keeps its third axis and thickness
    hr = load_volume(sample_path())
    nib.save(nib.Nifti1Image(hr[0, :, :, 30:31].numpy(), hr.affine.numpy()), one)
    lr, on, off, full = (tmp_path / f"{name}.nii.gz" for name in ("lr", "on", "off", "full"))
    assert main(["degrade", str(one), "-o", str(lr)]) == 0
    assert main(["infer", str(lr), "-o", str(on), "--bundle", "msrn"]) == 0
    assert main(["infer", str(lr), "-o", str(off), "--bundle", "msrn", "--no-data-consistency"]) == 0
    assert main(["infer", str(lr), "-o", str(full), "--bundle", "msrn", "--detail", "1"]) == 0
    detail = f"; detail {bundle_detail('msrn', 2):g}".encode()  # the bundle's own share of the detail it adds
    for path, state in ((on, b"on" + detail), (off, b"off" + detail), (full, b"on")):
        image = nib.load(path)
        assert image.shape == (128, 128, 1) and image.header.get_zooms() == (2.0, 2.0, 3.0)
        assert image.header["descrip"].tobytes().rstrip(b"\0") == b"mrsr bundle msrn x2; data consistency " + state
    lr_data = torch.as_tensor(nib.load(lr).get_fdata(), dtype=torch.float32)
    for path, consistent in ((on, True), (off, False), (full, True)):
        back = fourier_resize(torch.as_tensor(nib.load(path).get_fdata(), dtype=torch.float32), (64, 64), (0, 1)).abs()
        error = float((back - lr_data).abs().max() / lr_data.abs().max())
        assert (error < 1e-4) == consistent, (path, error)  # float32 files: 1e-5 before the intensities are restored


def test_infer_adapts_and_reports_its_choice(tmp_path, capsys):
    lr, sr = tmp_path / "lr.nii.gz", tmp_path / "sr.nii.gz"
    assert main(["degrade", str(sample_path()), "-o", str(lr)]) == 0
    capsys.readouterr()
    assert main(["infer", str(lr), "-o", str(sr), "--bundle", "msrn", "--adapt", "4", "--seed", "1"]) == 0
    err = capsys.readouterr().err
    assert "adapting to lr.nii.gz (4 steps)" in err and "internal validation on 12 of 62 slices" in err
    assert "using " in err and f"wrote {sr}" in err


def test_bundles_lists_every_bundle_with_scores(capsys):
    assert main(["bundles"]) == 0
    table = capsys.readouterr().out
    assert "| bundles/msrn_mr_sr |" in table or "msrn_mr_sr |" in table
    for name in ("durn", "iconet", "medgan", "msrn", "wasa"):
        assert f"| {name} | 0.1.0 | x2, x4 |" in table
    assert main(["bundles", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["bundle"] for r in rows} == {"durn", "iconet", "medgan", "msrn", "wasa"}
    for r in rows:
        x2 = r["eval_metrics"]["x2"]
        margins = f"({x2['psnr'] - x2['psnr_zerofill']:+.2f}, {x2['psnr'] - x2['psnr_bicubic']:+.2f})"
        assert f"{x2['psnr']:.2f} dB {margins}" in table


def test_dicom_in_dicom_out(tmp_path):
    out = tmp_path / "sr_series"
    done = run("infer", str(CT5N), "-o", str(out), "--network", "bicubic", "--scale", "2")
    assert done.returncode == 0, done.stderr
    src, sr = load_volume(CT5N), load_volume(out)
    assert sr.shape == (1, 32, 32, 5)
    torch.testing.assert_close(sr.affine[:, 2:], src.affine[:, 2:])
    torch.testing.assert_close(sr.affine[:, :2], src.affine[:, :2] / 2)


def test_network_with_weights_through_the_cli(tmp_path):
    from mrsr.checkpoint import save_weights
    from mrsr.networks import get_network, presets

    kwargs = {**presets("msrn")["small"], "scale": 2, "in_channels": 3}
    weights = save_weights(tmp_path / "msrn.pt", get_network("msrn", **kwargs), "msrn", kwargs)
    lr, sr = tmp_path / "lr.nii.gz", tmp_path / "sr.nii.gz"
    assert main(["degrade", str(sample_path()), "-o", str(lr)]) == 0
    argv = ["infer", str(lr), "-o", str(sr), "--network", "msrn", "--weights", str(weights), "--device", "cpu"]
    assert main(argv + ["--roi", "40", "40", "--channels-last"]) == 0
    hr_img, sr_img = load_volume(sample_path()), load_volume(sr)
    assert sr_img.shape == hr_img.shape and torch.allclose(sr_img.affine, hr_img.affine)
    assert main(argv[:-4] + ["--device", "cpu"]) == 2  # no --weights: a clear error


def test_bad_input_is_one_line_exit_2_without_traceback(tmp_path):
    done = run("infer", str(tmp_path / "missing.nii.gz"), "-o", str(tmp_path / "out.nii.gz"))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().count("\n") == 0 and "No such file" in done.stderr
    assert list(tmp_path.iterdir()) == []
    loud = run("infer", str(tmp_path / "missing.nii.gz"), "-o", str(tmp_path / "out.nii.gz"), "--traceback")
    assert "Traceback" in loud.stderr


COMMANDS = ["degrade", "selfsr", "synth", "infer", "evaluate", "demo", "networks", "bundles", "train", "benchmark"]


@pytest.mark.parametrize("command", COMMANDS)
def test_help_explains_every_option_and_states_defaults_once(command, capsys):
    import re

    from mrsr.cli import build_parser

    with pytest.raises(SystemExit) as stop:
        main([command, "--help"])
    out = capsys.readouterr().out
    assert stop.value.code == 0 and f"usage: mrsr {command}" in out
    assert "--traceback" in out
    text = " ".join(out.split())
    assert "(default: None)" not in text
    assert not re.search(r"\(default[^)]*\) \(default", text), "a default stated twice"
    sub = next(a for a in build_parser()._actions if a.dest == "command").choices[command]
    assert sub.description, f"mrsr {command} has no description"


def test_required_output_shows_no_default(capsys):
    with pytest.raises(SystemExit):
        main(["degrade", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "output .nii/.nii.gz file or DICOM folder --scale" in text  # no (default: None) after -o's help


def test_degrade_defaults_to_the_in_plane_axes_of_the_auto_slice_axis(tmp_path, capsys):
    out = tmp_path / "lr.nii.gz"
    assert main(["degrade", str(_thick_axis_first(tmp_path)), "-o", str(out)]) == 0
    assert load_volume(out).shape == (1, 12, 16, 16)
    assert "axes 1 2: in-plane, auto" in capsys.readouterr().err


def test_networks_reports_each_network_as_it_goes(capsys):
    assert main(["networks", "--networks", "msrn", "wasa", "--presets", "small", "--no-timing"]) == 0
    err = capsys.readouterr().err
    assert "[1/2] building msrn (small)" in err and "[2/2] building wasa (small)" in err


def test_infer_logs_stages_and_progress_when_not_on_a_terminal(tmp_path):
    """stderr is a pipe here: stage lines, a progress line per interval (every one here) and 'wrote'."""
    lr, sr = tmp_path / "lr.nii.gz", tmp_path / "sr.nii.gz"
    assert main(["degrade", str(sample_path()), "-o", str(lr)]) == 0
    env = dict(os.environ, PYTHONWARNINGS="ignore", MRSR_PROGRESS_EVERY="0")
    done = subprocess.run([sys.executable, "-m", "mrsr", "infer", str(lr), "-o", str(sr), "--bundle", "msrn",
                           "--slice-batch", "16", "--device", "cpu"], capture_output=True, text=True, env=env,
                          timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert lines[0].startswith("bundle msrn: lr.nii.gz (64, 64, 62)") and "62 slices across axis 2" in lines[0]
    assert any("super-resolving: 4/4 slice batch (100%)" in line for line in lines), lines
    assert lines[-1].startswith("bundle msrn:") and f"wrote {sr}" in lines[-1]


def _nan_volume(tmp_path):
    import nibabel as nib
    import numpy as np

    data = np.ones((8, 8, 4), np.float32)
    data[1, 1, 1] = np.nan
    nib.save(nib.Nifti1Image(data, np.eye(4)), tmp_path / "nan.nii.gz")
    return tmp_path / "nan.nii.gz"


def _tiny_volume(tmp_path):
    import nibabel as nib
    import numpy as np

    data = np.random.default_rng(0).random((12, 12, 3), np.float32)
    nib.save(nib.Nifti1Image(data, np.eye(4)), tmp_path / "tiny.nii.gz")
    return tmp_path / "tiny.nii.gz"


def _two_series(tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    for src in (CT5N, MR700):
        for p in src.iterdir():
            shutil.copy(p, folder / f"{src.name}_{p.name}")
    return folder


def _no_images(tmp_path):
    folder = tmp_path / "noimg"
    folder.mkdir()
    shutil.copy(PYDICOM_FILES / "rtplan.dcm", folder)
    return folder


def _truncated(tmp_path):
    path = tmp_path / "cut.nii.gz"
    path.write_bytes(sample_path().read_bytes()[:4000])
    return path


def _pickle(tmp_path):
    import pickle

    path = tmp_path / "w.pt"
    path.write_bytes(pickle.dumps({"state_dict": print}))
    return path


def _blocker(tmp_path):
    (tmp_path / "file").write_text("x")
    return tmp_path / "file"


BAD = [
    ("missing file", lambda t: ["infer", str(t / "nope.nii.gz"), "-o", str(t / "o.nii.gz")], "No such file"),
    ("truncated", lambda t: ["infer", str(_truncated(t)), "-o", str(t / "o.nii.gz")], "truncated"),
    ("no images", lambda t: ["infer", str(_no_images(t)), "-o", str(t / "o.nii.gz")], "no images"),
    ("two series", lambda t: ["infer", str(_two_series(t)), "-o", str(t / "o.nii.gz")], "2 DICOM series"),
    (
        "non-image dicom",
        lambda t: ["degrade", str(PYDICOM_FILES / "rtplan.dcm"), "-o", str(t / "o.nii.gz")],
        "without an image",
    ),
    ("nan", lambda t: ["degrade", str(_nan_volume(t)), "-o", str(t / "o.nii.gz")], "NaN/Inf"),
    ("scale below 1", lambda t: ["degrade", str(sample_path()), "-o", str(t / "o.nii.gz"), "--scale", "0.5"], ">= 1"),
    (
        "too small",
        lambda t: ["degrade", str(sample_path()), "-o", str(t / "o.nii.gz"), "--scale", "50", "--axes", "2"],
        "would leave",
    ),
    (
        "output is input",
        lambda t: ["degrade", str(sample_path()), "-o", str(sample_path()), "--overwrite"],
        "overwrite the input",
    ),
    (
        "unwritable folder",
        lambda t: ["degrade", str(sample_path()), "-o", str(_blocker(t) / "o.nii.gz")],
        "Cannot create",
    ),
    ("existing output", lambda t: ["degrade", str(sample_path()), "-o", str(_blocker(t))], "exists"),
    (
        "unknown network",
        lambda t: ["infer", str(sample_path()), "-o", str(t / "o.nii.gz"), "--network", "magic"],
        "Unknown network",
    ),
    ("shape mismatch", lambda t: ["evaluate", "--sr", str(CT5N), "--hr", str(sample_path())], "differs"),
    ("non-parallel to nifti", lambda t: ["infer", str(MR700), "-o", str(t / "o.nii.gz")], "not parallel"),
    (
        "network without weights",
        lambda t: ["infer", str(sample_path()), "-o", str(t / "o.nii.gz"), "--network", "durn"],
        "--weights",
    ),
    (
        "unknown bundle",
        lambda t: ["infer", str(sample_path()), "-o", str(t / "o.nii.gz"), "--bundle", "srgan"],
        "No bundle 'srgan'",
    ),
    (
        "bundle and network",
        lambda t: ["infer", str(sample_path()), "-o", str(t / "o.nii.gz"), "--bundle", "msrn", "--network", "msrn"],
        "either --bundle",
    ),
    (
        "bundle without that scale",
        lambda t: ["infer", str(sample_path()), "-o", str(t / "o.nii.gz"), "--bundle", "msrn", "--scale", "3"],
        "no weights for x3",
    ),
    (
        "bundle at a fractional scale",
        lambda t: ["infer", str(sample_path()), "-o", str(t / "o.nii.gz"), "--bundle", "msrn", "--scale", "2.5"],
        "integer factor",
    ),
    ("demo with an unknown bundle", lambda t: ["demo", "-o", str(t / "d"), "--bundle", "srgan"], "No bundle"),
    (
        "adapting a baseline",
        lambda t: ["infer", str(sample_path()), "-o", str(t / "o.nii.gz"), "--network", "zerofill", "--adapt"],
        "nothing to adapt",
    ),
    (
        "too small to adapt on",
        lambda t: ["infer", str(_tiny_volume(t)), "-o", str(t / "o.nii.gz"), "--bundle", "msrn", "--adapt", "5"],
        "too small to adapt on",
    ),
    (
        "negative adaptation steps",
        lambda t: ["infer", str(sample_path()), "-o", str(t / "o.nii.gz"), "--bundle", "msrn", "--adapt", "-3"],
        "expected a whole number >= 0",
    ),
    (
        "detail out of range",
        lambda t: ["infer", str(sample_path()), "-o", str(t / "o.nii.gz"), "--bundle", "msrn", "--detail", "1.5"],
        "expected a number from 0 to 1, got 1.5",
    ),
    (
        "detail of a baseline",
        lambda t: ["infer", str(sample_path()), "-o", str(t / "o.nii.gz"), "--detail", "0.5"],
        "--detail scales what a network adds",
    ),
    (
        "unsafe weights",
        lambda t: [
            "infer",
            str(sample_path()),
            "-o",
            str(t / "o.nii.gz"),
            "--network",
            "msrn",
            "--weights",
            str(_pickle(t)),
        ],
        "safe",
    ),
]


def _check_bad_input(tmp_path, capsys, name, argv, message):
    """Exit 2, one stderr line that says what is wrong, no traceback, nothing written, every input unchanged."""
    before = sorted(p.name for p in tmp_path.rglob("*"))
    sample = _checksum(sample_path())
    args = argv(tmp_path)
    made = sorted(p.name for p in tmp_path.rglob("*"))
    inputs = {p: _checksum(p) for p in tmp_path.rglob("*") if p.is_file()}
    try:
        code = main(args)
    except SystemExit as stop:  # argparse's own usage errors
        code = stop.code
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert message in err and "Traceback" not in err
    assert len(err.splitlines()) == 1, err  # argparse's own errors too: no usage block
    assert "weights_only" not in err and "\x1b" not in err  # not PyTorch's unsafe advice or terminal codes
    assert sorted(p.name for p in tmp_path.rglob("*")) == made  # nothing partial left behind
    assert before == [] or before == made
    assert {p: _checksum(p) for p in inputs} == inputs and _checksum(sample_path()) == sample  # inputs untouched


def _checksum(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def test_batch_infer_over_a_folder_is_resumable_and_shardable(tmp_path, monkeypatch):
    inputs = tmp_path / "lr"
    inputs.mkdir()
    for name in ("a.nii.gz", "b.nii.gz", "c.nii.gz"):
        assert main(["degrade", str(sample_path()), "-o", str(inputs / name), "--scale", "2"]) == 0
    out = tmp_path / "sr"
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")  # as under torchrun: rank 1 of 2 takes b only
    assert main(["infer", str(inputs), "-o", str(out), "--network", "zerofill"]) == 0
    assert sorted(p.name for p in out.glob("*.nii.gz")) == ["b.nii.gz"]  # beside the part's status file
    monkeypatch.delenv("RANK")
    monkeypatch.delenv("WORLD_SIZE")
    before = (out / "b.nii.gz").stat().st_mtime_ns
    done = run("infer", str(inputs), "-o", str(out), "--network", "zerofill")
    assert done.returncode == 0 and "2 written, 1 already done" in done.stderr
    assert (out / "b.nii.gz").stat().st_mtime_ns == before  # finished outputs are kept
    assert load_volume(out / "c.nii.gz").shape == (1, 128, 128, 62)


def test_batch_infer_over_a_manifest(tmp_path):
    lr = tmp_path / "data" / "lr.nii.gz"
    assert main(["degrade", str(sample_path()), "-o", str(lr), "--scale", "2"]) == 0
    manifest = tmp_path / "m.json"
    manifest.write_text(json.dumps({"test": [{"image": "lr.nii.gz"}, {"image": "gone.nii.gz"}]}))
    done = run("infer", "--manifest", str(manifest), "--data-root", str(tmp_path / "data"), "-o", str(tmp_path / "o"))
    assert done.returncode == 2 and "gone.nii.gz" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    manifest.write_text(json.dumps({"test": [{"image": "lr.nii.gz"}]}))
    done = run("infer", "--manifest", str(manifest), "--data-root", str(tmp_path / "data"), "-o", str(tmp_path / "o"))
    assert done.returncode == 0, done.stderr
    assert load_volume(tmp_path / "o" / "lr.nii.gz").shape == (1, 128, 128, 62)
    done = run(
        "infer",
        "--manifest",
        str(manifest),
        "--data-root",
        str(tmp_path / "data"),
        "-o",
        str(tmp_path / "o"),
        "--section",
        "training",
    )
    assert done.returncode == 2 and "training" in done.stderr


@pytest.mark.parametrize(
    "args,message",
    [
        (["train", "--manifest", "m.json"], "needs --network"),
        (["train", "--network", "msrn", "--manifest", "nowhere.json"], "nowhere.json"),
        (["train", "--network", "nonet", "--manifest", "REAL"], "nonet"),
        (["train", "--network", "msrn", "--manifest", "REAL", "--patch-size", "0"], "patch_size"),
        (["train", "--network", "msrn", "--manifest", "REAL", "--windows", "gauss"], "window"),
        (["train", "--out", "no_such_run", "--resume"], "No checkpoint"),
    ],
)
def test_train_bad_input_is_one_line(tmp_path, args, message):
    real = str(Path(__file__).resolve().parents[1] / "data_manifests" / "real_data.json")
    args = [real if a == "REAL" else a for a in args]
    out = [] if "--out" in args else ["--out", str(tmp_path / "run")]
    done = run(*args, *out, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.strip().splitlines() if "nvImageCodec" not in line]
    assert len(lines) == 1 and lines[0].startswith("mrsr: error:") and message in lines[0], done.stderr
    assert not (tmp_path / "run").exists()


def test_train_flags_reach_the_config():
    from mrsr.cli import build_parser, train_config_from_args

    argv = [
        "train",
        "--network",
        "iconet",
        "--manifest",
        "m.json",
        "--balance-volumes",
        "--loss",
        '{"rec_weight": 0.1}',
        "--warmup",
        "100",
        "--grad-clip",
        "0.5",
    ]
    config = train_config_from_args(build_parser().parse_args(argv))
    assert config.balance_volumes is True and config.loss == {"rec_weight": 0.1}
    assert config.warmup == 100 and config.grad_clip == 0.5
    plain = train_config_from_args(build_parser().parse_args(argv[:5]))
    assert plain.balance_volumes is False and plain.warmup == 0 and plain.grad_clip is None
    assert plain.data_consistency is False
    argv[2] = "msrn"
    assert train_config_from_args(build_parser().parse_args([*argv, "--data-consistency"])).data_consistency is True


def test_batch_infer_over_the_real_test_section_reads_headerless_images(tmp_path):
    manifest = Path(__file__).resolve().parents[1] / "data_manifests" / "real_data.json"
    assert main(["infer", "--manifest", str(manifest), "--section", "test", "--network", "zerofill",
                 "-o", str(tmp_path / "o")]) == 0  # fmt: skip
    names = sorted(p.name for p in (tmp_path / "o").glob("*.nii*"))  # the volumes, not the status file
    assert len(names) == 6 and "s1045.ima.gz.nii.gz" in names and "t1_coronal_slice.npy.nii.gz" in names
    assert load_volume(tmp_path / "o" / "s1045.ima.gz.nii.gz").shape == (1, 512, 512, 1)  # raw layout 256x256


def test_degrade_thick_slices_of_the_real_sample(tmp_path, capsys):
    out = tmp_path / "thick.nii.gz"
    assert main(["degrade", str(sample_path()), "-o", str(out), "--axes", "2", "--scale", "2",
                 "--slice-profile", "box"]) == 0  # fmt: skip
    assert "thick slices across axis 2, factor 2, profile box" in capsys.readouterr().err
    hr, lr = load_volume(sample_path()), load_volume(out)
    assert lr.shape == (1, 128, 128, 31)
    expected = hr.affine.double().clone()
    expected[:3, 3] += expected[:3, 2] * 0.5  # the centre of HR slices 0 and 1
    expected[:3, 2] *= 2
    assert torch.allclose(lr.affine.double(), expected, atol=1e-4)
    slabs = hr[0].as_tensor().reshape(128, 128, 31, 2).mean(-1)
    assert torch.allclose(lr[0].as_tensor(), slabs, atol=1e-4 * float(hr.max()))


def test_degrade_thick_slices_in_mm_on_the_auto_slice_axis(tmp_path, capsys):
    out, profile = tmp_path / "thick.nii.gz", tmp_path / "profile.npy"
    assert main(["degrade", str(sample_path()), "-o", str(out), "--scale", "3", "--slice-profile", "gaussian",
                 "--thickness", "6"]) == 0  # fmt: skip
    assert "across axis 2, auto, factor 3, profile gaussian, thickness 6 mm" in capsys.readouterr().err
    assert load_volume(out).shape == (1, 128, 128, 20)
    np.save(profile, np.array([1.0, 2.0, 1.0]))
    gapped = tmp_path / "gap.nii.gz"  # 3 mm slices, 6 mm of the 9 mm spacing: HR slice 3k+1 alone
    assert main(["degrade", str(sample_path()), "-o", str(gapped), "--scale", "3", "--slice-profile", "box",
                 "--gap", "6"]) == 0  # fmt: skip
    hr = load_volume(sample_path())[0].as_tensor()
    assert torch.allclose(load_volume(gapped)[0].as_tensor(), hr[..., 1:60:3], atol=1e-4 * float(hr.max()))
    assert main(["degrade", str(sample_path()), "-o", str(tmp_path / "p.nii.gz"), "--scale", "3",
                 "--slice-profile", str(profile)]) == 0  # fmt: skip
    assert main(["degrade", str(sample_path()), "-o", str(tmp_path / "k.nii.gz"), "--scale", "3",
                 "--slice-profile", "kspace"]) == 0  # fmt: skip
    ideal = load_volume(tmp_path / "k.nii.gz")
    assert ideal.shape == (1, 128, 128, 20) and torch.allclose(ideal.affine, load_volume(gapped).affine)


def _not_1d_profile(tmp_path):
    np.save(tmp_path / "p.npy", np.ones((3, 3)))
    return tmp_path / "p.npy"


def _profile(tmp_path):
    np.save(tmp_path / "p.npy", np.array([1.0, 2.0, 1.0]))
    return tmp_path / "p.npy"


def _degrade(t, *options):
    return ["degrade", str(sample_path()), "-o", str(t / "o.nii.gz"), *options]


BAD_THICK_SLICES = [
    ("several axes", lambda t: _degrade(t, "--axes", "0", "2", "--slice-profile", "box"), "one axis"),
    ("gap without profile", lambda t: _degrade(t, "--gap", "1"), "with --slice-profile"),
    ("thickness without profile", lambda t: _degrade(t, "--thickness", "4"), "with --slice-profile"),
    ("negative thickness", lambda t: _degrade(t, "--slice-profile", "box", "--thickness", "-2"), "> 0 mm"),
    ("negative gap", lambda t: _degrade(t, "--slice-profile", "box", "--gap", "-1"), ">= 0 mm"),
    ("profile not 1D", lambda t: _degrade(t, "--slice-profile", str(_not_1d_profile(t))), "1D array"),
    ("missing profile", lambda t: _degrade(t, "--slice-profile", str(t / "none.npy")), "No such file"),
    ("unknown profile", lambda t: _degrade(t, "--slice-profile", "sinc"), "box, gaussian, kspace or a .npy"),
    ("kspace width", lambda t: _degrade(t, "--slice-profile", "kspace", "--thickness", "3"), "one slice spacing"),
    ("fractional scale", lambda t: _degrade(t, "--slice-profile", "box", "--scale", "2.5"), "integer --scale"),
    ("too large", lambda t: _degrade(t, "--slice-profile", "box", "--scale", "40"), "would leave"),
    (
        "thickness and gap off the spacing",
        lambda t: _degrade(t, "--slice-profile", "box", "--thickness", "4", "--gap", "3"),
        "must equal the slice spacing",
    ),
    (
        "width of a file profile",
        lambda t: _degrade(t, "--slice-profile", str(_profile(t)), "--gap", "1"),
        "drop --thickness and --gap",
    ),
    ("k-space option", lambda t: _degrade(t, "--slice-profile", "box", "--window", "hamming"), "--window belongs"),
    (
        "gap beyond the slice spacing",
        lambda t: _degrade(t, "--slice-profile", "box", "--gap", "100"),
        "--gap 100 mm leaves no slice: the slice spacing is 2 x 3 = 6 mm",
    ),
]


def _infer(t, *options):
    return ["infer", str(sample_path()), "-o", str(t / "o.nii.gz"), *options]


def _single_voxel(tmp_path):
    import nibabel as nib

    nib.save(nib.Nifti1Image(np.ones((1, 1, 1), np.float32), np.eye(4)), tmp_path / "voxel.nii.gz")
    return tmp_path / "voxel.nii.gz"


def _text_weights(tmp_path):
    (tmp_path / "weights.txt").write_text("hello, these are not weights\n")
    return tmp_path / "weights.txt"


class _Config:
    """A training configuration pickled beside the weights (a checkpoint that needs weights_only=False)."""


def _full_pickle(tmp_path):
    from mrsr.networks import get_network

    net = get_network("msrn", preset="small", scale=2)
    torch.save({"model": net.state_dict(), "cfg": _Config()}, tmp_path / "full.pt")
    return tmp_path / "full.pt"


def _pickled_module(tmp_path):
    from mrsr.networks import get_network

    torch.save(get_network("msrn", preset="small", scale=2), tmp_path / "module.pt")
    return tmp_path / "module.pt"


TILE = "argument --roi: expected a tile side in LR pixels >= 1"
DEVICE = "argument --device: expected cpu, cuda, cuda:N (N: a GPU index) or auto, got 'tpu'"
STEPS = "argument --steps: expected a whole number >= 1, got"
SELFSR = ["selfsr", str(sample_path()), "-o"]

BAD_ARGUMENTS = [
    ("tile of zero", lambda t: _infer(t, "--roi", "0", "0"), f"{TILE}, e.g. --roi 64 64"),
    ("negative tile", lambda t: _infer(t, "--roi", "-8", "16"), f"{TILE}, e.g. --roi 64 64"),
    ("tile not a number", lambda t: _infer(t, "--roi", "a", "b"), f"{TILE}, e.g. --roi 64 64"),
    ("unknown device", lambda t: _infer(t, "--device", "tpu"), DEVICE),
    ("selfsr on an unknown device", lambda t: SELFSR + [str(t / "o.nii.gz"), "--device", "tpu"], DEVICE),
    ("demo on an unknown device", lambda t: ["demo", "-o", str(t / "d"), "--device", "tpu"], DEVICE),
    (
        "train on an unknown device",
        lambda t: ["train", "--network", "msrn", "--manifest", "m.json", "--out", str(t / "r"), "--device", "tpu"],
        DEVICE,
    ),
    (
        "benchmark on an automatic device",
        lambda t: ["benchmark", "-o", str(t / "b"), "--devices", "cpu", "auto"],
        "argument --devices: expected cpu, cuda or cuda:N (N: a GPU index), got 'auto'",
    ),
    ("overlap of a whole tile", lambda t: _infer(t, "--roi", "32", "32", "--overlap", "1"), "useful: 0 to 0.5"),
    ("negative overlap", lambda t: _infer(t, "--overlap", "-0.1"), "from 0 up to (not including) 1, got -0.1"),
    ("no tiles per pass", lambda t: _infer(t, "--sw-batch-size", "0"), "--sw-batch-size: expected a whole number >= 1"),
    ("no slices per pass", lambda t: _infer(t, "--slice-batch", "0"), "--slice-batch: expected a whole number >= 1"),
    ("an empty output size", lambda t: _infer(t, "--size", "0", "64"), "--size: expected a whole number >= 1, got 0"),
    ("a negative adaptation budget", lambda t: _infer(t, "--adapt", "--adapt-time", "-5"), "--adapt-time:"),
    (
        "weights in a text file",
        lambda t: _infer(t, "--network", "msrn", "--weights", str(_text_weights(t))),
        "is not a PyTorch weights file",
    ),
    (
        "weights beside Python objects",
        lambda t: _infer(t, "--network", "msrn", "--weights", str(_full_pickle(t))),
        "holds Python objects (tests.test_cli._Config) that mrsr does not unpickle, for safety; save the "
        "state_dict only, e.g. torch.save(model.state_dict(), path)",
    ),
    (
        "a whole pickled network",
        lambda t: _infer(t, "--network", "msrn", "--weights", str(_pickled_module(t))),
        "holds Python objects (mrsr.networks.msrn.MSRN)",
    ),
    (
        "a single voxel to degrade",
        lambda t: ["degrade", str(_single_voxel(t)), "-o", str(t / "o.nii.gz")],
        "Axis 0 has 1 sample: too small to degrade",
    ),
    (
        "a single slice to thicken",
        lambda t: ["degrade", str(_single_voxel(t)), "-o", str(t / "o.nii.gz"), "--slice-profile", "box"],
        "Axis 2 has 1 slice: too small to degrade",
    ),
    ("zero selfsr steps", lambda t: SELFSR + [str(t / "o.nii.gz"), "--steps", "0"], f"{STEPS} 0"),
    ("negative selfsr steps", lambda t: SELFSR + [str(t / "o.nii.gz"), "--steps", "-3"], f"{STEPS} -3"),
    ("unknown command", lambda t: ["frobnicate"], "mrsr: error: argument COMMAND: invalid choice: 'frobnicate'"),
    ("no output", lambda t: ["infer", str(sample_path())], "required: -o/--output (see mrsr infer --help)"),
]


def _nifti(tmp_path, name: str, data, affine=None, sform=None):
    import nibabel as nib

    img = nib.Nifti1Image(np.asarray(data), np.eye(4) if affine is None else affine)
    if sform is not None:  # an affine nibabel would not take whole: the sform alone
        img.set_sform(sform, 1)
        img.set_qform(None, 0)
    nib.save(img, tmp_path / name)
    return str(tmp_path / name)


def _noise(*shape):
    return np.random.default_rng(0).random(shape).astype(np.float32)


def _singular(t):
    sform = np.eye(4)
    sform[:3, 0] = 0.0  # the first voxel axis has no length
    return _nifti(t, "singular.nii.gz", _noise(16, 16, 4), sform=sform)


def _sheared(t):
    affine = np.eye(4)
    affine[0, 1] = 0.25
    return _nifti(t, "sheared.nii.gz", _noise(16, 16, 4), affine)


def _with_inf(t):
    data = _noise(16, 16, 4)
    data[2, 2, 2] = np.inf
    return _nifti(t, "inf.nii.gz", data)


def _header_beyond_file(t):
    import gzip

    import nibabel as nib

    header = nib.Nifti1Header()
    header.set_data_shape((20000, 20000, 5000))
    header.set_data_dtype(np.int16)
    with gzip.open(t / "huge.nii.gz", "wb") as f:
        f.write(header.binaryblock + b"\0" * 4)
    return str(t / "huge.nii.gz")


BAD_FILES = [
    ("singular affine", lambda t: ["infer", _singular(t), "-o", str(t / "o.nii.gz")], "affine (voxel to world) is"),
    ("sheared affine as DICOM", lambda t: ["infer", _sheared(t), "-o", str(t / "o_dicom")], "DICOM cannot hold it"),
    ("infinite voxel", lambda t: ["infer", _with_inf(t), "-o", str(t / "o.nii.gz")], "1 NaN/Inf voxels"),
    (
        "constant volume",
        lambda t: ["infer", _nifti(t, "c.nii.gz", np.full((16, 16, 4), 3, np.float32)), "-o", str(t / "o.nii.gz")],
        "The image is constant",
    ),
    (
        "4D volume",
        lambda t: ["infer", _nifti(t, "4d.nii.gz", _noise(16, 16, 4, 3)), "-o", str(t / "o.nii.gz")],
        "mrsr needs one 3D volume",
    ),
    (
        "header beyond its file",
        lambda t: ["infer", _header_beyond_file(t), "-o", str(t / "o.nii.gz")],
        "the header's shape 20000 x 20000 x 5000 (int16) does not match the file's size",
    ),
    ("infinite scale", lambda t: ["degrade", str(sample_path()), "-o", str(t / "o.nii"), "--scale", "inf"], "finite"),
    ("unknown output format", lambda t: _infer(t)[:3] + [str(t / "o.txt")], "unknown output format"),
]

EVERY_BAD_INPUT = BAD + BAD_THICK_SLICES + BAD_ARGUMENTS + BAD_FILES


@pytest.mark.parametrize("name, argv, message", EVERY_BAD_INPUT, ids=[b[0] for b in EVERY_BAD_INPUT])
def test_refuses_every_bad_input_in_one_line(tmp_path, capsys, name, argv, message):
    assert len(EVERY_BAD_INPUT) >= 40
    _check_bad_input(tmp_path, capsys, name, argv, message)


def test_an_argument_error_is_one_line_that_points_to_the_help(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        main(_infer(tmp_path, "--roi", "0", "64"))
    assert stop.value.code == 2
    assert capsys.readouterr().err == (
        "mrsr infer: error: argument --roi: expected a tile side in LR pixels >= 1, e.g. --roi 64 64 (leave --roi "
        "out for whole slices), got 0 (see mrsr infer --help)\n"
    )


@pytest.mark.parametrize(
    "argv",
    [
        lambda t: _infer(t, "--device", "cuda"),
        lambda t: _infer(t, "--device", "cuda:3"),
        lambda t: SELFSR + [str(t / "o.nii.gz"), "--device", "cuda"],
        lambda t: ["demo", "-o", str(t / "d"), "--device", "cuda:1"],
        lambda t: ["benchmark", "-o", str(t / "b"), "--devices", "cpu", "cuda"],
    ],
    ids=["infer", "infer-index", "selfsr", "demo", "benchmark"],
)
@pytest.mark.parametrize("gpus", [0, 1])
def test_a_gpu_that_is_not_there_is_one_line_before_any_work(tmp_path, capsys, monkeypatch, argv, gpus):
    args = argv(tmp_path)
    asked = next(a for a in args if a.startswith("cuda"))
    if gpus and asked in ("cuda", "cuda:0"):
        pytest.skip("that GPU is there")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: gpus > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: gpus)
    assert main(args) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith("mrsr: error: --device") and asked in err
    assert ("CUDA is not available" if not gpus else "this machine has 1 GPU (cuda:0)") in err
    assert list(tmp_path.iterdir()) == []


def test_selfsr_writes_the_thick_axis_on_its_hr_grid(tmp_path, capsys):
    """`mrsr selfsr` on real thick slices (a crop of the T1 sample given a 2 mm isotropic header, then 6 mm box
    slices) writes the HR grid."""
    from monai.data import MetaTensor

    from mrsr.data import save_volume
    from mrsr.transforms import SliceProfileDegrade

    crop = load_volume(sample_path())[:, 40:88, 40:88, :30]
    hr = MetaTensor(crop.as_tensor(), affine=torch.diag(torch.tensor([2.0, 2.0, 2.0, 1.0], dtype=torch.float64)))
    thick = SliceProfileDegrade(3, axis=2)(hr)
    save_volume(thick, tmp_path / "thick.nii.gz")
    args = ["selfsr", str(tmp_path / "thick.nii.gz"), "-o", str(tmp_path / "iso.nii.gz"), "--steps", "5",
            "--approach", "upsample", "--device", "cpu"]  # fmt: skip
    assert main(args) == 0
    out = load_volume(tmp_path / "iso.nii.gz")
    assert out.shape == hr.shape
    np.testing.assert_allclose(np.asarray(out.affine), np.asarray(hr.affine), atol=1e-5)  # back on the HR grid
    assert "internal validation" in capsys.readouterr().err
    assert main(args) == 2  # the output exists: one line, nothing replaced
    assert "exists" in capsys.readouterr().err


def test_selfsr_refuses_an_isotropic_volume_in_one_line(tmp_path, capsys):
    import nibabel as nib

    nib.save(nib.Nifti1Image(np.ones((8, 8, 8), np.float32), np.eye(4)), str(tmp_path / "cube.nii.gz"))
    assert main(["selfsr", str(tmp_path / "cube.nii.gz"), "-o", str(tmp_path / "out.nii.gz")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("mrsr: error:") and "isotropic" in err[-1] and "Traceback" not in "".join(err)
    assert not (tmp_path / "out.nii.gz").exists()


def test_synth_writes_images_and_a_panel_and_keeps_them(tmp_path, capsys):
    pytest.importorskip("nilearn")
    args = ["synth", "-o", str(tmp_path / "synth"), "-n", "2", "--size", "32", "32", "1"]
    assert main(args) == 0
    assert sorted(p.name for p in (tmp_path / "synth").iterdir()) == ["panel.png", "synth_0000.nii.gz",
                                                                       "synth_0001.nii.gz"]  # fmt: skip
    first = load_volume(tmp_path / "synth" / "synth_0000.nii.gz")
    assert first.shape == (1, 32, 32, 1) and 0.0 <= float(first.min()) and float(first.max()) <= 1.0
    capsys.readouterr()
    assert main(args) == 2  # exists: one line, nothing replaced
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--overwrite" in err


def test_a_warning_is_one_line(tmp_path, capsys):
    """What failed: a warning (here: complex input, read as its magnitude) printed as two lines, the second
    being the source line of the warning call."""
    import nibabel as nib

    block = load_volume(sample_path())[0, 40:72, 40:72, 25:28].numpy()
    nib.save(nib.Nifti1Image((block * np.exp(0.3j)).astype(np.complex64), np.diag([4.0, 4.0, 3.0, 1.0])),
             tmp_path / "complex.nii.gz")  # fmt: skip
    code = main(["infer", str(tmp_path / "complex.nii.gz"), "-o", str(tmp_path / "sr.nii.gz"),
                 "--network", "zerofill", "--scale", "2"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 0, err
    warned = [line for line in err.splitlines() if "complex values" in line]
    assert len(warned) == 1 and warned[0].startswith("mrsr: warning:") and "magnitude" in warned[0], err
    assert "warnings.warn" not in err and "UserWarning" not in err


def _parse(*argv: str):
    from mrsr.cli import build_parser

    return build_parser().parse_args(list(argv))


def test_infer_options_are_built_field_by_field():
    from mrsr.cli import infer_options
    from mrsr.pipeline import InferOptions
    from mrsr.settings import AdaptSettings, InferSettings

    args = _parse("infer", "in.nii.gz", "-o", "out.nii.gz", "--bundle", "wasa", "--scale", "4", "--slice-axis", "1",
                  "--size", "10", "12", "--roi", "64", "48", "--overlap", "0.5", "--sw-batch-size", "2",
                  "--slice-batch", "3", "--device", "cpu", "--amp", "--no-channels-last", "--no-data-consistency",
                  "--detail", "0.5", "--adapt", "--adapt-time", "30", "--seed", "7", "--in-channels", "3")  # fmt: skip
    settings = InferSettings(scale=4.0, slice_axis=1, out_size=(10, 12), roi_size=(64, 48), overlap=0.5,
                             sw_batch_size=2, slice_batch=3, device="cpu", amp=True, channels_last=False,
                             data_consistency=False, detail=0.5,
                             adapt=AdaptSettings(steps=AdaptSettings().steps, time_budget=30.0, seed=7),
                             progress=True)  # fmt: skip
    assert infer_options(args) == InferOptions(bundle="wasa", in_channels=3, settings=settings)
    plain = infer_options(_parse("infer", "in.nii.gz", "-o", "out.nii.gz"))
    assert plain == InferOptions(settings=InferSettings(progress=True))  # the command's defaults are the library's
    assert infer_options(_parse("infer", "x", "-o", "y", "--adapt", "0")).settings.adapt == AdaptSettings(steps=0)


def test_selfsr_settings_are_built_field_by_field():
    from mrsr.cli import selfsr_settings
    from mrsr.settings import SelfSRSettings

    args = _parse("selfsr", "in.nii.gz", "-o", "out.nii.gz", "--network", "wasa", "--preset", "default",
                  "--slice-profile", "gaussian", "--thickness", "4", "--steps", "20", "--time", "60",
                  "--approach", "upsample", "--combine", "fba", "--slab-consistency", "--device", "cpu", "--amp",
                  "--seed", "5")  # fmt: skip
    assert selfsr_settings(args) == SelfSRSettings(
        network="wasa", preset="default", profile="gaussian", thickness=4.0, steps=20, time_budget=60.0,
        approach="upsample", combine="fba", slab_consistency=True, device="cpu", amp=True, seed=5,
    )  # fmt: skip
    plain = selfsr_settings(_parse("selfsr", "in.nii.gz", "-o", "out.nii.gz"))
    assert plain == SelfSRSettings(device="auto")  # the command picks CUDA when there is one


def test_quiet_keeps_warnings_and_errors_only(tmp_path, capsys):
    """-q (before or after the command) silences the progress and status lines, not a warning or an error."""
    import nibabel as nib

    block = load_volume(sample_path())[0, 40:72, 40:72, 25:28].numpy()
    nib.save(nib.Nifti1Image((block * np.exp(0.3j)).astype(np.complex64), np.diag([4.0, 4.0, 3.0, 1.0])),
             tmp_path / "complex.nii.gz")  # fmt: skip
    assert main(["-q", "degrade", str(sample_path()), "-o", str(tmp_path / "a.nii.gz")]) == 0
    assert main(["degrade", str(sample_path()), "-o", str(tmp_path / "b.nii.gz"), "--quiet"]) == 0
    assert capsys.readouterr().err == ""
    assert main(["degrade", str(tmp_path / "complex.nii.gz"), "-o", str(tmp_path / "c.nii.gz"), "-q"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("mrsr: warning:") and "magnitude" in err[0]
    assert main(["-q", "degrade", str(tmp_path / "missing.nii.gz"), "-o", str(tmp_path / "d.nii.gz")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("mrsr: error:") and "No such file" in err[0]


def test_verbose_adds_debugging_lines_and_the_logger_is_left_as_it_was(tmp_path, capsys):
    import logging

    from mrsr.progress import logger

    before = logger().handlers[:], logger().level, logger().propagate
    assert main(["-v", "degrade", str(sample_path()), "-o", str(tmp_path / "lr.nii.gz")]) == 0
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("mrsr: mrsr ") and "command='degrade'" in err[0] and "verbose=True" in err[0]
    assert err[-1].startswith("degraded (128, 128, 62) -> (64, 64, 62)") and len(err) == 2
    assert (logger().handlers, logger().level, logger().propagate) == before  # a later library call reports as before
    with pytest.raises(SystemExit) as stop:  # argparse's own error: not both
        main(["-q", "-v", "bundles"])
    assert stop.value.code == 2 and "not allowed with argument -q/--quiet" in capsys.readouterr().err
    assert logging.getLogger("mrsr").level == before[1]


@pytest.mark.parametrize(
    "error, code, line",
    [
        (ValueError("a bug"), 1, "mrsr: internal error: ValueError: a bug (run again with --traceback and report it)"),
        (KeyError("x"), 1, "mrsr: internal error: KeyError: 'x' (run again with --traceback and report it)"),
        (OSError(28, "No space left on device"), 2, "mrsr: error: [Errno 28] No space left on device"),
        (PermissionError(13, "Permission denied"), 2, "mrsr: error: [Errno 13] Permission denied"),
    ],
)
def test_only_bad_input_and_the_users_environment_exit_2(monkeypatch, capsys, error, code, line):
    """A plain ValueError is mrsr's own bug (exit 1, asks for a report); an MrsrError or an OSError is the user's
    to fix (exit 2)."""
    from mrsr import cli
    from mrsr.errors import MrsrError

    def fail(args):
        raise error

    monkeypatch.setitem(cli.COMMANDS, "bundles", fail)
    assert main(["bundles"]) == code
    assert capsys.readouterr().err == line + "\n"
    monkeypatch.setitem(cli.COMMANDS, "bundles", lambda args: (_ for _ in ()).throw(MrsrError("Give a bundle.")))
    assert main(["bundles"]) == 2 and capsys.readouterr().err == "mrsr: error: Give a bundle.\n"
    with pytest.raises(type(error)):
        monkeypatch.setitem(cli.COMMANDS, "bundles", fail)
        main(["bundles", "--traceback"])
