"""mrsr.bundle.errors: bad input ends a bundle command with one line; multi_gpu_train.json needs torchrun."""

from __future__ import annotations

import subprocess
import sys

import pytest
from monai.bundle import ckpt_export
from monai.bundle import run as bundle_run

from mrsr.bundle import errors, find_bundle, one_line_errors, require_torchrun, weights_path
from mrsr.errors import MrsrError
from tests.bundle.conftest import REPO, causes, export_args


@pytest.mark.parametrize("traceback", [False, True])
def test_monai_bundle_run_ends_bad_input_with_one_line(tmp_path, traceback):
    """MONAI prints every config error as a chain of tracebacks; the bundles' initialize step prints one line."""
    root = find_bundle("msrn")
    cmd = [sys.executable, "-m", "monai.bundle", "run", "--config_file", str(root / "configs" / "inference.json"),
           "--bundle_root", str(root), "--input", str(tmp_path / "missing.nii.gz"),
           "--output_dir", str(tmp_path / "out")]  # fmt: skip
    result = subprocess.run(
        cmd + (["--traceback", "True"] if traceback else []), capture_output=True, text=True, timeout=300
    )
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    if traceback:
        assert "Traceback" in result.stderr and "missing.nii.gz" in result.stderr
    else:
        assert result.returncode == 2  # as `mrsr` exits on bad input
        assert "Traceback" not in result.stderr, result.stderr[-2000:]
        assert last.startswith("mrsr: error: No such file or folder") and "missing.nii.gz" in last
    assert not (tmp_path / "out").exists()


def test_bad_file_inside_the_engine_run_is_one_line_exit_2_without_engine_errors(tmp_path):
    """What failed: an unreadable input, found while the evaluator runs, exited 1 after two ignite ERROR lines."""
    root = find_bundle("msrn")
    (tmp_path / "bad.nii.gz").write_text("not a NIfTI file")
    cmd = [sys.executable, "-m", "monai.bundle", "run", "--config_file", str(root / "configs" / "inference.json"),
           "--bundle_root", str(root), "--input", str(tmp_path / "bad.nii.gz"), "--output_dir",
           str(tmp_path / "out")]  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stderr[-2000:]
    assert " - ERROR - " not in result.stderr and "Traceback" not in result.stderr, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and errors[0].startswith("mrsr: error: Cannot read") and "bad.nii.gz" in errors[0]
    assert not list((tmp_path / "out").glob("*")) if (tmp_path / "out").exists() else True


def test_monai_bundle_run_without_output_dir_writes_to_the_current_folder(tmp_path):
    """What failed: without --output_dir the output went to <bundle_root>/eval, inside the source tree or
    site-packages."""
    from mrsr.data import load_volume, sample_path, save_volume

    root = find_bundle("msrn")
    small = load_volume(sample_path())[:, 40:72, 40:80, 28:31]
    save_volume(small, tmp_path / "small.nii.gz")
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    cmd = [sys.executable, "-m", "monai.bundle", "run", "--config_file", str(root / "configs" / "inference.json"),
           "--bundle_root", str(root), "--input", "small.nii.gz"]  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert load_volume(tmp_path / "small_sr_x2.nii.gz").shape == (1, 64, 80, 3)
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before


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
    args = export_args(root, tmp_path / "m.ts")
    args["ckpt_file"] = str(weights_path(root, 4))
    argv = ["monai/bundle/__main__.py", "ckpt_export", "network_def"]
    for key, value in args.items():
        argv += [f"--{key}", value]
    monkeypatch.setattr(sys, "argv", argv)
    monkeypatch.setattr(sys, "excepthook", sys.__excepthook__)
    monkeypatch.setattr(errors, "_exit", lambda status: None)  # the hook would end the process
    with pytest.raises(RuntimeError) as err:
        ckpt_export(**args)
    sys.excepthook(RuntimeError, err.value, err.value.__traceback__)
    printed = capsys.readouterr().err.strip()
    assert printed.startswith("mrsr: error:") and "scale 4" in printed and "--scale 4" in printed
    assert len(printed.splitlines()) == 1


def test_one_line_errors_finds_the_cause_in_monais_chain(monkeypatch, capsys):
    seen, statuses = [], []
    monkeypatch.setattr(sys, "excepthook", lambda *args: seen.append(args[1]))
    monkeypatch.setattr(errors, "_exit", statuses.append)
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
    assert statuses == [2]  # as `mrsr` exits on bad input
    internal = KeyError("a bug")
    sys.excepthook(KeyError, internal, None)  # not bad input: the full report, as before
    assert seen == [internal]


def test_multi_gpu_config_needs_torchrun(tiny_manifest, tmp_path):
    root = find_bundle("msrn")
    files = [str(root / "configs" / "train.json"), str(root / "configs" / "multi_gpu_train.json")]
    with pytest.raises(RuntimeError) as err:
        bundle_run(config_file=files, bundle_root=str(root), manifest=tiny_manifest, output_dir=str(tmp_path / "r"))
    assert "runs under torchrun" in causes(err.value)
    assert not (tmp_path / "r").exists()
    with pytest.raises(MrsrError):
        require_torchrun()
