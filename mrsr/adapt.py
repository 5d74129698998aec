"""Test-time adaptation: fine-tune an SR network on the scan it is about to super-resolve.

A trained network has never seen the user's scan: another contrast, anatomy, matrix or scanner
filter. The scan itself holds training pairs one scale down: each LR slice, k-space truncated
again by the SR factor (the same degradation, ``mrsr.transforms.KSpaceTruncate``), is an input
whose target is the LR slice itself. :func:`adapt` fine-tunes a copy of the network on such pairs
(whole slices flipped/transposed *before* they are truncated, so input and target stay aligned on
the ``m*s`` grid; then a random patch and the target patch under it), and scores it on pairs from
slices (or, for one or two slices, a strip of columns) that it never trained on.

The network actually used is chosen on that internal validation, so adaptation does no harm:

- ``adapted`` when the fine-tuned copy beats both the network as shipped and zero-filling;
- otherwise ``network`` (the network as shipped) when it beats zero-filling;
- otherwise ``zerofill``: on this scan, the network invents detail that zero-filling does not.

``steps=0`` skips the fine-tuning and keeps only this check (one inference at a quarter of the
output size). The check cannot see what lies beyond the LR band: on a scan whose HR k-space holds
only noise there (an interpolated reformat, say), the network may win one scale down and still
lose to zero-filling at the real scale.
"""

from __future__ import annotations

import copy
import itertools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from monai.utils import convert_to_tensor
from torch import nn

from mrsr.errors import MrsrError
from mrsr.inference import resolve_device, resolve_slice_axis
from mrsr.metrics import range_psnr
from mrsr.networks.baselines import ZeroFill
from mrsr.progress import progress_iter
from mrsr.transforms.consistency import kspace_consistency
from mrsr.transforms.kspace import KSpaceTruncate
from mrsr.transforms.slicestack import stack_neighbours

__all__ = [
    "AdaptResult",
    "TooSmallToAdapt",
    "adapt",
    "adaptable_slices",
    "fit_on_pairs",
    "FitResult",
    "CHOICES",
    "MIN_PAIR_SIZE",
]

CHOICES = ("adapted", "network", "zerofill")
# The smallest in-plane side of a pair's input (LR / scale). Below it the held-out check one scale down
# does not predict the real scale: on the validation section, adapting 29-pixel LR slices lost 0.07-0.28 dB
# to the network it started from while the check said it gained 0.45-0.75 dB; on 64-pixel slices it gained.
MIN_PAIR_SIZE = 32
DEFAULT_STEPS = 300
CACHE_VOXELS = 2**26  # truncated training images kept between steps (256 MiB of float32 at most)


class TooSmallToAdapt(MrsrError):
    """The slices are too small to make cross-scale pairs from."""


@dataclass
class AdaptResult:
    """What :func:`adapt` chose and why.

    Attributes:
        predictor: what to super-resolve the scan with: the adapted copy, the network as given, or a
            :class:`~mrsr.networks.baselines.ZeroFill`.
        choice: ``"adapted"``, ``"network"`` or ``"zerofill"``.
        scores: internal validation PSNR (dB) of each candidate on the held-out pairs.
        steps: optimiser steps taken.
        seconds: wall time of the adaptation.
        holdout: what was held out for the internal validation (slices or a strip of columns).
    """

    predictor: nn.Module
    choice: str
    scores: dict[str, float] = field(default_factory=dict)
    steps: int = 0
    seconds: float = 0.0
    holdout: str = ""

    @property
    def data_consistency_applies(self) -> bool:
        """Data consistency is applied to a network's output, not to the zerofill fallback."""
        return self.choice != "zerofill"

    def summary(self) -> str:
        """One line: the choice and the internal validation scores."""
        scores = ", ".join(f"{k} {v:.2f} dB" for k, v in self.scores.items())
        why = {
            "adapted": "the adapted network beat the network and zerofill",
            "network": "adaptation did not beat the network"
            if "adapted" in self.scores
            else "the network beat zerofill",
            "zerofill": "the network lost to zerofill on this scan's own pairs",
        }[self.choice]
        done = f"{self.steps} steps in {self.seconds:.0f} s; " if self.steps else ""
        return f"using {self.choice}: {why} ({done}internal validation on {self.holdout}: {scores})"


@dataclass
class _Pairs:
    train: list[torch.Tensor]  # HR-side images (C, h, w) to cut training pairs from, C = in_channels
    val_input: torch.Tensor  # (V, C, h/s, w/s) truncated held-out images
    val_target: torch.Tensor  # (V, 1, h, w) their centre slices
    val_columns: slice  # the scored columns of the targets
    holdout: str
    cache: dict = field(default_factory=dict)  # (image, dihedral op) -> (image, its truncation)


