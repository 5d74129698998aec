"""Test-time adaptation: cross-scale pairs, the do-no-harm choice, determinism, small and one-slice inputs."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mrsr.adapt import CrossScalePairs, TooSmallToAdapt, adapt, adaptable_slices
from mrsr.bundle import load_bundle_network
from mrsr.networks.baselines import ZeroFill
from mrsr.settings import AdaptSettings
from mrsr.transforms import KSpaceTruncate, RobustNormalize
from mrsr.transforms.slicestack import stack_neighbours


@pytest.fixture(scope="module")
def lr_t1(t1_volume):
    """The real T1 sample's slices 20-39, degraded x2 in-plane: (1, 64, 64, 20)."""
    hr = RobustNormalize()(t1_volume)[..., 20:40]
    return KSpaceTruncate(2, axes=(0, 1))(hr)


class ZeroFillPlusPattern(nn.Module):
    """Zero-filling plus a learnable constant pattern: strictly worse than zero-filling while the pattern is not 0."""

    def __init__(self) -> None:
        super().__init__()
        self.zerofill = ZeroFill(scale=2)
        self.bias = nn.Parameter(torch.tensor(0.05))

    def forward(self, x):
        y = self.zerofill(x)
        checker = (torch.arange(y.shape[-2])[:, None] + torch.arange(y.shape[-1])[None]) % 2
        return y + self.bias * checker


def test_falls_back_to_zerofill_when_the_network_cannot_beat_it(lr_t1):
    net = ZeroFillPlusPattern()
    result = adapt(
        net, lr_t1, 2, AdaptSettings(steps=4, lr=0.0, validate_every=2), slice_axis=2, data_consistency=False
    )
    assert result.choice == "zerofill" and isinstance(result.predictor, ZeroFill)
    assert result.scores["zerofill"] > result.scores["network"]
    assert result.scores["adapted"] == pytest.approx(result.scores["network"])  # lr 0: nothing changed
    assert "zerofill" in result.summary() and "lost to zerofill" in result.summary()
    assert float(net.bias.detach()) == pytest.approx(0.05)  # the given network is never modified


def test_keeps_the_network_when_adaptation_does_not_improve(lr_t1):
    net, channels = load_bundle_network("msrn", 2)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    result = adapt(net, lr_t1, 2, AdaptSettings(steps=2, lr=0.0, validate_every=1), slice_axis=2, in_channels=channels)
    assert result.choice == "network" and result.predictor is net
    assert result.scores["network"] > result.scores["zerofill"]
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


def test_adaptation_that_helps_is_kept_and_is_deterministic(lr_t1):
    net = ZeroFillPlusPattern()  # learning the pattern away beats the network; reaching 0 exactly ties zerofill
    runs = [
        adapt(net, lr_t1, 2, AdaptSettings(steps=6, lr=0.004, validate_every=3, seed=7), slice_axis=2) for _ in range(2)
    ]
    assert runs[0].scores == runs[1].scores and runs[0].steps == 6
    assert runs[0].scores["adapted"] > runs[0].scores["network"]
    other = adapt(net, lr_t1, 2, AdaptSettings(steps=6, lr=0.004, validate_every=3, seed=8), slice_axis=2)
    assert other.scores["adapted"] != runs[0].scores["adapted"]


def test_time_budget_stops_early(lr_t1):
    net, channels = load_bundle_network("msrn", 2)
    result = adapt(net, lr_t1, 2, AdaptSettings(steps=10_000, time_budget=0.0), slice_axis=2, in_channels=channels)
    assert result.steps == 1 and "adapted" in result.scores


def test_one_slice_volume_holds_out_a_strip(t1_volume):
    one = KSpaceTruncate(2, axes=(0, 1))(RobustNormalize()(t1_volume)[..., 31:32])  # (1, 64, 64, 1)
    net, channels = load_bundle_network("msrn", 2)
    result = adapt(net, one, 2, AdaptSettings(steps=2, validate_every=1), slice_axis=2, in_channels=channels)
    assert result.holdout.startswith("columns") and result.steps == 2
    pairs = CrossScalePairs(one.as_tensor()[0].movedim(2, 0), 2, 1, 0.2)
    assert pairs.train[0].shape[-1] + (pairs.columns.stop - pairs.columns.start) == 64


def test_pairs_hold_out_slices_and_keep_the_grid():
    vol = torch.rand(10, 32, 24)
    pairs = CrossScalePairs(vol, 2, 3, 0.2)
    assert len(pairs.train) == 8 and pairs.val_input.shape == (2, 3, 16, 12)
    assert pairs.val_target.shape == (2, 1, 32, 24)
    assert torch.equal(pairs.val_target[:, 0], vol[[2, 7]])


def test_too_small_input_is_refused(t1_volume):
    tiny = torch.rand(1, 62, 80, 3)
    with pytest.raises(TooSmallToAdapt, match="too small to adapt on: its slices are 62x80.*at least 64x64"):
        adapt(ZeroFillPlusPattern(), tiny, 2, slice_axis=2)
    with pytest.raises(ValueError, match="integer scale"):
        adapt(ZeroFillPlusPattern(), torch.rand(1, 40, 40, 3), 1.5)


def test_pairs_are_the_public_stacking_and_degradation(lr_t1):
    """Held-out pairs: slices with their neighbours (stack_neighbours) and their KSpaceTruncate one scale down."""
    vol = adaptable_slices(lr_t1, 2, 2)
    assert type(vol) is torch.Tensor and vol.shape == (20, 64, 64)
    pairs = CrossScalePairs(vol, 2, 3, 0.2)
    stacks = stack_neighbours(vol, 1, [2, 7, 12, 17])  # every fifth slice held out
    assert torch.equal(pairs.val_target, stacks[:, 1:2])
    for image, small in zip(stacks, pairs.val_input):
        torch.testing.assert_close(small, KSpaceTruncate(2, axes=(0, 1))(image))
