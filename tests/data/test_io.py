"""load_volume / save_volume: formats (NIfTI, DICOM, .npy, raw), atomic writes and every bad input."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import dipy.data
import matplotlib
import nibabel as nib
import numpy as np
import pytest
import torch
from monai.data import MetaTensor

from mrsr.data import LoadVolumed, load_volume, sample_path, save_volume
from mrsr.data.io import RawLayout, check_output_path
from mrsr.errors import MrsrError
from tests.conftest import MR700


def test_sample_is_the_real_t1(t1_volume):
    assert t1_volume.shape == (1, 128, 128, 62) and t1_volume.dtype == torch.float32
    np.testing.assert_allclose(np.linalg.norm(t1_volume.affine[:3, :3].numpy(), axis=0), [2, 2, 3])
    assert (sample_path().parent / "NOTICE").read_text().count("Apache") >= 1


def test_nifti_round_trip_keeps_values_and_affine(tmp_path, t1_volume):
    for name in ("v.nii.gz", "v.nii"):
        out = save_volume(t1_volume, tmp_path / name)
        back = load_volume(out)
        assert torch.equal(back, t1_volume) and torch.equal(back.affine, t1_volume.affine)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.nii", "v.nii.gz"]  # no temporary files left


def test_existing_output_needs_overwrite(tmp_path, t1_volume):
    out = tmp_path / "v.nii.gz"
    save_volume(t1_volume, out)
    before = out.read_bytes()
    with pytest.raises(MrsrError, match="pass overwrite=True") as err:  # the Python API's own words
        save_volume(t1_volume * 2, out)
    assert "--overwrite" not in str(err.value)
    assert out.read_bytes() == before
    save_volume(t1_volume * 2, out, overwrite=True)
    assert float(load_volume(out).max()) == 2 * float(t1_volume.max())


def test_dicom_folder_overwrite_replaces_whole_folder(tmp_path, t1_volume):
    out = tmp_path / "series"
    save_volume(t1_volume[:, :, :, :4], out)
    save_volume(t1_volume[:, :, :, :2], out, overwrite=True)
    assert len(list(out.iterdir())) == 2 and len(list(tmp_path.iterdir())) == 1


def test_2d_nifti_is_a_one_slice_volume(tmp_path):
    nib.save(
        nib.Nifti1Image(np.random.rand(20, 30).astype(np.float32), np.diag([0.5, 0.5, 1, 1])), tmp_path / "a.nii.gz"
    )
    assert load_volume(tmp_path / "a.nii.gz").shape == (1, 20, 30, 1)


def test_non_parallel_series_cannot_become_nifti(tmp_path):
    with pytest.raises(MrsrError, match="not parallel"):
        save_volume(load_volume(MR700), tmp_path / "radial.nii.gz")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: p / "missing.nii.gz", "No such file"),
        (lambda p: _write(p / "cut.nii.gz", sample_path().read_bytes()[:5000]), "truncated|unreadable"),
        (lambda p: _write(p / "junk.nii", b"this is not an image" * 30), "unreadable|truncated"),
        (lambda p: _write(p / "image.png", b"\x89PNG"), "unsupported format"),
        (lambda p: _nifti(p / "nan.nii.gz", np.where(np.eye(8)[..., None].repeat(3, 2) > 0, np.nan, 1.0)), "NaN/Inf"),
        (lambda p: _nifti(p / "inf.nii.gz", np.full((8, 8, 3), np.inf)), "NaN/Inf"),
        (lambda p: _nifti(p / "4d.nii.gz", np.ones((8, 8, 3, 2))), "one 3D volume"),
    ],
)
def test_bad_input(tmp_path, make, message):
    with pytest.raises(MrsrError, match=message):
        load_volume(make(tmp_path))


@pytest.mark.parametrize("shape", [(8, 9, 3, 2), (8, 9, 3, 1, 2)])
def test_4d_error_states_the_files_own_axis_order(tmp_path, shape):
    with pytest.raises(MrsrError, match=rf"shape \({', '.join(map(str, shape))}\); mrsr needs one 3D volume"):
        load_volume(_nifti(tmp_path / "4d.nii.gz", np.ones(shape)))


def _write(path, data: bytes):
    path.write_bytes(data)
    return path


def _nifti(path, array):
    nib.save(nib.Nifti1Image(np.asarray(array, dtype=np.float32), np.eye(4)), path)
    return path


def test_output_checks(tmp_path, t1_volume):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(MrsrError, match="Cannot create the output folder"):
        check_output_path(blocker / "sub" / "out.nii.gz")
    with pytest.raises(MrsrError, match="would overwrite the input"):
        check_output_path(sample_path(), overwrite=True, inputs=(sample_path(),))
    with pytest.raises(MrsrError, match="unknown output format"):
        check_output_path(tmp_path / "out.png")
    with pytest.raises(MrsrError, match="Cannot create|Cannot write"):
        save_volume(MetaTensor(torch.zeros(1, 4, 4, 2)), blocker / "out.nii.gz")


# ------------------------------------------------------------------------------------------- headerless files

DIPY_T1_SLICE = Path(os.path.dirname(dipy.data.__file__)) / "files" / "t1_coronal_slice.npy"
MPL_S1045 = Path(matplotlib.get_data_path()) / "sample_data" / "s1045.ima.gz"
S1045_LAYOUT = {"shape": [256, 256], "dtype": ">u2"}


def test_npy_slice_real_dipy_t1():
    stored = np.load(DIPY_T1_SLICE)
    img = load_volume(DIPY_T1_SLICE)
    assert stored.shape == (256, 256) and stored.dtype == np.float64
    assert img.shape == (1, 256, 256, 1) and img.dtype == torch.float32
    assert torch.equal(img.affine, torch.eye(4, dtype=img.affine.dtype))  # 1 mm, no orientation: none is stored
    np.testing.assert_array_equal(img[0, :, :, 0].numpy(), stored.astype(np.float32))  # array[x, y], as stored
    assert float(img.min()) == 0 and float(img.max()) == 1 and float(img.std()) > 0.1
    spaced = load_volume(DIPY_T1_SLICE, layout={"spacing": [0.9, 0.8, 3]})
    np.testing.assert_allclose(spaced.affine.numpy(), np.diag([0.9, 0.8, 3, 1]))


def test_npy_volume_keeps_axes_values_and_spacing(tmp_path):
    array = (np.arange(4 * 5 * 3).reshape(4, 5, 3) - 20).astype(">i2")  # big-endian on purpose
    np.save(tmp_path / "v.npy", array)
    img = load_volume(tmp_path / "v.npy", layout={"shape": [4, 5, 3], "dtype": ">i2", "spacing": [0.5, 0.5, 2]})
    assert img.shape == (1, 4, 5, 3) and img.dtype == torch.float32
    np.testing.assert_array_equal(img[0].numpy(), array.astype(np.float32))
    np.testing.assert_allclose(img.affine.numpy(), np.diag([0.5, 0.5, 2, 1]))
    with pytest.raises(MrsrError, match=r"shape \[4, 5, 3\], not the layout's \[5, 4, 3\]"):
        load_volume(tmp_path / "v.npy", layout={"shape": [5, 4, 3]})
    with pytest.raises(MrsrError, match="not the layout's <f4"):
        load_volume(tmp_path / "v.npy", layout={"dtype": "<f4"})
    np.save(tmp_path / "4d.npy", np.ones((2, 2, 2, 2)))
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    for name, message in [("4d.npy", "2D image or a 3D volume"), ("obj.npy", "unreadable")]:
        with pytest.raises(MrsrError, match=message):
            load_volume(tmp_path / name)


def test_raw_real_matplotlib_s1045():
    stored = np.frombuffer(gzip.decompress(MPL_S1045.read_bytes()), dtype=">u2").reshape(256, 256)  # 256 rows
    img = load_volume(MPL_S1045, layout=S1045_LAYOUT)
    assert img.shape == (1, 256, 256, 1) and img.dtype == torch.float32
    assert torch.equal(img.affine, torch.eye(4, dtype=img.affine.dtype))
    np.testing.assert_array_equal(img[0, :, :, 0].numpy(), stored.T.astype(np.float32))  # X = column, Y = row
    assert float(img.min()) == 0 and float(img.max()) == 215  # 8-bit values in big-endian 16-bit words
    assert (img > 20).float().mean() > 0.3  # a head filling much of the field, not noise
    swapped = load_volume(MPL_S1045, layout={"shape": [256, 256], "dtype": "<u2"})
    assert float(swapped.max()) == 215 * 256  # the byte order is the layout's, not guessed
    spaced = load_volume(MPL_S1045, layout={**S1045_LAYOUT, "spacing": [0.9, 0.9, 5]})
    np.testing.assert_allclose(spaced.affine.numpy(), np.diag([0.9, 0.9, 5, 1]))


@pytest.mark.parametrize("compress", [False, True])
def test_raw_volume_x_fastest_plain_and_gzip(tmp_path, compress):
    array = np.random.default_rng(0).random((6, 5, 4)).astype("<f4")  # (X, Y, Z)
    data = array.tobytes(order="F")  # X varies fastest, as NIfTI stores voxels
    path = tmp_path / ("v.raw.gz" if compress else "v.raw")
    path.write_bytes(gzip.compress(data) if compress else data)
    img = load_volume(path, layout={"shape": [6, 5, 4], "dtype": "<f4", "spacing": [1.5, 1.5, 3]})
    assert img.shape == (1, 6, 5, 4)
    np.testing.assert_array_equal(img[0].numpy(), array)
    np.testing.assert_allclose(img.affine.numpy(), np.diag([1.5, 1.5, 3, 1]))


def test_raw_size_mismatch_is_one_line(tmp_path):
    with pytest.raises(MrsrError) as err:
        load_volume(MPL_S1045, layout={"shape": [256, 255], "dtype": ">u2"})
    message = str(err.value)
    assert "\n" not in message and message.startswith(str(MPL_S1045))
    assert "131072 bytes" in message and "[256, 255] >u2 needs 130560" in message
    (tmp_path / "short.raw").write_bytes(b"\0" * 99)
    with pytest.raises(MrsrError, match=r"99 bytes, but the raw layout \[10, 10\] u1 needs 100"):
        load_volume(tmp_path / "short.raw", layout={"shape": [10, 10], "dtype": "u1"})
    _write(tmp_path / "cut.ima.gz", MPL_S1045.read_bytes()[:2000])
    with pytest.raises(MrsrError, match="truncated or damaged"):
        load_volume(tmp_path / "cut.ima.gz", layout=S1045_LAYOUT)


@pytest.mark.parametrize(
    "layout, message",
    [
        (None, "unsupported format.*headerless raw file with its layout"),
        ({"shape": [256, 256]}, "needs its shape and dtype"),
        ({"shape": [256, 256], "dtype": "uint16"}, "give the byte order, '>u2'"),
        ({"shape": [256, 256], "dtype": ">u2", "dytpe": "x"}, "unknown layout key"),
        ({"shape": [256], "dtype": ">u2"}, "2 or 3 positive whole numbers"),
        ({"shape": [256, 256], "dtype": "S2"}, "integer or float type"),
        ({"shape": [256, 256], "dtype": ">u2", "spacing": [1, 0]}, "positive sizes in mm"),
        ([256, 256], "a layout is a mapping"),
    ],
)
def test_bad_raw_layouts(layout, message):
    with pytest.raises(MrsrError, match=message) as err:
        load_volume(MPL_S1045, layout=layout)
    assert "\n" not in str(err.value)


def test_layout_is_refused_for_files_with_a_header():
    with pytest.raises(MrsrError, match="has its own header"):
        load_volume(sample_path(), layout={"spacing": [1, 1, 1]})


def test_load_volumed_reads_the_entry_layout():
    entry = {"image": str(MPL_S1045), "image_layout": S1045_LAYOUT, "name": "s1045"}
    out = LoadVolumed("image")(entry)
    assert out["image"].shape == (1, 256, 256, 1) and out["image_layout"] == S1045_LAYOUT and out["name"] == "s1045"
    with pytest.raises(MrsrError, match="unsupported format"):
        LoadVolumed("image", layout_postfix=None)(entry)
    with pytest.raises(MrsrError, match="unsupported format"):
        LoadVolumed("image")({"image": str(MPL_S1045)})  # the path alone cannot say how to read it
    assert RawLayout.from_dict(S1045_LAYOUT) == RawLayout(shape=(256, 256), dtype=">u2")
