"""load_volume / save_volume: formats (NIfTI, DICOM, .npy, raw), atomic writes and every bad input."""

from __future__ import annotations

import gzip
import io
import os
import re
from pathlib import Path

import dipy.data
import matplotlib
import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk
import torch
from monai.data import MetaTensor

from mrsr.cli import main
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


# ------------------------------------------------------------------------------------------- odd headers and values


def _header_nifti(path, data, affine, sform_code=1, qform_code=0):
    """A NIfTI file whose sform is ``affine`` as given (nibabel will not build a singular one itself), with pixdim
    its voxel sizes, as a converter writes them; the qform fields stay empty."""
    header = nib.Nifti1Header()
    header.set_data_shape(data.shape)
    header.set_data_dtype(data.dtype)
    affine = np.asarray(affine, dtype=float)
    header["srow_x"], header["srow_y"], header["srow_z"] = affine[:3]
    header["sform_code"], header["qform_code"] = sform_code, qform_code
    header["pixdim"][1:4] = np.linalg.norm(affine[:3, :3], axis=0)
    nib.save(nib.Nifti1Image(data, None, header=header), path)
    return path


def _coded_nifti(path, data, affine, sform_code, qform_code):
    """A NIfTI file with ``affine`` in its sform and qform (nibabel strips any shear from the qform) and these codes."""
    image = nib.Nifti1Image(data, affine)
    image.set_sform(affine, code=sform_code)
    image.set_qform(affine, code=qform_code)
    nib.save(image, path)
    return path


def _t1():
    """The bundled real T1 (128x128x62, int16) as float32 voxels and its affine."""
    image = nib.load(sample_path())
    return np.asarray(image.dataobj, dtype=np.float32), image.affine


def _oblique(affine):
    """``affine`` turned 20 degrees about z and 10 about x: an oblique acquisition's geometry."""
    a, b = np.radians(20), np.radians(10)
    rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    out = np.array(affine, dtype=float)
    out[:3] = rz @ rx @ out[:3]
    return out


