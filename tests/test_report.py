"""The panel: slices oriented from the affine as viewers show them, baselines, colour bar, atomic write."""

from __future__ import annotations

import itertools

import nibabel as nib
import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from monai.data import MetaTensor

from mrsr.data import sample_path
from mrsr.errors import MrsrError
from mrsr.metrics import evaluate
from mrsr.report import build_panel_figure, oriented_slice, save_panel
from mrsr.transforms import KSpaceTruncate

PLANES = {0: "sagittal", 1: "coronal", 2: "axial"}  # by the RAS axis the slice axis runs along
# the radiological convention: the anatomical end at the top of the screen and the one on the left
SCREEN = {"axial": ("A", "R"), "coronal": ("S", "R"), "sagittal": ("S", "A")}
LETTER_AXIS = {"R": 0, "A": 1, "S": 2}  # positive end of each RAS axis
SHAPE = (9, 11, 13)  # odd and distinct: a transpose or a flip moves a marker off its expected place


def _affine(perm, signs, spacing=(2.0, 3.0, 4.0)) -> np.ndarray:
    """Voxel axis i runs along RAS axis perm[i], toward its positive end when signs[i] > 0."""
    affine = np.eye(4)
    affine[:3, :3] = 0
    for i, (w, s) in enumerate(zip(perm, signs)):
        affine[w, i] = s * spacing[i]
    return affine


def _end(affine, letter: str) -> tuple[int, int]:
    """(voxel axis, index) of the volume's edge at the patient's ``letter`` end."""
    world = LETTER_AXIS[letter]
    axis = int(np.argmax(np.abs(affine[world, :3])))
    return axis, SHAPE[axis] - 1 if affine[world, axis] > 0 else 0


