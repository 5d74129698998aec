"""RobustNormalize: percentiles to [0, 1] and back."""

from __future__ import annotations

import monai.transforms
import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from monai.transforms.utils import get_transform_backends
from monai.utils import TransformBackends

from mrsr.transforms import RobustNormalize, RobustNormalized
from mrsr.transforms.intensity import INTENSITY_KEY


def test_round_trip_on_real_data(t1_volume):
    t = RobustNormalize(0.5, 99.5)
    y = t(t1_volume)
    lo, hi = y.meta[INTENSITY_KEY]
    assert lo == pytest.approx(float(np.percentile(t1_volume.numpy(), 0.5)))
    assert hi == pytest.approx(float(np.percentile(t1_volume.numpy(), 99.5)))
    assert float(y.min()) >= -1e-6 and abs(float(np.percentile(y.numpy(), 99.5)) - 1) < 1e-5
    assert torch.equal(y.affine, t1_volume.affine)
    np.testing.assert_allclose(t.inverse(y).numpy(), t1_volume.numpy(), atol=1e-3)


def test_inverse_of_an_image_without_meta_needs_the_range():
    with pytest.raises(ValueError, match="intensity range"):
        RobustNormalize.inverse(torch.zeros(2))
    assert RobustNormalize.inverse(torch.ones(2), (1.0, 3.0)).tolist() == [3.0, 3.0]


def test_constant_image_is_refused():
    with pytest.raises(ValueError, match="constant"):
        RobustNormalize()(MetaTensor(torch.full((1, 4, 4, 4), 7.0)))


def test_dictionary_version(t1_volume):
    d = RobustNormalized("image")({"image": t1_volume})
    assert INTENSITY_KEY in d["image"].meta


def test_history_is_kept_and_inverse_pops_its_own_record(t1_volume):
    from monai.transforms import Orientation

    oriented = Orientation("RAS", labels=None)(t1_volume)
    t = RobustNormalize(0.5, 99.5)
    y = t(oriented)
    assert [op["class"] for op in y.applied_operations] == ["Orientation", "RobustNormalize"]
    assert y.applied_operations[-1]["extra_info"]["intensity_range"] == y.meta[INTENSITY_KEY]
    back = t.inverse(y)
    assert [op["class"] for op in back.applied_operations] == ["Orientation"]
    np.testing.assert_allclose(back.numpy(), oriented.numpy(), atol=1e-3)
    assert oriented.applied_operations[-1]["class"] == "Orientation"  # the input's history is untouched


def test_invertd_after_spacing_brings_sr_intensities_back():
    """Spacingd + RobustNormalized on the real T1; Invertd maps an output back to the file's grid and scale."""
    from monai.transforms import Compose, Invertd, Spacingd

    from mrsr.data import LoadVolumed, load_volume, sample_path

    original = load_volume(sample_path())  # 2 x 2 x 3 mm voxels
    pre = Compose([LoadVolumed("image"), Spacingd("image", pixdim=(2.0, 2.0, 1.5)), RobustNormalized("image")])
    d = pre({"image": str(sample_path())})
    assert d["image"].shape == (1, 128, 128, 123) and float(d["image"].max()) < 1.5
    d["pred"] = MetaTensor(d["image"].as_tensor() * 1.0)  # stands in for a network output: no meta, no history
    out = Invertd("pred", transform=pre, orig_keys="image", nearest_interp=False)(d)["pred"]
    assert out.shape == original.shape  # Spacingd undone: every second sample lies on an original one
    torch.testing.assert_close(out.affine, original.affine.to(torch.float64))
    np.testing.assert_allclose(out.numpy(), original.numpy(), atol=1e-3 * float(original.max()))


def test_backends_are_monai_transform_backends(monkeypatch):
    """RobustNormalize(d) declare TORCH only, as a ``TransformBackends`` member, and MONAI's
    ``get_transform_backends()`` reports exactly that: a numpy input is accepted but comes back as a
    MetaTensor (the range is kept in its meta), not as a numpy array."""
    for cls in (RobustNormalize, RobustNormalized):
        assert all(isinstance(b, TransformBackends) for b in cls.backend), cls
        assert cls.backend == [TransformBackends.TORCH]
    monkeypatch.setattr(monai.transforms, "RobustNormalize", RobustNormalize, raising=False)
    assert get_transform_backends()["RobustNormalize"] == [True, False]
    out = RobustNormalize(0, 100)(np.array([[2.0, 4.0, 6.0]]))
    assert isinstance(out, MetaTensor) and out.tolist() == [[0.0, 0.5, 1.0]]
