"""SliceStack: neighbouring slices as channels."""

from __future__ import annotations

import monai.transforms
import numpy as np
import pytest
import torch
from monai.transforms.utils import get_transform_backends
from monai.utils import TransformBackends

from mrsr.transforms import SliceStack, SliceStackd
from mrsr.transforms.slicestack import stack_neighbours


@pytest.mark.parametrize("axis", [0, 1, 2])
@pytest.mark.parametrize("k", [0, 1, 2])
def test_channels_are_shifted_slices(t1_volume, axis, k):
    out = SliceStack(k=k, axis=axis)(t1_volume)
    assert out.shape == (2 * k + 1, *t1_volume.shape[1:])
    vol = t1_volume[0].movedim(axis, 0)
    stacked = out.movedim(axis + 1, 1)
    n = vol.shape[0]
    for c in range(2 * k + 1):
        for i in (0, 1, n // 2, n - 1):
            assert torch.equal(stacked[c, i], vol[min(max(i + c - k, 0), n - 1)])
    assert torch.equal(out[k], t1_volume[0])  # the centre channel is the volume itself


def test_numpy_and_dictionary():
    x = np.arange(12.0).reshape(1, 1, 3, 4)
    out = SliceStack(k=1, axis=2)(x)
    assert isinstance(out, np.ndarray) and out.shape == (3, 1, 3, 4)
    np.testing.assert_array_equal(out[0, 0, 0], [0, 0, 1, 2])
    d = SliceStackd("image", k=1, axis=2)({"image": torch.as_tensor(x)})
    assert d["image"].shape == (3, 1, 3, 4)


def test_errors():
    with pytest.raises(ValueError, match="single-channel"):
        SliceStack(1)(torch.zeros(2, 4, 4, 4))
    with pytest.raises(ValueError, match="does not exist"):
        SliceStack(1, axis=3)(torch.zeros(1, 4, 4, 4))
    with pytest.raises(ValueError, match="k >= 0"):
        SliceStack(-1)


def test_stack_neighbours_gathers_the_requested_slices():
    slices = torch.arange(5.0)[:, None, None].expand(5, 4, 3)  # slice z holds z
    out = stack_neighbours(slices, 2, [0, 4, 2])
    assert out.shape == (3, 5, 4, 3)
    assert out[:, :, 0, 0].tolist() == [[0, 0, 0, 1, 2], [2, 3, 4, 4, 4], [0, 1, 2, 3, 4]]
    assert torch.equal(stack_neighbours(slices, 0)[:, 0], slices)  # k = 0: every slice alone
    assert torch.equal(stack_neighbours(slices, 1, torch.tensor([3])), stack_neighbours(slices, 1)[3:4])
    with pytest.raises(ValueError, match="k >= 0"):
        stack_neighbours(slices, -1)


def test_slice_stack_is_stack_neighbours_of_the_whole_volume(t1_volume):
    out = SliceStack(k=2, axis=1)(t1_volume)
    expected = stack_neighbours(t1_volume[0].movedim(1, 0), 2).movedim(0, 2)
    assert torch.equal(out, expected) and out.is_contiguous()


def test_backends_are_monai_transform_backends(monkeypatch):
    """SliceStack(d) declare TORCH and NUMPY as ``TransformBackends`` members, MONAI's
    ``get_transform_backends()`` reports both, and a numpy volume is stacked into a numpy array."""
    for cls in (SliceStack, SliceStackd):
        assert all(isinstance(b, TransformBackends) for b in cls.backend), cls
        assert cls.backend == [TransformBackends.TORCH, TransformBackends.NUMPY]
    monkeypatch.setattr(monai.transforms, "SliceStack", SliceStack, raising=False)
    assert get_transform_backends()["SliceStack"] == [True, True]
    out = SliceStack(k=1, axis=0)(np.arange(3.0).reshape(1, 3, 1))
    assert isinstance(out, np.ndarray)
    assert out[:, :, 0].tolist() == [[0.0, 0.0, 1.0], [0.0, 1.0, 2.0], [1.0, 2.0, 2.0]]
