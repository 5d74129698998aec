"""ICONet's multi-stage loss: every stage's SR and reconstruction supervised against the resized HR."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from mrsr.networks.blocks import check_scale
from mrsr.networks.iconet import ICONet

__all__ = ["MultiStageLoss"]

StageOutputs = Mapping[str, Sequence[torch.Tensor]]


class MultiStageLoss(nn.Module):
    """``sum_t L(sr_t, T_sr_t) + rec_weight * sum_t L(rec_t, T_rec_t)`` over ICONet's x2 stages.

    Kui et al., ICONet (IEEE TCI 2025): both branches are supervised at every stage. The
    targets come from :meth:`ICONet.stage_targets` (the HR k-space truncated to each stage's grid,
    the degradation of docs/CONVENTIONS.md); the stage terms are summed, not averaged, as the paper's loss.

    Called with the dict of :meth:`ICONet.forward_stages` (training) or with a plain SR tensor (then
    just ``L(sr, hr)``, e.g. for validation on the final output). The target is the HR tensor (the
    stage targets are then computed from it, exact for whole images) or, in training, the stage
    targets themselves, ``{"sr": [...], "rec": [...]}`` on the same grids as the outputs, taken from
    whole slices (:class:`mrsr.engines.data.PairedPatchDataset` ``target_grids``).

    Args:
        scale: the network's scale (2, 4 or 8: one to three stages); None: ``2 ** (number of stages)``
            of each prediction. A given scale is checked against the prediction.
        rec_weight: weight of the reconstruction terms (1).
        criterion: the per-stage loss: a module, or ``"l1"`` (default, the paper's) or ``"mse"``.

    Shapes:
        pred ``{"sr": [(B, C, 2**t h, 2**t w)], "rec": [(B, C, 2**(t-1) h, 2**(t-1) w)]}`` or
        (B, C, s*h, s*w); hr (B, C, s*h, s*w) or targets shaped as the stage outputs -> scalar.
    """

    CRITERIA = {"l1": nn.L1Loss, "mse": nn.MSELoss}

    def __init__(
        self, scale: int | None = None, rec_weight: float = 1.0, criterion: nn.Module | str | None = None
    ) -> None:
        super().__init__()
        if criterion is None or isinstance(criterion, str):
            name = "l1" if criterion is None else criterion.lower()
            if name not in self.CRITERIA:
                raise ValueError(f"MultiStageLoss: criterion {criterion!r} is not one of {', '.join(self.CRITERIA)}.")
            criterion = self.CRITERIA[name]()
        self.scale = None if scale is None else check_scale(scale, (2, 4, 8), "MultiStageLoss")
        self.rec_weight = float(rec_weight)
        self.criterion = criterion

    def stage_losses(self, pred: StageOutputs, hr: torch.Tensor | StageOutputs) -> dict[str, torch.Tensor]:
        """Unweighted per-stage losses ``{"sr_1", ..., "rec_1", ...}`` of :meth:`ICONet.forward_stages` outputs."""
        stages = len(pred["sr"])
        scale = 2**stages if self.scale is None else self.scale
        if len(pred["rec"]) != stages or scale != 2**stages:
            raise ValueError(
                f"MultiStageLoss(scale={scale}) expects {scale.bit_length() - 1} stages, got "
                f"{stages} SR and {len(pred['rec'])} reconstruction outputs."
            )
        targets = hr if isinstance(hr, Mapping) else ICONet.stage_targets(hr, scale)
        losses = {}
        for kind in ("sr", "rec"):
            for t, (out, target) in enumerate(zip(pred[kind], targets[kind], strict=True), start=1):
                if out.shape != target.shape:
                    raise ValueError(
                        f"MultiStageLoss: {kind}_{t} is {tuple(out.shape)}, its target {tuple(target.shape)}."
                    )
                losses[f"{kind}_{t}"] = self.criterion(out, target)
        return losses

    def forward(self, pred: StageOutputs | torch.Tensor, hr: torch.Tensor | StageOutputs) -> torch.Tensor:
        """The loss of ``pred`` (stage dict or final SR tensor) against the HR image or the stage targets."""
        if isinstance(pred, torch.Tensor):
            return self.criterion(pred, hr["sr"][-1] if isinstance(hr, Mapping) else hr)
        losses = self.stage_losses(pred, hr)
        return sum((self.rec_weight * v if k.startswith("rec") else v) for k, v in losses.items())