def _cli_refuses(capsys, path, tmp_path, message):
    """``mrsr infer`` on ``path``: exit 2, one stderr line matching ``message``, no output, the input unchanged."""
    before = path.read_bytes()
    out = tmp_path / "out" / "sr.nii.gz"
    code = main(["infer", str(path), "-o", str(out), "--network", "zerofill", "--scale", "2"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("mrsr: error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    assert re.search(message, err), err
    assert not (out.parent.exists() and any(out.parent.rglob("*")))
    assert path.read_bytes() == before


def _sitk_geometry(path):
    """Spacing, direction (RAS) and origin (RAS) as SimpleITK, an independent reader, takes them from ``path``."""
    image = sitk.ReadImage(str(path))
    flip = np.diag([-1.0, -1.0, 1.0])  # ITK's world is LPS
    direction = flip @ np.asarray(image.GetDirection()).reshape(3, 3)
    return np.asarray(image.GetSpacing()), direction, flip @ np.asarray(image.GetOrigin())


def _nibabel_geometry(path):
    affine = nib.load(path).affine
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    return spacing, affine[:3, :3] / spacing, affine[:3, 3]


@pytest.mark.parametrize("dtype", [np.complex64, np.complex128])
def test_complex_input_is_read_as_its_magnitude_with_one_warning(tmp_path, dtype):
    t1, affine = _t1()
    x, y, _ = np.meshgrid(*(np.linspace(0, 1, n) for n in t1.shape), indexing="ij")
    complex_t1 = (t1 * np.exp(1j * np.pi * (x + 0.5 * y))).astype(dtype)  # a reconstruction with a smooth phase
    path = tmp_path / "complex.nii.gz"
    nib.save(nib.Nifti1Image(complex_t1, affine), path)
    with pytest.warns(UserWarning, match="holds complex values; using their magnitude") as caught:
        img = load_volume(path)
    assert len(caught) == 1 and "\n" not in str(caught[0].message)  # no ComplexWarning from a cast to real
    np.testing.assert_allclose(img[0].numpy(), t1, rtol=1e-5, atol=1e-3)  # the magnitude is the T1 again
    np.testing.assert_allclose(img.affine.numpy(), affine)


def test_complex_npy_is_read_as_its_magnitude(tmp_path):
    np.save(tmp_path / "c.npy", np.full((4, 5, 3), 3 + 4j, dtype=np.complex64))
    with pytest.warns(UserWarning, match="complex values; using their magnitude"):
        img = load_volume(tmp_path / "c.npy")
    assert torch.equal(img, torch.full((1, 4, 5, 3), 5.0))


def test_complex_input_with_nan_is_still_refused(tmp_path):
    values = np.ones((8, 8, 3), dtype=np.complex64)
    values[2, 3, 1] = 1 + 1j * np.nan  # finite real part: a cast to real hid it
    nib.save(nib.Nifti1Image(values, np.eye(4)), tmp_path / "c.nii.gz")
    with pytest.warns(UserWarning, match="complex"), pytest.raises(MrsrError, match="1 NaN/Inf voxels"):
        load_volume(tmp_path / "c.nii.gz")


SINGULAR = {
    "zero-length axis": (np.diag([1.0, 1.0, 0.0, 1.0]), "singular"),
    "parallel axes": (np.array([[1.0, 1, 0, 0], [0, 0, 0, 0], [0, 0, 2, 0], [0, 0, 0, 1]]), "singular"),
    "NaN entry": (np.array([[1.0, 0, 0, np.nan], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]), "NaN/Inf"),
}


@pytest.mark.parametrize("affine, message", SINGULAR.values(), ids=SINGULAR.keys())
def test_singular_or_non_finite_affine_is_refused(tmp_path, affine, message):
    path = _header_nifti(tmp_path / "bad.nii.gz", np.ones((8, 8, 4), np.float32), affine)
    with pytest.raises(MrsrError, match=message) as err:
        load_volume(path)
    assert "\n" not in str(err.value) and "sform" in str(err.value)
    with pytest.raises(MrsrError, match=message):  # nor written, from Python
        save_volume(MetaTensor(torch.ones(1, 8, 8, 4), affine=torch.as_tensor(affine)), tmp_path / "out.nii.gz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.nii.gz"]


def test_cli_refuses_a_singular_affine(tmp_path, capsys):
    t1, _ = _t1()
    (tmp_path / "in").mkdir()
    path = _header_nifti(tmp_path / "in" / "t1.nii.gz", t1, SINGULAR["parallel axes"][0])
    _cli_refuses(capsys, path, tmp_path, "affine .*is singular")


SHEARED = np.array([[2.0, 0.5, 0, 10], [0, 2, 0, 20], [0, 0, 3, 30], [0, 0, 0, 1]])  # y axis 14 degrees off x's normal


def test_sheared_affine_is_written_in_the_sform_only(tmp_path):
    t1, _ = _t1()
    img = load_volume(_coded_nifti(tmp_path / "sheared.nii.gz", t1, SHEARED, 1, 1))
    np.testing.assert_allclose(img.affine.numpy(), SHEARED)  # the sform, not the qform nibabel stripped
    with pytest.warns(UserWarning, match=r"sheared \(14° from perpendicular\).*sform only \(qform code 0\)") as caught:
        out = save_volume(img, tmp_path / "out.nii.gz")
    assert len(caught) == 1 and "\n" not in str(caught[0].message)
    header = nib.load(out).header
    assert (int(header["sform_code"]), int(header["qform_code"])) == (1, 0)
    np.testing.assert_allclose(nib.load(out).affine, SHEARED, atol=1e-6)
    # no qform that says otherwise: ITK, which cannot represent a shear, refuses the file instead of misplacing it
    with pytest.raises(RuntimeError, match="orthonormal"):
        sitk.ReadImage(str(out))
    with pytest.raises(MrsrError, match="sheared.*DICOM cannot hold it; write NIfTI"):
        save_volume(img, tmp_path / "series")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.nii.gz", "sheared.nii.gz"]


@pytest.mark.parametrize("codes", [(1, 2), (2, 0), (0, 1), (1, 1)])
def test_simpleitk_reads_outputs_as_nibabel_does(tmp_path, codes):
    t1, affine = _t1()
    path = _coded_nifti(tmp_path / "oblique.nii.gz", t1, _oblique(affine), *codes)
    out = save_volume(load_volume(path), tmp_path / "out.nii.gz")
    header = nib.load(out).header
    assert (int(header["sform_code"]), int(header["qform_code"])) == codes
    for ours, theirs in zip(_nibabel_geometry(out), _sitk_geometry(out)):
        np.testing.assert_allclose(ours, theirs, atol=1e-4)
    np.testing.assert_allclose(nib.load(out).affine, _oblique(affine), atol=1e-4)


@pytest.mark.parametrize("codes", [(2, 0), (1, 2), (0, 1), (3, 4)])
def test_header_codes_are_kept(tmp_path, codes):
    path = _coded_nifti(tmp_path / "in.nii.gz", np.ones((8, 8, 4), np.float32), np.diag([2.0, 2, 3, 1]), *codes)
    out = save_volume(load_volume(path), tmp_path / "out.nii.gz")
    header = nib.load(out).header
    assert (int(header["sform_code"]), int(header["qform_code"])) == codes


def test_real_t1_keeps_its_codes_through_infer_and_degrade(tmp_path, capsys):
    sample = nib.load(sample_path()).header
    assert (int(sample["sform_code"]), int(sample["qform_code"])) == (1, 2)
    t1, affine = _t1()
    aligned = _coded_nifti(tmp_path / "aligned.nii.gz", t1, affine, 2, 0)
    for source, codes in [(sample_path(), (1, 2)), (aligned, (2, 0))]:
        for argv in (["infer", "--network", "zerofill", "--scale", "2"], ["degrade", "--scale", "2"]):
            out = tmp_path / f"{argv[0]}_{codes[0]}{codes[1]}.nii.gz"
            assert main([argv[0], str(source), "-o", str(out), *argv[1:]]) == 0, capsys.readouterr().err
            header = nib.load(out).header
            assert (int(header["sform_code"]), int(header["qform_code"])) == codes, argv


def test_volume_without_codes_is_written_scanner_based(tmp_path):
    out = save_volume(MetaTensor(torch.ones(1, 4, 4, 2)), tmp_path / "out.nii.gz")
    assert (int(nib.load(out).header["sform_code"]), int(nib.load(out).header["qform_code"])) == (1, 1)


def _claims(path, shape, dtype=np.int16, compress=False, voxels=b""):
    """A NIfTI file whose header claims ``shape`` while it holds only ``voxels``."""
    header = nib.Nifti1Header()
    header.set_data_shape(shape)
    header.set_data_dtype(dtype)
    header.set_sform(np.eye(4), code=1)
    stream = io.BytesIO()
    header.write_to(stream)
    data = stream.getvalue() + voxels  # the header has its 4-byte extension flag
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


@pytest.mark.parametrize("name", ["huge.nii", "huge.nii.gz"])
def test_header_shape_beyond_the_file_is_refused_before_reading(tmp_path, name):
    path = _claims(tmp_path / name, (20000, 20000, 5000), compress=name.endswith(".gz"), voxels=b"\0" * 48)
    assert path.stat().st_size < 500
    with pytest.raises(MrsrError, match=r"header's shape 20000 x 20000 x 5000 \(int16\) does not match") as err:
        load_volume(path)
    assert "\n" not in str(err.value) and "MemoryError" not in str(err.value)


def test_short_uncompressed_nifti_says_its_size(tmp_path):
    path = _claims(tmp_path / "short.nii", (8, 8, 4), np.float32, voxels=b"\0" * 1000)  # 1024 bytes are needed
    with pytest.raises(MrsrError, match=r"8 x 8 x 4 \(float32\) does not match the file's size: .*1024 B.* 1000 B"):
        load_volume(path)


def test_cli_refuses_a_header_larger_than_its_file(tmp_path, capsys):
    (tmp_path / "in").mkdir()
    path = _claims(tmp_path / "in" / "huge.nii.gz", (20000, 20000, 5000), compress=True, voxels=b"\0" * 48)
    _cli_refuses(capsys, path, tmp_path, "header's shape 20000 x 20000 x 5000 .*does not match the file's size")


def test_selfsr_output_keeps_the_inputs_codes(tmp_path):
    t1, _ = _t1()
    thick = t1[40:88, 40:88, :30].reshape(48, 48, 10, 3).mean(-1)  # real T1 voxels in 6 mm box slices
    path = _coded_nifti(tmp_path / "thick.nii.gz", thick, np.diag([2.0, 2, 6, 1]), 2, 0)
    args = ["selfsr", str(path), "-o", str(tmp_path / "iso.nii.gz"), "--steps", "3", "--approach", "upsample"]
    assert main([*args, "--device", "cpu"]) == 0
    header = nib.load(tmp_path / "iso.nii.gz").header
    assert (int(header["sform_code"]), int(header["qform_code"])) == (2, 0)
    assert header.get_data_shape() == (48, 48, 30)


def test_out_of_memory_while_reading_is_one_line(monkeypatch):
    def no_memory(*args, **kwargs):
        raise MemoryError()

    monkeypatch.setattr(nib.arrayproxy.ArrayProxy, "__array__", no_memory)
    with pytest.raises(MrsrError, match="its voxels do not fit in memory; crop it first") as err:
        load_volume(sample_path())
    assert "\n" not in str(err.value)
