"""mrsr.batch: inputs (folders, DICOM trees, lists, manifests), mirrored outputs, parts, status records, resume.

Every run here is a baseline (zerofill or bicubic) or one selfsr step on real crops of the bundled T1 head, a few
voxels across, so each test takes about a second; the kill-and-restart test runs the command in subprocesses.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
import torch
from monai.data import MetaTensor

from mrsr import __version__
from mrsr.batch import (
    RECORD_FIELDS,
    BatchSource,
    Part,
    batch_inputs,
    check_batch_outputs,
    is_batch_input,
    resolve_part,
    selfsr_batch,
    super_resolve_batch,
)
from mrsr.cli import build_parser, main, selfsr_settings
from mrsr.data import load_volume, sample_path, save_volume
from mrsr.errors import MrsrError
from mrsr.pipeline import InferOptions, build_predictor, run_settings
from mrsr.settings import InferSettings, settings_hash
from mrsr.transforms import SliceProfileDegrade

SLURM = ("SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT", "SLURM_ARRAY_TASK_MIN", "SLURM_ARRAY_TASK_MAX",
         "SLURM_ARRAY_TASK_STEP")  # fmt: skip
DICOMDIR_TREE = Path(pydicom.data.__file__).parent / "test_files" / "dicomdirtests" / "98892003"


@pytest.fixture(autouse=True)
def _no_parts_from_outside(monkeypatch):
    """A test run under Slurm or torchrun must not split these batches."""
    for name in (*SLURM, "RANK", "WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)


def _block(z: int = 25) -> np.ndarray:
    """A real 32 x 32 x 3 block of the T1 sample."""
    return load_volume(sample_path())[0, 40:72, 40:72, z : z + 3].numpy()


def _crop(folder: Path, name: str = "crop.nii.gz", z: int = 25) -> Path:
    """The block at 4 x 4 x 3 mm (an LR scan) as NIfTI at ``folder/name``."""
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(_block(z), np.diag([4.0, 4.0, 3.0, 1.0])), path)
    return path


def _series(folder: Path, z: int = 25) -> Path:
    """The block as a DICOM series folder (three slices, a new study)."""
    affine = torch.diag(torch.tensor([4.0, 4.0, 3.0, 1.0])).double()
    return save_volume(MetaTensor(torch.from_numpy(_block(z))[None], affine=affine), folder)


def _truncated(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(sample_path().read_bytes()[:4000])
    return path


def _records(out: Path) -> list[dict]:
    return [json.loads(line) for f in sorted(out.glob("mrsr_status.*.jsonl")) for line in f.read_text().splitlines()]


def _infer(*args: str) -> int:
    return main(["infer", *map(str, args), "--device", "cpu"])


ZEROFILL = InferOptions(network="zerofill", settings=InferSettings(device="cpu"))


# --- parts ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("count", [1, 2, 3, 4, 12])
def test_parts_are_disjoint_and_complete(count):
    items = [f"scan{k:02d}" for k in range(10)]
    parts = [resolve_part(count, index, environ={}).take(items) for index in range(count)]
    assert sorted(sum(parts, [])) == items  # every input once: disjoint, and together all of them
    assert parts[0] == items[::count]  # strided over the sorted inputs, as nnU-Net's -num_parts/-part_id


@pytest.mark.parametrize(
    "array, ids",
    [
        ({"SLURM_ARRAY_TASK_COUNT": "4"}, [0, 1, 2, 3]),  # --array=0-3
        ({"SLURM_ARRAY_TASK_COUNT": "4", "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_MAX": "4"}, [1, 2, 3, 4]),
        ({"SLURM_ARRAY_TASK_MIN": "0", "SLURM_ARRAY_TASK_MAX": "6", "SLURM_ARRAY_TASK_STEP": "2"}, [0, 2, 4, 6]),
    ],
    ids=["0-3", "1-4", "0-6:2"],
)
def test_a_slurm_array_sets_the_parts(monkeypatch, array, ids):
    items = [f"scan{k:02d}" for k in range(9)]
    for name, value in array.items():
        monkeypatch.setenv(name, value)
    parts = []
    for task in ids:
        monkeypatch.setenv("SLURM_ARRAY_TASK_ID", str(task))
        part = resolve_part()
        assert part.count == 4 and f"SLURM_ARRAY_TASK_ID={task}" in part.source
        assert resolve_part(num_parts=4) == Part(part.index, 4, f"--num-parts 4, {part.source}")
        parts.append(part.take(items))
    assert sorted(sum(parts, [])) == items


def test_torchrun_ranks_still_split_a_batch(monkeypatch):
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert resolve_part() == Part(1, 2, "torchrun: RANK=1, WORLD_SIZE=2")


@pytest.mark.parametrize(
    "num_parts, part_id, env, message",
    [
        (0, 0, {}, "--num-parts must be 1 or more, got 0"),
        (3, 3, {}, "Part 3 of 3 (--num-parts 3 --part-id 3) does not exist: the part must be 0 to 2"),
        (3, -1, {}, "the part must be 0 to 2"),
        (None, 1, {}, "--part-id needs --num-parts"),
        (4, None, {}, "--num-parts 4 needs --part-id"),
        (5, None, {"SLURM_ARRAY_TASK_ID": "0", "SLURM_ARRAY_TASK_COUNT": "4"}, "some parts would never run"),
        (None, None, {"SLURM_ARRAY_TASK_ID": "one", "SLURM_ARRAY_TASK_COUNT": "4"}, "'one' is not a whole number"),
        (None, None, {"SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_MAX": "7", "SLURM_ARRAY_TASK_COUNT": "3"},
         "evenly spaced"),  # --array=0,3,7
        (2, 0, {"RANK": "0", "WORLD_SIZE": "2"}, "Both torchrun"),
    ],
)  # fmt: skip
def test_bad_parts_are_one_line_errors(num_parts, part_id, env, message):
    with pytest.raises(MrsrError, match="^[^\n]*$") as error:
        resolve_part(num_parts, part_id, environ=env)
    assert message in str(error.value)


def test_the_command_checks_parts_before_any_work(tmp_path, capsys):
    folder = tmp_path / "in"
    _crop(folder, "a.nii.gz")
    assert _infer(folder, "-o", tmp_path / "out", "--num-parts", "2", "--part-id", "2") == 2
    assert _infer(folder / "a.nii.gz", "-o", tmp_path / "o.nii.gz", "--num-parts", "2") == 2
    assert _infer(folder, "-o", tmp_path / "o.nii.gz") == 2  # a batch's outputs go into a folder
    with pytest.raises(SystemExit) as stop:  # argparse: one line too
        _infer(folder, "-o", tmp_path / "out", "--num-parts", "0")
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0] == "mrsr: error: Part 2 of 2 (--num-parts 2 --part-id 2) does not exist: the part must be 0 to 1."
    assert err[1].startswith("mrsr: error: --num-parts and --part-id split a batch") and "is one volume" in err[1]
    assert err[2] == (f"mrsr: error: {folder} holds NIfTI files: a batch, whose outputs go into a folder; give -o a "
                      f"folder, not the file name {tmp_path / 'o.nii.gz'}.")  # fmt: skip
    assert "expected a whole number >= 1" in err[3] and len(err) == 4
    assert not (tmp_path / "out").exists() and not (tmp_path / "o.nii.gz").exists()


@pytest.mark.parametrize("how", ["options", "slurm"])
def test_the_parts_of_a_run_write_every_output_once(tmp_path, monkeypatch, how):
    """Three parts, run one after another as three processes of a job would: every output written once, each part
    recording its own share in its own status file."""
    folder = tmp_path / "in"
    for k in range(5):
        _crop(folder, f"scan{k}.nii.gz", z=10 + 5 * k)
    for index in range(3):
        if how == "slurm":  # as `sbatch --array=0-2` sets them
            monkeypatch.setenv("SLURM_ARRAY_TASK_ID", str(index))
            monkeypatch.setenv("SLURM_ARRAY_TASK_COUNT", "3")
            given = []
        else:
            given = ["--num-parts", "3", "--part-id", str(index)]
        assert _infer(folder, "-o", tmp_path / "out", "--network", "zerofill", *given) == 0
    written = sorted(p.name for p in (tmp_path / "out").glob("*.nii.gz"))
    assert written == [f"scan{k}.nii.gz" for k in range(5)]
    for index in range(3):
        records = _records_of(tmp_path / "out" / f"mrsr_status.part-{index}-of-3.jsonl")
        assert [r["output"] for r in records] == [f"scan{k}.nii.gz" for k in range(index, 5, 3)]
        assert {r["status"] for r in records} == {"done"} and {r["part"] for r in records} == {f"{index}/3"}


def _records_of(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


# --- inputs and outputs ---------------------------------------------------------------------------------------


def test_batch_inputs_are_a_folders_volumes_or_a_manifest_section(tmp_path):
    with pytest.raises(MrsrError, match="holds no .nii/.nii.gz files and no DICOM images"):
        batch_inputs(tmp_path)
    with pytest.raises(MrsrError, match="either an input or --manifest"):
        batch_inputs(BatchSource(tmp_path, manifest="m.json"))
    crop = _crop(tmp_path)
    (tmp_path / "notes.txt").write_text("not an image")
    (item,) = batch_inputs(tmp_path)
    assert (item.path, item.output, item.label) == (crop, Path("crop.nii.gz"), "crop.nii.gz")
    manifest = tmp_path / "m.json"
    layout = {"shape": [8, 8], "dtype": "u1"}
    (tmp_path / "raw.bin").write_bytes(bytes(64))
    manifest.write_text(json.dumps({"test": [{"image": str(crop)}, {"image": "raw.bin", "image_layout": layout}]}))
    items = batch_inputs(BatchSource(manifest=manifest, data_root=tmp_path))
    assert [(i.path, i.output, i.layout) for i in items] == [
        (crop, Path("crop.nii.gz"), None), (tmp_path / "raw.bin", Path("raw.bin.nii.gz"), layout)
    ]  # fmt: skip
    cut = tmp_path / "dicom" / "cut"  # a DICOM file cut short: an input of its own, to fail and be recorded
    cut.parent.mkdir()
    cut.write_bytes(next(_series(tmp_path / "series").iterdir()).read_bytes()[:300])
    shutil.copy(DICOMDIR_TREE.parent / "DICOMDIR", cut.parent / "index")  # a DICOMDIR index under another name
    assert [(i.path, i.output) for i in batch_inputs(cut.parent)] == [(cut, Path("cut"))]


def test_a_dicom_tree_gives_one_derived_series_per_input_series(tmp_path):
    """Two series in nested folders, two more mixed in one folder, a NIfTI file and a note: one input per series
    (by SeriesInstanceUID), each written as a derived series at its mirrored path."""
    tree, out = tmp_path / "export", tmp_path / "sr"
    alone = [_series(tree / "p1" / "study" / "t1", z=10), _series(tree / "p2" / "t2", z=20)]
    mixed = [_series(tmp_path / "x", z=30), _series(tmp_path / "y", z=40)]
    (tree / "mixed").mkdir()
    for series in mixed:  # a flat export: both series' files in one folder
        for f in series.iterdir():
            shutil.copy(f, tree / "mixed" / f"{series.name}_{f.name}")
    _crop(tree / "p1", "t1.nii.gz")
    (tree / "README.txt").write_text("an export")
    assert is_batch_input(tree) and is_batch_input(tree / "mixed") and not is_batch_input(alone[0])
    assert _infer(tree, "-o", out, "--network", "bicubic") == 0
    uids = [str(pydicom.dcmread(next(s.iterdir())).SeriesInstanceUID) for s in mixed]
    expected = ["p1/study/t1", "p2/t2", *[f"mixed/{uid.replace('.', '_')}" for uid in uids]]
    for series, name in zip([*alone, *mixed], expected):
        first_in, first_out = (pydicom.dcmread(sorted(p.iterdir())[0]) for p in (series, out / name))
        assert first_out.StudyInstanceUID == first_in.StudyInstanceUID, name
        assert first_out.SeriesInstanceUID != first_in.SeriesInstanceUID and first_out.ImageType[0] == "DERIVED"
        assert _infer(series, "-o", tmp_path / "single" / series.name, "--network", "bicubic") == 0  # one volume
        assert torch.equal(load_volume(out / name), load_volume(tmp_path / "single" / series.name)), name
    assert load_volume(out / "p1" / "t1.nii.gz").shape == (1, 64, 64, 3)
    assert sorted(r["output"] for r in _records(out)) == sorted([*expected, "p1/t1.nii.gz"])
    assert [r["series_uid"] for r in _records(out) if r["output"].startswith("mixed/")] == sorted(uids)


def test_the_real_dicomdir_tree_groups_series_by_uid():
    """pydicom's DICOMDIR test export (real MR series): MR700 has its folder to itself, MR1 and MR2 each hold
    three series (one file or several); DICOMDIR indexes and images without pixels are not inputs."""
    items = batch_inputs(DICOMDIR_TREE)
    outputs = sorted(i.output.as_posix() for i in items)
    assert outputs[:4] == ["MR1/15820", "MR1/4919", "MR1/5641", "MR2/15970"]  # one-file series: by file
    assert outputs[4:6] == ["MR2/1_3_6_1_4_1_5962_1_1_0_0_0_1196533885_18148_0_136",
                            "MR2/1_3_6_1_4_1_5962_1_1_0_0_0_1196533885_18148_0_17"]  # fmt: skip
    assert outputs[6:] == ["MR700"]
    shared = next(i for i in items if i.series_uid and i.series_uid.endswith(".136"))
    assert shared.path == DICOMDIR_TREE / "MR2" and [f.name for f in shared.files] == ["4950", "4981", "5011"]
    check_batch_outputs(items, Path("out"))


def test_list_files_name_inputs_relative_to_the_list(tmp_path):
    data = tmp_path / "data"
    _crop(data / "sub1", "t1.nii.gz"), _crop(data / "sub2", "t1.nii", z=30), _series(data / "sub3" / "s", z=35)
    elsewhere = _crop(tmp_path / "elsewhere", "x.nii.gz", z=5)
    (data / "batch.txt").write_text(f"# subjects\nsub1/t1.nii.gz\n\n  sub2/t1.nii  \nsub3/s\n{elsewhere}\n")
    assert _infer(data / "batch.txt", "-o", tmp_path / "out", "--network", "zerofill") == 0
    mirrored = tmp_path / "out" / elsewhere.relative_to(elsewhere.anchor)  # outside the list's folder: its path
    for name in ("sub1/t1.nii.gz", "sub2/t1.nii", "sub3/s", mirrored):
        assert load_volume(tmp_path / "out" / name).shape == (1, 64, 64, 3), name
    (data / "batch.csv").write_text("subject,path,site\n1,sub1/t1.nii.gz,a\n3,sub3/s,b\n")
    assert _infer(data / "batch.csv", "-o", tmp_path / "csv", "--network", "zerofill") == 0
    assert sorted(r["output"] for r in _records(tmp_path / "csv")) == ["sub1/t1.nii.gz", "sub3/s"]
    (data / "bad.csv").write_text("subject,file\n1,sub1/t1.nii.gz\n")
    with pytest.raises(MrsrError, match="has no 'path' column \\(its columns: subject, file\\)"):
        batch_inputs(data / "bad.csv")


def test_inputs_that_would_share_an_output_are_refused(tmp_path):
    data = tmp_path / "data"
    _crop(data, "a.nii.gz")
    (data / "twice.txt").write_text("a.nii.gz\n./a.nii.gz\n")
    with pytest.raises(MrsrError, match="a.nii.gz and ./a.nii.gz would both write"):
        super_resolve_batch(tmp_path / "out", ZEROFILL, data / "twice.txt")
    tree = tmp_path / "tree"
    _series(tree / "scan", z=10)
    other = next(_series(tmp_path / "other", z=20).iterdir())
    shutil.copy(other, tree / "scan.dcm")  # a one-file series beside the series folder: both write 'scan'
    with pytest.raises(MrsrError, match="scan and scan.dcm would both write"):
        super_resolve_batch(tmp_path / "out", ZEROFILL, tree)
    (tree / "scan.dcm").unlink()
    with pytest.raises(MrsrError, match="inside the input folder"):
        super_resolve_batch(tree / "sr", ZEROFILL, tree)
    assert not (tmp_path / "out").exists() and not (tree / "sr").exists()


# --- failures, records, resume --------------------------------------------------------------------------------


def test_a_failing_volume_is_recorded_and_the_others_are_written(tmp_path, capsys):
    folder, out = tmp_path / "in", tmp_path / "out"
    _crop(folder, "a.nii.gz"), _truncated(folder / "b.nii.gz"), _crop(folder / "deep", "c.nii.gz", z=35)
    assert _infer(folder, "-o", out, "--network", "zerofill", "--scale", "2") == 2
    err = capsys.readouterr().err.strip().splitlines()
    status = out / "mrsr_status.part-0-of-1.jsonl"
    assert err[-2] == f"2 written, 0 already done, 1 failed; outputs in {out}; records in {status}"
    assert err[-1] == f"mrsr: error: 1 volume(s) failed: b.nii.gz; their errors are in {status}"
    assert any(line.startswith("[2/3] b.nii.gz: error: Cannot read") for line in err)
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.nii.gz")) == ["a.nii.gz", "deep/c.nii.gz"]
    records = _records_of(status)
    assert [(r["output"], r["status"]) for r in records] == [("a.nii.gz", "done"), ("b.nii.gz", "failed"),
                                                             ("deep/c.nii.gz", "done")]  # fmt: skip
    expected = settings_hash(run_settings(ZEROFILL, build_predictor(ZEROFILL)))
    for r in records:
        assert tuple(r) == RECORD_FIELDS
        assert (r["mrsr_version"], r["settings_hash"], r["part"]) == (__version__, expected, "0/1")
        assert r["seconds"] > 0 and r["peak_memory_mib"] > 50 and r["time"].endswith("+00:00")
    assert records[1]["error"].startswith("Cannot read") and "\n" not in records[1]["error"]
    assert records[0]["error"] is None and records[0]["input"] == str(folder / "a.nii.gz")


def test_running_out_of_memory_fails_the_volume_not_the_run(tmp_path, monkeypatch):
    """Out of memory on the GPU (torch's OutOfMemoryError), in torch's CPU allocator (a RuntimeError) or in NumPy (a
    MemoryError): the volume is recorded as failed and the next one runs. An error of mrsr's own is recorded too,
    and then ends the run as a bug."""
    import mrsr.pipeline

    folder = tmp_path / "in"
    for name in "abcd":
        _crop(folder, f"{name}.nii.gz")
    cpu = "[enforce fail at alloc_cpu.cpp:127] DefaultCPUAllocator: can't allocate memory: you tried to allocate 4e13 B"
    errors = {"a.nii.gz": torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB"),
              "b.nii.gz": RuntimeError(cpu), "c.nii.gz": MemoryError()}  # fmt: skip
    real = mrsr.pipeline.super_resolve_file

    def short_of_memory(path, *args, **kwargs):
        if Path(path).name in errors:
            raise errors[Path(path).name]
        return real(path, *args, **kwargs)

    monkeypatch.setattr(mrsr.pipeline, "super_resolve_file", short_of_memory)
    with pytest.raises(MrsrError, match=r"3 volume\(s\) failed: a.nii.gz, b.nii.gz, c.nii.gz;"):
        super_resolve_batch(tmp_path / "out", ZEROFILL, folder, log=lambda line: None)
    records = _records(tmp_path / "out")
    assert [(r["status"], r["error"]) for r in records] == [
        ("failed", "OutOfMemoryError: CUDA out of memory. Tried to allocate 20.00 GiB"),
        ("failed", f"RuntimeError: {cpu}"), ("failed", "MemoryError"), ("done", None),
    ]  # fmt: skip
    errors["d.nii.gz"] = ValueError("a bug")
    with pytest.raises(ValueError, match="a bug"):
        super_resolve_batch(tmp_path / "bug", ZEROFILL, folder / "d.nii.gz", log=lambda line: None)
    ((status, error),) = [(r["status"], r["error"]) for r in _records(tmp_path / "bug")]
    assert (status, error) == ("failed", "internal error: ValueError: a bug")


def test_a_rerun_skips_done_outputs_and_records_them(tmp_path):
    folder, out, lines = tmp_path / "in", tmp_path / "out", []
    _crop(folder, "a.nii.gz"), _truncated(folder / "b.nii.gz"), _crop(folder, "c.nii.gz", z=35)
    with pytest.raises(MrsrError, match=r"1 volume\(s\) failed: b.nii.gz"):
        super_resolve_batch(out, ZEROFILL, folder, log=lines.append)
    before = {p.name: p.stat().st_mtime_ns for p in out.glob("*.nii.gz")}
    _crop(folder, "b.nii.gz", z=15)  # mended
    result = super_resolve_batch(out, ZEROFILL, folder, log=lines.append)
    assert result[:3] == (1, 2, []) and lines[-1].startswith("1 written, 2 already done, 0 failed")
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.nii.gz") if p.name in before} == before
    again = [(r["output"], r["status"]) for r in _records(out)[3:]]
    assert again == [("a.nii.gz", "skipped"), ("b.nii.gz", "done"), ("c.nii.gz", "skipped")]
    with pytest.raises(MrsrError, match="holds inputs"):
        super_resolve_batch(folder, ZEROFILL, folder / "a.nii.gz", log=lines.append)


def test_an_output_made_with_other_settings_is_redone(tmp_path):
    """Zerofill's outputs are not bicubic's: a bicubic run redoes them (and says so); an output that no recorded
    run made is kept, as before there were records."""
    folder, out, lines = tmp_path / "in", tmp_path / "out", []
    _crop(folder, "a.nii.gz"), _crop(folder, "b.nii.gz", z=35)
    super_resolve_batch(out, ZEROFILL, folder, log=lines.append)
    zerofilled = load_volume(out / "a.nii.gz")
    shutil.copy(folder / "b.nii.gz", out / "made_elsewhere.nii.gz")
    _crop(folder, "made_elsewhere.nii.gz", z=20)
    bicubic = InferOptions(network="bicubic", settings=InferSettings(device="cpu"))
    result = super_resolve_batch(out, bicubic, folder, log=lines.append)
    assert result[:3] == (2, 1, [])
    old, new = (settings_hash(run_settings(o, build_predictor(o))) for o in (ZEROFILL, bicubic))
    assert f"[1/3] a.nii.gz: its output was made with other settings (hash {old}, now {new}); redoing it" in lines
    assert not torch.equal(load_volume(out / "a.nii.gz"), zerofilled)
    assert load_volume(out / "made_elsewhere.nii.gz").shape == (1, 32, 32, 3)  # kept: the copied LR input
    assert [(r["output"], r["status"], r["settings_hash"]) for r in _records(out)[2:]] == [
        ("a.nii.gz", "done", new), ("b.nii.gz", "done", new), ("made_elsewhere.nii.gz", "skipped", new)
    ]  # fmt: skip
    assert super_resolve_batch(out, bicubic, folder, log=lines.append)[:3] == (0, 3, [])


def test_selfsr_runs_a_folder_as_a_batch(tmp_path, capsys):
    """`mrsr selfsr FOLDER -o OUT`: a real thick-slice crop made isotropic at its mirrored path (one training
    step), a truncated file recorded as failed, the records hashing the run's SelfSRSettings."""
    crop = load_volume(sample_path())[:, 40:56, 40:56, 10:22]
    hr = MetaTensor(crop.as_tensor(), affine=torch.diag(torch.tensor([1.5, 1.5, 1.5, 1.0])).double())
    save_volume(SliceProfileDegrade(3, axis=2)(hr), tmp_path / "in" / "s1" / "thick.nii.gz")
    _truncated(tmp_path / "in" / "s2" / "thick.nii.gz")
    args = ["selfsr", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--steps", "1", "--approach", "upsample"]
    assert main(args) == 2
    assert "1 volume(s) failed: s2/thick.nii.gz" in capsys.readouterr().err
    assert load_volume(tmp_path / "out" / "s1" / "thick.nii.gz").shape == (1, 16, 16, 12)
    expected = settings_hash(selfsr_settings(build_parser().parse_args(args)))
    assert [(r["output"], r["status"], r["settings_hash"]) for r in _records(tmp_path / "out")] == [
        ("s1/thick.nii.gz", "done", expected), ("s2/thick.nii.gz", "failed", expected)
    ]  # fmt: skip
    assert main(args) == 2  # a rerun: the done volume is skipped, the bad one fails again
    assert [r["status"] for r in _records(tmp_path / "out")[2:]] == ["skipped", "failed"]
    (tmp_path / "in" / "one.txt").write_text("s1/thick.nii.gz\n")  # the same output through a list: done already
    settings = selfsr_settings(build_parser().parse_args(args))
    result = selfsr_batch(tmp_path / "out", settings, tmp_path / "in" / "one.txt", log=lambda line: None)
    assert result[:3] == (0, 1, [])


def _mrsr(*args: str) -> list[str]:
    return [sys.executable, "-m", "mrsr", *args]


def _no_temporaries(folder) -> bool:
    return not [p for p in folder.rglob(".*") if ".tmp" in p.name or p.name.endswith(".old")]


def test_a_batch_killed_and_restarted_beside_another_ends_with_every_output_whole(tmp_path):
    """A batch stopped (SIGTERM) midway, then restarted while a second batch works the same folder: every
    output is whole, written once by one of them, and no temporary file is left."""
    src = load_volume(sample_path())[:, :, :, 20:44]
    (tmp_path / "in").mkdir()
    for k in range(6):
        save_volume(src, tmp_path / "in" / f"scan{k}.nii.gz")
    args = ["infer", str(tmp_path / "in"), "--network", "bicubic", "--scale", "2", "--device", "cpu"]
    subprocess.run(_mrsr(*args, "-o", str(tmp_path / "reference")), check=True, capture_output=True)
    first = subprocess.Popen(_mrsr(*args, "-o", str(tmp_path / "out")), stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while not list((tmp_path / "out").glob("scan*.nii.gz")) and time.monotonic() < deadline:
        time.sleep(0.05)
    first.send_signal(signal.SIGTERM)
    assert first.wait(timeout=60) != 0
    assert _no_temporaries(tmp_path / "out"), sorted(p.name for p in (tmp_path / "out").iterdir())
    runs = [subprocess.Popen(_mrsr(*args, "-o", str(tmp_path / "out")), stderr=subprocess.PIPE, text=True)
            for _ in range(2)]  # fmt: skip
    results = [(run.wait(timeout=300), run.stderr.read()) for run in runs]
    assert [code for code, _ in results] == [0, 0], results
    names = sorted(p.name for p in (tmp_path / "out").glob("*.nii.gz"))
    assert names == [f"scan{k}.nii.gz" for k in range(6)], names
    for name in names:
        got = np.asarray(nib.load(tmp_path / "out" / name).dataobj)
        assert np.array_equal(got, np.asarray(nib.load(tmp_path / "reference" / name).dataobj)), name
    assert _no_temporaries(tmp_path / "out")
    records = _records(tmp_path / "out")
    for name in names:  # at most one run wrote each (a kill between the write and its record leaves none)
        assert [r["status"] for r in records if r["output"] == name].count("done") <= 1, name
