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
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from monai.utils import convert_to_tensor
from torch import nn

from mrsr.errors import MrsrError
from mrsr.fitting import FitResult, fit
from mrsr.metrics import range_psnr
from mrsr.networks.baselines import ZeroFill
from mrsr.runtime import resolve_device, resolve_slice_axis
from mrsr.settings import AdaptSettings
from mrsr.transforms.consistency import kspace_consistency
from mrsr.transforms.kspace import KSpaceTruncate
from mrsr.transforms.slicestack import stack_neighbours

__all__ = [
    "AdaptResult",
    "TooSmallToAdapt",
    "adapt",
    "adaptable_slices",
    "CrossScalePairs",
    "CHOICES",
    "MIN_PAIR_SIZE",
]

CHOICES = ("adapted", "network", "zerofill")
# The smallest in-plane side of a pair's input (LR / scale). Below it the held-out check one scale down
# does not predict the real scale: on the validation section, adapting 29-pixel LR slices lost 0.07-0.28 dB
# to the network it started from while the check said it gained 0.45-0.75 dB; on 64-pixel slices it gained.
MIN_PAIR_SIZE = 32
DEFAULT_STEPS = AdaptSettings().steps
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


class CrossScalePairs:
    """Cross-scale pairs of one LR volume (a :class:`~mrsr.fitting.PairSource`): each slice, truncated again by the
    SR factor, is an input whose target is the slice itself.

    Slices are flipped or transposed *before* they are truncated (input and target stay aligned on the
    ``m*s`` grid); a random patch and the target patch under it make a pair. Every n-th slice is held
    out (or, for one to three slices, a strip of columns at the far edge) and scored as it will run.

    Args:
        vol: (D, h, w) slices, sides multiples of ``scale`` (:func:`adaptable_slices`).
        scale: the SR factor.
        in_channels: network input channels (2k+1 for 2.5D: neighbours as channels).
        holdout: fraction of slices (or columns) held out.
        device: where candidates are scored.
        data_consistency: score candidates with data consistency, as they will run.
    """

    def __init__(
        self, vol: torch.Tensor, scale: int, in_channels: int = 1, holdout: float = 0.2,
        device: torch.device | None = None, data_consistency: bool = False,
    ) -> None:  # fmt: skip
        depth, h, w = vol.shape
        k = in_channels // 2
        self.scale, self.device, self.data_consistency = scale, device or torch.device("cpu"), data_consistency
        self.cache: dict = {}  # (image, dihedral op) -> (image, its truncation)
        if depth >= 4:  # hold out every n-th slice, spread through the volume
            every = max(2, round(1 / holdout))
            val = list(range(every // 2, depth, every))
            stacks = stack_neighbours(vol, k, val)
            self.train = list(stack_neighbours(vol, k, [z for z in range(depth) if z not in val]))
            self.columns, self.holdout = slice(None), f"{len(val)} of {depth} slices"
        else:  # one to three slices: hold out a strip of columns at the far edge
            cut = max(1, round((1 - holdout) * w / scale)) * scale
            stacks = stack_neighbours(vol, k)
            self.train = [s[:, :, :cut] for s in stacks]
            self.columns = slice(cut, w)
            self.holdout = f"columns {cut}-{w} of {depth} slice{'s' if depth > 1 else ''}"
        self.val_input = _truncate(stacks, scale)  # (V, C, h/s, w/s)
        self.val_target = stacks[:, k : k + 1]  # (V, 1, h, w): their centre slices

    @torch.no_grad()
    def score(self, model: nn.Module, data_consistency: bool | None = None, batch: int = 4) -> float:
        """PSNR of ``model`` on the held-out pairs (``data_consistency``: ``None`` as the source was built)."""
        consistent = self.data_consistency if data_consistency is None else data_consistency
        outs = []
        for start in range(0, len(self.val_input), batch):
            x = self.val_input[start : start + batch].to(self.device)
            y = model(x).float()
            if consistent:
                centre = x.shape[1] // 2
                y = kspace_consistency(y, x[:, centre : centre + 1].float(), (2, 3))
            outs.append(y.cpu())
        return _psnr(torch.cat(outs), self.val_target, self.columns, self.scale)

    def batch(self, size: int, patch: int, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """``size`` random (input, target) patch pairs: (B, C, p, p) and (B, 1, s*p, s*p)."""
        s = self.scale
        inputs, targets = [], []
        k = self.train[0].shape[0] // 2
        for _ in range(size):
            index = int(rng.integers(len(self.train)))
            image, small = self._dihedral_pair(index, int(rng.integers(8)))
            p = min(patch, small.shape[-2], small.shape[-1])
            y0, x0 = int(rng.integers(small.shape[-2] - p + 1)), int(rng.integers(small.shape[-1] - p + 1))
            inputs.append(small[:, y0 : y0 + p, x0 : x0 + p])
            targets.append(image[k : k + 1, s * y0 : s * (y0 + p), s * x0 : s * (x0 + p)])
        p = min(t.shape[-2] // s for t in targets), min(t.shape[-1] // s for t in targets)
        inputs = [i[:, : p[0], : p[1]] for i in inputs]  # transposed non-square strips: one common patch
        targets = [t[:, : s * p[0], : s * p[1]] for t in targets]
        return torch.stack(inputs).contiguous(), torch.stack(targets).contiguous()

    def _dihedral_pair(self, index: int, op: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Training image ``index`` under dihedral op ``op`` (bit 0: transpose, bits 1-2: flips) and its truncation."""
        key, s = (index, op), self.scale
        if key not in self.cache:
            image = self.train[index]
            image = image.transpose(-2, -1) if op & 1 else image
            flips = [d for bit, d in ((2, -2), (4, -1)) if op & bit]
            image = image.flip(flips) if flips else image
            image = image[:, : image.shape[-2] // s * s, : image.shape[-1] // s * s].contiguous()
            pair = (image, _truncate(image, s))
            if sum(p[0].numel() for p in self.cache.values()) + image.numel() > CACHE_VOXELS:
                return pair
            self.cache[key] = pair
        return self.cache[key]


def _truncate(x: torch.Tensor, scale: int) -> torch.Tensor:
    """The degradation of mrsr on the last two axes: (C, h, w) or (V, C, h, w), sides multiples of ``scale``.

    The leading axis is the transform's channel axis, so a batch of images is degraded in one call.
    """
    return KSpaceTruncate(scale, axes=(x.ndim - 3, x.ndim - 2))(x)


def _psnr(sr: torch.Tensor, target: torch.Tensor, columns: slice, border: int) -> float:
    """PSNR over the scored columns, ``border`` pixels cropped at the slice edges, the target's range."""
    rows, cols = slice(border, -border or None), slice(columns.start or border, -border or None)
    return range_psnr(sr[..., rows, cols], target[..., rows, cols])


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


def adapt(
    network: nn.Module,
    volume: torch.Tensor,
    scale: int,
    settings: AdaptSettings | None = None,
    slice_axis: int | str = "auto",
    in_channels: int = 1,
    data_consistency: bool = True,
    device: str | torch.device | None = "cpu",
    progress: bool = False,
) -> AdaptResult:
    """Fine-tune a copy of ``network`` on ``volume``'s own cross-scale pairs and choose what to run.

    Args:
        network: an SR network (B, in_channels, h, w) -> (B, 1, s*h, s*w); it is not modified.
        volume: the LR volume to super-resolve, (1, X, Y, Z), normalised as the network expects
            (:class:`~mrsr.transforms.RobustNormalize`).
        scale: the SR factor (an integer >= 2).
        settings: steps (0: only check the network against zerofill), time budget, batch and patch
            size, learning rate, held-out fraction, steps between scores and seed
            (:class:`~mrsr.settings.AdaptSettings`; ``None``: its defaults).
        slice_axis: the axis across slices, or ``"auto"`` (the default, as :func:`~mrsr.inference.super_resolve`).
        in_channels: the network's input channels (2k+1 for 2.5D).
        data_consistency: score candidates with data consistency, as they will run.
        device: where to fine-tune.
        progress: report progress on stderr (:func:`mrsr.progress.progress_iter`).

    Returns:
        An :class:`AdaptResult` (its ``predictor`` is in eval mode on ``device``).

    Raises:
        MrsrError: a scale that is not an integer >= 2, or slices too small to make pairs from.
    """
    settings = settings or AdaptSettings()
    start = time.perf_counter()
    dev = resolve_device(device)
    # MONAI's evaluators run inferers without autograd (no_grad or inference mode): fine-tuning needs it back,
    # and pairs made in inference mode could not be trained on
    with torch.inference_mode(False), torch.enable_grad():
        slices = adaptable_slices(volume, scale, slice_axis)
        pairs = CrossScalePairs(slices, scale, in_channels, settings.holdout, dev, data_consistency)
        return _choose(network.to(dev).eval(), pairs, settings, progress, start)


def _choose(network: nn.Module, pairs: CrossScalePairs, settings: AdaptSettings, progress: bool, start: float):
    """Score the network and zerofill, fine-tune a copy, and keep the best of the three."""
    zerofill = ZeroFill(scale=pairs.scale, in_channels=pairs.train[0].shape[0])
    scores = {"network": pairs.score(network), "zerofill": pairs.score(zerofill, data_consistency=False)}
    result, tuned = FitResult(), network
    if settings.steps > 0:
        tuned = copy.deepcopy(network).eval()  # the caller's network stays as it is
        result = fit(tuned, pairs, settings, pairs.device, start, progress=progress, desc="adapting")
        if result.best_state is not None:
            scores["adapted"] = result.best_score
    if result.best_state is not None and scores["adapted"] > max(scores["network"], scores["zerofill"]):
        tuned.load_state_dict(result.best_state)
        predictor, choice = tuned, "adapted"
    elif scores["network"] > scores["zerofill"]:
        predictor, choice = network, "network"
    else:
        predictor, choice = zerofill, "zerofill"
    return AdaptResult(predictor, choice, scores, result.steps, time.perf_counter() - start, pairs.holdout)
