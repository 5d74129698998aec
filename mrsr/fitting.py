"""The one loop that fits a network to a scan's own pairs: test-time adaptation and self-supervised SR.

Both train on pairs cut from the very volume they will super-resolve, and keep the state that scores
best on pairs held out from it. What differs is where the pairs come from, which a
:class:`PairSource` hides:

- :class:`mrsr.adapt.CrossScalePairs`: LR slices truncated again by the SR factor (one scale down);
- :class:`mrsr.selfsr.ThickSlicePairs`: sharp in-plane slices degraded by the slice profile.

:func:`fit` is the loop: L1 and Adam, a score every ``validate_every`` steps, at the last step and
when the time budget is spent, the best state kept.
"""

from __future__ import annotations

import copy
import itertools
import math
import time
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
from torch import nn

from mrsr.progress import progress_iter

__all__ = ["FitResult", "FitSettings", "PairSource", "fit"]


class PairSource(Protocol):
    """Training pairs and a held-out score from one scan.

    Attributes:
        holdout: what was held out for the score, in words (for the summary line).
    """

    holdout: str

    def batch(self, size: int, patch: int, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """``size`` random (input, target) patch pairs of input side about ``patch``, anywhere."""
        ...

    def score(self, model: nn.Module) -> float | None:
        """The held-out score of ``model`` in eval mode (higher is better); ``None``: nothing held out."""
        ...


class FitSettings(Protocol):
    """The fields :func:`fit` reads: :class:`~mrsr.settings.AdaptSettings` and
    :class:`~mrsr.settings.SelfSRSettings` both have them."""

    steps: int | None
    time_budget: float | None
    batch_size: int
    patch_size: int
    lr: float
    validate_every: int
    seed: int


@dataclass
class FitResult:
    """What :func:`fit` found: the best held-out score, the weights that scored it, the steps taken."""

    best_score: float = -math.inf
    best_state: dict | None = None
    steps: int = 0


def fit(
    model: nn.Module,
    pairs: PairSource,
    settings: FitSettings,
    device: torch.device,
    start: float | None = None,
    train_mode: bool = False,
    amp: bool = False,
    progress: bool = False,
    desc: str = "training",
) -> FitResult:
    """Train ``model`` in place with L1 and Adam on ``pairs``, keeping the best held-out state.

    Every ``settings.validate_every`` steps, at the last step and when ``settings.time_budget``
    seconds (counted from ``start``) are spent, ``pairs.score(model)`` is taken in eval mode and the
    best state copied. A source with nothing held out trains without scores.

    Args:
        model: the network, on ``device``.
        pairs: where the batches and the score come from.
        settings: steps (at most; ``None``: until the time budget is spent), time budget, batch and
            patch size, learning rate, steps between scores, and the seed of the batches.
        device: where to train.
        start: ``time.perf_counter()`` the budget counts from (default: now).
        train_mode: train in ``model.train()`` mode; False keeps eval mode throughout (batch-norm
            statistics and dropout as trained: a few patches of one scan are no population).
        amp: bfloat16 autocast for the forward pass.
        progress: show progress on stderr.
        desc: what the progress line calls the work.

    Returns:
        A :class:`FitResult`; ``model`` is left in eval mode with its last (not best) state.
    """
    start = time.perf_counter() if start is None else start
    steps, budget = settings.steps, settings.time_budget
    if steps is None and budget is None:
        raise ValueError("fit needs a number of steps or a time budget.")
    rng = np.random.default_rng(settings.seed)
    result = FitResult()
    optimiser = torch.optim.Adam(model.parameters(), lr=settings.lr)
    if steps is None:  # as many as the budget allows: the progress line counts steps and seconds, no total
        bar = progress_iter(itertools.count(), f"{desc} ({budget:g} s)", "steps", enabled=progress)
    else:
        bar = progress_iter(range(steps), desc, "step", enabled=progress)
    for step in bar:
        x, y = pairs.batch(settings.batch_size, settings.patch_size, rng)
        model.train(train_mode)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            loss = torch.nn.functional.l1_loss(model(x.to(device)).float(), y.to(device))
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        result.steps = step + 1
        out_of_time = budget is not None and time.perf_counter() - start >= budget
        if result.steps % settings.validate_every == 0 or result.steps == steps or out_of_time:
            _keep_best(model, pairs, result, bar)
        if out_of_time:
            break
    model.eval()
    return result


def _keep_best(model: nn.Module, pairs: PairSource, result: FitResult, bar: object) -> None:
    """Score ``model`` on the held-out pairs and copy its state into ``result`` when it is the best yet."""
    model.eval()
    value = pairs.score(model)
    if value is None:
        return
    if hasattr(bar, "set_postfix"):  # a tqdm bar on a terminal
        bar.set_postfix(psnr=f"{value:.2f}")
    if value > result.best_score:
        result.best_score, result.best_state = value, copy.deepcopy(model.state_dict())