def _truncate(x: torch.Tensor, scale: int) -> torch.Tensor:
    """The degradation of mrsr on the last two axes: (C, h, w) or (V, C, h, w), sides multiples of ``scale``.

    The leading axis is the transform's channel axis, so a batch of images is degraded in one call.
    """
    return KSpaceTruncate(scale, axes=(x.ndim - 3, x.ndim - 2))(x)


def _make_pairs(vol: torch.Tensor, scale: int, in_channels: int, holdout: float) -> _Pairs:
    """Cross-scale pairs of a (D, h, w) volume whose in-plane sides are multiples of ``scale``."""
    depth, h, w = vol.shape
    k = in_channels // 2
    if depth >= 4:  # hold out every n-th slice, spread through the volume
        every = max(2, round(1 / holdout))
        val = list(range(every // 2, depth, every))
        train = [z for z in range(depth) if z not in val]
        stacks = stack_neighbours(vol, k, val)
        return _Pairs(
            list(stack_neighbours(vol, k, train)), _truncate(stacks, scale), stacks[:, k : k + 1], slice(None),
            f"{len(val)} of {depth} slices",
        )  # fmt: skip
    # one to three slices: hold out a strip of columns at the far edge
    cut = max(1, round((1 - holdout) * w / scale)) * scale
    stacks = stack_neighbours(vol, k)
    return _Pairs(
        [s[:, :, :cut] for s in stacks], _truncate(stacks, scale), stacks[:, k : k + 1], slice(cut, w),
        f"columns {cut}-{w} of {depth} slice{'s' if depth > 1 else ''}",
    )  # fmt: skip


def _psnr(sr: torch.Tensor, target: torch.Tensor, columns: slice, border: int) -> float:
    """PSNR over the scored columns, ``border`` pixels cropped at the slice edges, the target's range."""
    rows, cols = slice(border, -border or None), slice(columns.start or border, -border or None)
    return range_psnr(sr[..., rows, cols], target[..., rows, cols])


@torch.no_grad()
def _score(predictor: nn.Module, pairs: _Pairs, scale: int, device, data_consistency: bool, batch: int = 4) -> float:
    outs = []
    for start in range(0, len(pairs.val_input), batch):
        x = pairs.val_input[start : start + batch].to(device)
        y = predictor(x).float()
        if data_consistency:
            centre = x.shape[1] // 2
            y = kspace_consistency(y, x[:, centre : centre + 1].float(), (2, 3))
        outs.append(y.cpu())
    return _psnr(torch.cat(outs), pairs.val_target, pairs.val_columns, scale)


def _dihedral_pair(pairs: _Pairs, index: int, op: int, scale: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Training image ``index`` under dihedral op ``op`` (bit 0: transpose, bits 1-2: flips) and its truncation."""
    key = (index, op)
    if key not in pairs.cache:
        image = pairs.train[index]
        image = image.transpose(-2, -1) if op & 1 else image
        flips = [d for bit, d in ((2, -2), (4, -1)) if op & bit]
        image = image.flip(flips) if flips else image
        image = image[:, : image.shape[-2] // scale * scale, : image.shape[-1] // scale * scale].contiguous()
        pair = (image, _truncate(image, scale))
        if sum(p[0].numel() for p in pairs.cache.values()) + image.numel() > CACHE_VOXELS:
            return pair
        pairs.cache[key] = pair
    return pairs.cache[key]


def _batch(pairs: _Pairs, scale: int, size: int, patch: int, rng: np.random.Generator):
    """``size`` random (input, target) patch pairs: (B, C, p, p) and (B, 1, s*p, s*p)."""
    inputs, targets = [], []
    k = pairs.train[0].shape[0] // 2
    for _ in range(size):
        index = int(rng.integers(len(pairs.train)))
        image, small = _dihedral_pair(pairs, index, int(rng.integers(8)), scale)
        p = min(patch, small.shape[-2], small.shape[-1])
        y0, x0 = int(rng.integers(small.shape[-2] - p + 1)), int(rng.integers(small.shape[-1] - p + 1))
        inputs.append(small[:, y0 : y0 + p, x0 : x0 + p])
        targets.append(image[k : k + 1, scale * y0 : scale * (y0 + p), scale * x0 : scale * (x0 + p)])
    p = min(t.shape[-2] // scale for t in targets), min(t.shape[-1] // scale for t in targets)
    inputs = [i[:, : p[0], : p[1]] for i in inputs]  # transposed non-square strips: one common patch
    targets = [t[:, : scale * p[0], : scale * p[1]] for t in targets]
    return torch.stack(inputs).contiguous(), torch.stack(targets).contiguous()


def adaptable_slices(volume: torch.Tensor, scale: int, slice_axis: int | str = "auto") -> torch.Tensor:
    """The slices adaptation trains on: (D, h, w), in-plane cut to multiples of ``scale``.

    Raises:
        TooSmallToAdapt: slices smaller than ``MIN_PAIR_SIZE * scale`` a side.
        MrsrError: not a (1, X, Y, Z) volume, or a scale that is not an integer >= 2.
    """
    if volume.ndim != 4 or volume.shape[0] != 1:
        raise MrsrError(f"adapt needs a (1, X, Y, Z) volume, got shape {tuple(volume.shape)}.")
    if scale != int(scale) or scale < 2:
        raise MrsrError(f"Adaptation needs an integer scale >= 2, got {scale}.")
    axis = resolve_slice_axis(volume, slice_axis)
    # a plain tensor: slices of one scan carry no geometry of their own
    vol = convert_to_tensor(volume[0], dtype=torch.float32, track_meta=False).movedim(axis, 0)
    h, w = vol.shape[1] // scale * scale, vol.shape[2] // scale * scale
    if min(h, w) // scale < MIN_PAIR_SIZE:
        raise TooSmallToAdapt(
            f"The input is too small to adapt on: its slices are {vol.shape[1]}x{vol.shape[2]}, and x{scale} "
            f"adaptation needs at least {MIN_PAIR_SIZE * scale}x{MIN_PAIR_SIZE * scale} (smaller pairs do not "
            "predict the real scale); run without --adapt."
        )
    return vol[:, :h, :w].clone()  # a normal tensor even when the input was made in inference mode


@dataclass
class FitResult:
    """What :func:`fit_on_pairs` found: the best held-out score, the weights that scored it, the steps taken."""

    best_score: float = -math.inf
    best_state: dict | None = None
    steps: int = 0


def fit_on_pairs(
    model: nn.Module,
    next_batch: Callable[[], tuple[torch.Tensor, torch.Tensor]],
    score: Callable[[nn.Module], float] | None,
    steps: int | None,
    lr: float,
    validate_every: int,
    device: torch.device,
    time_budget: float | None = None,
    start: float | None = None,
    train_mode: bool = False,
    amp: bool = False,
    progress: bool = False,
    desc: str = "training",
) -> FitResult:
    """Train ``model`` in place with L1 and Adam on a volume's own pairs, keeping the best held-out state.

    The loop of test-time adaptation (:func:`adapt`) and self-supervised SR (:func:`mrsr.selfsr.selfsr`):
    ``next_batch()`` gives (LR, HR) patches; every ``validate_every`` steps, at the last step and when
    ``time_budget`` seconds (counted from ``start``) are spent, ``score(model)`` (higher is better) is
    taken in eval mode and the best state copied. ``score=None`` trains without validation.

    Args:
        model: the network, on ``device``.
        next_batch: the next (x, y) batch, anywhere (moved to ``device``).
        score: held-out score of the model, or None.
        steps: optimiser steps (at most); ``None``: until ``time_budget`` is spent.
        lr: Adam learning rate.
        validate_every: steps between scores.
        device: where to train.
        time_budget: stop after this many seconds since ``start`` (None: no limit).
        start: ``time.perf_counter()`` the budget counts from (default: now).
        train_mode: train in ``model.train()`` mode; False keeps eval mode throughout (batch-norm
            statistics and dropout as trained: a few patches of one scan are no population).
        amp: bfloat16 autocast for the forward pass.
        progress: show progress on stderr.
        desc: what the progress line calls the work.
    """
    start = time.perf_counter() if start is None else start
    if steps is None and time_budget is None:
        raise ValueError("fit_on_pairs needs a number of steps or a time budget.")
    result = FitResult()
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    if steps is None:  # as many as the budget allows: the progress line counts steps and seconds, no total
        bar = progress_iter(itertools.count(), f"{desc} ({time_budget:g} s)", "steps", enabled=progress)
    else:
        bar = progress_iter(range(steps), desc, "step", enabled=progress)
    for step in bar:
        x, y = next_batch()
        model.train(train_mode)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            loss = torch.nn.functional.l1_loss(model(x.to(device)).float(), y.to(device))
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        result.steps = step + 1
        out_of_time = time_budget is not None and time.perf_counter() - start >= time_budget
        if score is not None and (result.steps % validate_every == 0 or result.steps == steps or out_of_time):
            model.eval()
            value = score(model)
            if hasattr(bar, "set_postfix"):  # a tqdm bar on a terminal
                bar.set_postfix(psnr=f"{value:.2f}")
            if value > result.best_score:
                result.best_score, result.best_state = value, copy.deepcopy(model.state_dict())
        if out_of_time:
            break
    model.eval()
    return result


def adapt(
    network: nn.Module,
    volume: torch.Tensor,
    scale: int,
    steps: int = DEFAULT_STEPS,
    time_budget: float | None = None,
    slice_axis: int | str = "auto",
    in_channels: int = 1,
    batch_size: int = 16,
    patch_size: int = 24,
    lr: float = 1e-4,
    holdout: float = 0.2,
    validate_every: int = 50,
    data_consistency: bool = True,
    device: str | torch.device | None = "cpu",
    seed: int = 0,
    progress: bool = False,
) -> AdaptResult:
    """Fine-tune a copy of ``network`` on ``volume``'s own cross-scale pairs and choose what to run.

    Args:
        network: an SR network (B, in_channels, h, w) -> (B, 1, s*h, s*w); it is not modified.
        volume: the LR volume to super-resolve, (1, X, Y, Z), normalised as the network expects
            (:class:`~mrsr.transforms.RobustNormalize`).
        scale: the SR factor (an integer >= 2).
        steps: optimiser steps (0: only check the network against zerofill).
        time_budget: stop fine-tuning after this many seconds (``None``: no limit).
        slice_axis: the axis across slices, or ``"auto"`` (the default, as :func:`~mrsr.inference.super_resolve`).
        in_channels: the network's input channels (2k+1 for 2.5D).
        batch_size: patches per step.
        patch_size: input patch side (targets are ``scale`` times larger); smaller slices use their size.
        lr: Adam learning rate.
        holdout: fraction of slices (or, below four slices, of columns) held out for internal validation.
        validate_every: steps between internal validations; the best state is kept.
        data_consistency: score candidates with data consistency, as they will run.
        device: where to fine-tune.
        seed: seed of every random choice (the same seed gives the same result).
        progress: report progress on stderr (:func:`mrsr.progress.progress_iter`).

    Returns:
        An :class:`AdaptResult` (its ``predictor`` is in eval mode on ``device``).

    Raises:
        MrsrError: a scale that is not an integer >= 2, or slices too small to make pairs from.
    """
    # MONAI's evaluators run inferers without autograd (no_grad or inference mode): fine-tuning needs it back
    with torch.inference_mode(False), torch.enable_grad():
        return _adapt(network, volume, scale, steps, time_budget, slice_axis, in_channels, batch_size, patch_size,
                      lr, holdout, validate_every, data_consistency, device, seed, progress)  # fmt: skip


def _adapt(network, volume, scale, steps, time_budget, slice_axis, in_channels, batch_size, patch_size, lr,
           holdout, validate_every, data_consistency, device, seed, progress) -> AdaptResult:  # fmt: skip
    start = time.perf_counter()
    vol = adaptable_slices(volume, scale, slice_axis)
    dev = resolve_device(device)
    pairs = _make_pairs(vol, scale, in_channels, holdout)
    network = network.to(dev).eval()
    zerofill = ZeroFill(scale=scale, in_channels=in_channels)
    scores = {
        "network": _score(network, pairs, scale, dev, data_consistency),
        "zerofill": _score(zerofill, pairs, scale, dev, False),
    }
    fit, tuned = FitResult(), network
    if steps > 0:
        rng = np.random.default_rng(seed)
        tuned = copy.deepcopy(network).eval()  # the caller's network stays as it is
        fit = fit_on_pairs(
            tuned, lambda: _batch(pairs, scale, batch_size, patch_size, rng),
            lambda model: _score(model, pairs, scale, dev, data_consistency), steps, lr, validate_every, dev,
            time_budget, start, progress=progress, desc="adapting",
        )  # fmt: skip
        if fit.best_state is not None:
            scores["adapted"] = fit.best_score
    if fit.best_state is not None and scores["adapted"] > max(scores["network"], scores["zerofill"]):
        tuned.load_state_dict(fit.best_state)
        predictor, choice = tuned, "adapted"
    elif scores["network"] > scores["zerofill"]:
        predictor, choice = network, "network"
    else:
        predictor, choice = zerofill, "zerofill"
    return AdaptResult(predictor, choice, scores, fit.steps, time.perf_counter() - start, pairs.holdout)
