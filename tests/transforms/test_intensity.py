"""RobustNormalize: percentiles to [0, 1] and back."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.data import MetaTensor

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