def _marked(affine, top: str, left: str) -> torch.Tensor:
    """A (1, *SHAPE) volume: 2 at the centre of the ``top`` edge, 1 at the centre of the ``left`` edge."""
    v = torch.zeros(1, *SHAPE)
    for letter, value in ((top, 2.0), (left, 1.0)):
        where = [n // 2 for n in SHAPE]
        axis, index = _end(affine, letter)
        where[axis] = index
        v[(0, *where)] = value
    return v


ORIENTATIONS = [(p, s) for p in itertools.permutations(range(3)) for s in itertools.product((1, -1), repeat=3)]


@pytest.mark.parametrize("slice_axis", [0, 1, 2])
@pytest.mark.parametrize("perm,signs", ORIENTATIONS, ids=lambda x: "".join(map(str, x)))
def test_every_axis_order_shows_the_top_end_up_and_the_left_end_left(perm, signs, slice_axis):
    affine = _affine(perm, signs)
    plane = PLANES[perm[slice_axis]]
    volume = _marked(affine, *SCREEN[plane])
    image, name = oriented_slice(volume, SHAPE[slice_axis] // 2, slice_axis, affine)
    assert name == plane
    rows, cols = image.shape
    assert np.argwhere(image == 2).tolist() == [[0, cols // 2]]  # S (A on axial slices) on the top row
    assert np.argwhere(image == 1).tolist() == [[rows // 2, 0]]  # R (A on sagittal slices) in the left column


def test_lsa_like_the_sample_coronal_has_superior_up_and_patient_right_on_the_left():
    affine = np.array([[-2.0, 0, 0, 0], [0, 0, 3, -254], [0, 2, 0, 0], [0, 0, 0, 1]])  # the sample's
    assert nib.aff2axcodes(affine) == ("L", "S", "A")
    v = torch.zeros(1, *SHAPE)
    v[0, 4, 10, 6] = 2.0  # axis 1 runs toward S: its last index is the superior end
    v[0, 0, 5, 6] = 1.0  # axis 0 runs toward L: index 0 is the patient's right
    image, plane = oriented_slice(MetaTensor(v, affine=torch.as_tensor(affine)), 6, slice_axis=2)  # affine from meta
    assert plane == "coronal" and image.shape == (11, 9)
    assert np.argwhere(image == 2).tolist() == [[0, 4]] and np.argwhere(image == 1).tolist() == [[5, 0]]


def test_ras_axial_has_anterior_up_and_patient_right_on_the_left():
    affine = np.diag([1.0, 1.0, 1.0, 1.0])
    v = torch.zeros(1, *SHAPE)
    v[0, 4, 10, 6] = 2.0  # axis 1 runs toward A
    v[0, 8, 5, 6] = 1.0  # axis 0 runs toward R: its last index is the patient's right
    image, plane = oriented_slice(v, 6, slice_axis=2, affine=affine)
    assert plane == "axial"
    assert np.argwhere(image == 2).tolist() == [[0, 4]] and np.argwhere(image == 1).tolist() == [[5, 0]]


def test_without_an_affine_the_slice_is_shown_as_stored_and_the_plane_is_unknown():
    v = torch.rand(1, *SHAPE)
    image, plane = oriented_slice(v, 3, slice_axis=1)
    assert plane == "unknown"
    np.testing.assert_array_equal(image, v[0, :, 3, :].numpy().T)


def test_sample_is_lsa_its_planes_are_named_from_the_affine_and_its_head_is_upright(t1_volume):
    assert nib.aff2axcodes(nib.load(sample_path()).affine) == ("L", "S", "A")
    assert [oriented_slice(t1_volume, 10, a)[1] for a in (0, 1, 2)] == ["sagittal", "axial", "coronal"]
    image, _ = oriented_slice(t1_volume, t1_volume.shape[3] // 2, 2)
    # The vertex is a dome: 10% of the head's height below its top edge the head is far narrower than 10% of
    # it above its bottom edge, where the slab is cut flat through the skull base and neck (measured on
    # the middle coronal slice: 42 vs 73 voxels; every slice from 10 to 55 has the narrow end at the top).
    head = image > 0.1 * np.percentile(image, 99)
    rows = np.flatnonzero(head.any(1))
    top, bottom = rows[0], rows[-1]
    margin = (bottom - top) // 10
    width = head.sum(1)
    assert width[top + margin] < 0.75 * width[bottom - margin]


@pytest.fixture(scope="module")
def volumes(t1_volume):
    hr = t1_volume / t1_volume.max()
    lr = KSpaceTruncate(2, axes=(0, 1))(hr)
    g = torch.Generator().manual_seed(0)
    noisy = {s: hr + s * torch.randn(hr.shape, generator=g) for s in (0.02, 0.05, 0.1)}
    return lr, hr, noisy


def test_figure_has_baselines_beside_the_network_and_a_colour_bar_on_the_error(volumes):
    lr, hr, noisy = volumes
    fig = build_panel_figure(lr, noisy[0.02], hr, title="demo", baselines={"zerofill": noisy[0.05],
                             "bicubic": noisy[0.1]}, sr_name="wasa", psnr_border=2)  # fmt: skip
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 6 + 1  # LR, 2 baselines, SR, HR, error; its colour bar
    titles = [ax.get_title() for ax in fig.axes[:6]]
    assert titles[0].startswith("LR") and titles[4].startswith("HR") and titles[5] == "|wasa \u2212 HR|"
    assert [t.split("\n")[0] for t in titles[1:4]] == ["zerofill", "bicubic", "wasa"]
    for t, sr in zip(titles[1:4], (noisy[0.05], noisy[0.1], noisy[0.02])):  # the PSNR evaluate reports
        assert t.split("\n")[1] == f"PSNR {evaluate(sr, hr, border=2).psnr:.2f} dB"
    assert "intensity units" in fig.axes[6].get_ylabel()
    assert fig.get_supxlabel().startswith("coronal slice 31 of 62 (voxel axis 2); radiological")


def test_plain_tensors_without_an_affine_say_the_orientation_is_unknown(volumes):
    lr, hr, noisy = volumes
    fig = build_panel_figure(lr.as_tensor(), noisy[0.02].as_tensor(), hr.as_tensor(), slice_axis=2)
    assert "orientation unknown" in fig.get_supxlabel() and len(fig.axes) == 4 + 1


def test_a_baseline_on_another_grid_is_refused(volumes):
    lr, hr, noisy = volumes
    with pytest.raises(MrsrError, match="bicubic"):
        build_panel_figure(lr, noisy[0.02], hr, baselines={"bicubic": lr})


def test_save_panel_writes_a_png_as_called_today_and_leaves_no_temporary_file(volumes, tmp_path):
    lr, hr, noisy = volumes
    path = save_panel(lr, noisy[0.02], hr, tmp_path / "panel.png", title="zerofill, x2")  # cmd_demo's call
    assert path == tmp_path / "panel.png" and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    path = save_panel(lr, noisy[0.02], hr, tmp_path / "panel.png", baselines={"zerofill": noisy[0.05]})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["panel.png"]


def test_a_failed_write_leaves_the_old_file_and_no_partial_one(volumes, tmp_path, monkeypatch):
    lr, hr, noisy = volumes
    (tmp_path / "panel.png").write_bytes(b"old")

    def broken(self, fname, **kwargs):
        with open(fname, "wb") as f:
            f.write(b"\x89PNG half")
        raise OSError("disk full")

    monkeypatch.setattr(Figure, "savefig", broken)
    with pytest.raises(OSError, match="disk full"):
        save_panel(lr, noisy[0.02], hr, tmp_path / "panel.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["panel.png"]
    assert (tmp_path / "panel.png").read_bytes() == b"old"
