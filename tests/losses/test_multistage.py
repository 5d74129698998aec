"""MultiStageLoss against a manual computation on a real (small) ICONet."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from mrsr.losses.multistage import MultiStageLoss
from mrsr.networks import get_network
from mrsr.transforms.kspace import fourier_resize


@pytest.fixture(scope="module")
def iconet_x4():
    torch.manual_seed(0)
    return get_network("iconet", preset="small", scale=4)


def test_matches_the_manual_sum_over_stages(iconet_x4):
    lr, hr = torch.rand(2, 1, 6, 7), torch.rand(2, 1, 24, 28)
    out = iconet_x4.forward_stages(lr)

    def kspace(factor):  # the HR image as an acquisition on the coarser grid measures it (docs/CONVENTIONS.md)
        return fourier_resize(hr, [24 // factor, 28 // factor], [-2, -1]).abs()

    manual = (
        F.l1_loss(out["sr"][0], kspace(2))  # stage 1: x2 grid
        + F.l1_loss(out["sr"][1], hr)  # stage 2: the HR grid
        + 0.5 * F.l1_loss(out["rec"][0], kspace(4))  # reconstruction on the LR grid
        + 0.5 * F.l1_loss(out["rec"][1], kspace(2))
    )
    loss = MultiStageLoss(4, rec_weight=0.5)
    torch.testing.assert_close(loss(out, hr), manual)
    terms = loss.stage_losses(out, hr)
    assert set(terms) == {"sr_1", "sr_2", "rec_1", "rec_2"}
    torch.testing.assert_close(terms["sr_2"], F.l1_loss(out["sr"][1], hr))


def test_plain_tensor_is_the_final_output_loss(iconet_x4):
    lr, hr = torch.rand(1, 1, 5, 6), torch.rand(1, 1, 20, 24)
    with torch.no_grad():
        sr = iconet_x4(lr)
    torch.testing.assert_close(MultiStageLoss(4)(sr, hr), F.l1_loss(sr, hr))
    torch.testing.assert_close(MultiStageLoss(4, criterion=torch.nn.MSELoss())(sr, hr), F.mse_loss(sr, hr))


def test_both_branches_of_every_stage_get_gradients(iconet_x4):
    lr, hr = torch.rand(1, 1, 6, 6), torch.rand(1, 1, 24, 24)
    iconet_x4.zero_grad(set_to_none=True)
    MultiStageLoss(4)(iconet_x4.forward_stages(lr), hr).backward()
    for t in range(2):
        stage = iconet_x4.stages[t]
        assert stage.rec_tail.weight.grad.abs().sum() > 0 and stage.sr_tail.weight.grad.abs().sum() > 0


def test_stage_count_and_scale_are_checked(iconet_x4):
    out = iconet_x4.forward_stages(torch.rand(1, 1, 4, 4))
    hr = torch.rand(1, 1, 16, 16)
    torch.testing.assert_close(MultiStageLoss()(out, hr), MultiStageLoss(4)(out, hr))  # scale from the stages
    with pytest.raises(ValueError, match="expects 1 stages"):
        MultiStageLoss(2)(out, hr)
    with pytest.raises(ValueError, match="scale"):
        MultiStageLoss(3)


def test_given_stage_targets_are_used_as_they_are(iconet_x4):
    """Training passes whole-slice targets; with the HR's own targets the loss is the same."""
    from mrsr.networks.iconet import ICONet

    lr, hr = torch.rand(2, 1, 6, 7), torch.rand(2, 1, 24, 28)
    out = iconet_x4.forward_stages(lr)
    targets = ICONet.stage_targets(hr, 4)
    torch.testing.assert_close(MultiStageLoss(4)(out, targets), MultiStageLoss(4)(out, hr))
    moved = {"sr": targets["sr"], "rec": [targets["rec"][0] + 0.25, targets["rec"][1]]}
    terms = MultiStageLoss(4).stage_losses(out, moved)
    torch.testing.assert_close(terms["rec_1"], F.l1_loss(out["rec"][0], targets["rec"][0] + 0.25))
    torch.testing.assert_close(terms["sr_2"], F.l1_loss(out["sr"][1], hr))
    torch.testing.assert_close(MultiStageLoss(4)(out["sr"][-1], targets), F.l1_loss(out["sr"][-1], hr))
    with pytest.raises(ValueError, match="rec_1 is"):
        MultiStageLoss(4)(out, {"sr": targets["sr"], "rec": [hr, targets["rec"][1]]})


def test_criterion_by_name(iconet_x4):
    out = iconet_x4.forward_stages(torch.rand(1, 1, 4, 4))
    hr = torch.rand(1, 1, 16, 16)
    by_module = MultiStageLoss(4, criterion=torch.nn.MSELoss())(out, hr)
    torch.testing.assert_close(MultiStageLoss(4, criterion="mse")(out, hr), by_module)
    torch.testing.assert_close(MultiStageLoss(4, criterion="L1")(out, hr), MultiStageLoss(4)(out, hr))
    with pytest.raises(ValueError, match="l1, mse"):
        MultiStageLoss(4, criterion="huber")
