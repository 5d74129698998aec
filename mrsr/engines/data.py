"""Training and validation data: cached HR volumes, random LR/HR patch pairs, whole-volume pairs.

The HR volumes of a manifest are loaded and normalised once (MONAI ``CacheDataset``). Training
samples are drawn from them on the fly: a slice (background slices down-weighted) with its 2k+1
neighbours (:func:`~mrsr.transforms.slicestack.stack_neighbours`, as everywhere else), a random
flip/transpose of the whole slice, the k-space degradation of the whole slice
(:class:`~mrsr.transforms.KSpaceTruncate`; never of a crop: a crop's FFT would add edge ringing the
scanner never makes), then an LR patch and the HR patch that lies exactly under it (LR sample m at
HR sample m*s, docs/CONVENTIONS.md). Samples are plain tensors: a patch has no affine of its own.
With a synthetic fraction, that share of the samples starts instead from a synthetic-MR slab
(:class:`SyntheticSlabs`), degraded the same way.

Every random choice of sample ``g`` comes from ``numpy.random.default_rng([seed, g])``, and the
sampler numbers samples ``epoch * samples_per_epoch + i``. A sample is therefore the same whatever
the worker, the process or the number of ranks that draws it, which is what makes ``--resume``
exact and a 2-rank run equal to a 1-rank run with twice the batch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from monai.data import CacheDataset, MetaTensor
from monai.transforms import Compose
from monai.utils import convert_to_tensor
from torch.utils.data import Dataset, DistributedSampler

from mrsr.data.io import LoadVolumed
from mrsr.errors import MrsrError
from mrsr.metrics import foreground_mask
from mrsr.transforms import KSpaceTruncate, RobustNormalized
from mrsr.transforms.kspace import WINDOWS
from mrsr.transforms.slicestack import stack_neighbours

__all__ = [
    "Degradation",
    "load_hr_volumes",
    "slice_weights",
    "PairedPatchDataset",
    "SyntheticSlabs",
    "VolumePairDataset",
    "SampleSampler",
]


@dataclass
class Degradation:
    """How training LR patches are made from HR slices (k-space truncation, docs/CONVENTIONS.md).

    Args:
        windows: k-space windows drawn uniformly per sample (``"none"``, ``"hamming"``, ``"tukey"``).
        snr_range: (low, high) Rician SNR drawn per sample, or ``None`` for no noise.
        factor_jitter: the kept k-space band is ``N / f`` with ``f`` uniform in ``[s, s * factor_jitter]``
            while the LR matrix stays ``N / s``: scans a little blurrier than nominal. 1: no jitter.
        augment: random transpose and flips of the whole HR slice before degradation, so LR and HR
            get the same geometric transform and the sample alignment is kept.
    """

    windows: tuple[str, ...] = ("none",)
    snr_range: tuple[float, float] | None = None
    factor_jitter: float = 1.0
    augment: bool = True

    def __post_init__(self) -> None:
        self.windows = tuple(self.windows)
        bad = [w for w in self.windows if w not in WINDOWS]
        if bad or not self.windows:
            raise MrsrError(f"Unknown k-space window(s) {bad or '(none given)'}; choose from {', '.join(WINDOWS)}.")
        if self.snr_range is not None:
            self.snr_range = (float(self.snr_range[0]), float(self.snr_range[1]))
            if not 0 < self.snr_range[0] <= self.snr_range[1]:
                raise MrsrError(f"The SNR range must be (low, high) with 0 < low <= high, got {self.snr_range}.")
        if not self.factor_jitter >= 1.0:
            raise MrsrError(f"factor_jitter must be >= 1 (1: none), got {self.factor_jitter}.")


def load_hr_volumes(
    datalist: Sequence[dict], orientation: str | None = None, num_workers: int = 0, progress: bool = True
) -> CacheDataset:
    """Load and normalise the HR volumes of a datalist once, in memory.

    Args:
        datalist: entries ``{"image": path, ...}`` with resolved paths (:func:`mrsr.data.manifest.load_manifest`).
        orientation: optional axis codes to reorient every volume to.
        num_workers: loader threads of the cache.
        progress: show the caching progress bar.

    Returns:
        A MONAI ``CacheDataset`` whose items are ``{"image": (1, X, Y, Z) MetaTensor in about [0, 1], ...}``.
    """
    transform = Compose([LoadVolumed("image", orientation), RobustNormalized("image")])
    return CacheDataset(list(datalist), transform, cache_rate=1.0, num_workers=num_workers or 1, progress=progress)


def slice_weights(volume: torch.Tensor, slice_axis: int = 2, background_weight: float = 0.1) -> np.ndarray:
    """Sampling weight of each slice: ``background_weight + (1 - background_weight) * f / max(f)``.

    ``f`` is the slice's foreground fraction: the fullest slice weighs 1, an empty background slice
    (the ends of a head scan) ``background_weight``, not 0, so the network still sees some air.

    Args:
        volume: (1, X, Y, Z) HR volume.
        slice_axis: the axis across which slices are taken.
        background_weight: weight of a slice with no foreground.

    Returns:
        (Z,) float64 weights.
    """
    fg = foreground_mask(volume[0]).movedim(slice_axis, 0).flatten(1).double().mean(1).numpy()
    return background_weight + (1.0 - background_weight) * fg / max(float(fg.max()), 1e-12)


def _in_plane(slice_axis: int) -> tuple[int, int]:
    a, b = (ax for ax in range(3) if ax != slice_axis)
    return a, b


class SyntheticSlabs:
    """HR training slabs from the synthetic-MR generator (:class:`mrsr.data.synth.RandSynthMR`), for
    :class:`PairedPatchDataset` to mix with real slices.

    A slab is ``margin`` LR pixels wider than the patch on every side: it is degraded whole and the patch
    is its centre, so the wrap-around of the slab's own k-space (whose edges hold tissue, unlike a real
    slice's background) stays out of the patch.

    Args:
        maps: label sources, each (C, X, Y, Z) tissue probabilities (:func:`mrsr.data.synth.mni152_tissue_maps`,
            :func:`mrsr.data.synth.kmeans_tissue_maps`).
        scale: SR factor s.
        patch_size: LR patch side P.
        neighbours: k: the slab has 2k+1 slices.
        margin: LR pixels around the patch (default: P/4, at least 4).
        generator_options: other :class:`~mrsr.data.synth.RandSynthMR` arguments.

    Shapes:
        ``slabs(rng)``: (2k+1, s*(P+2m), s*(P+2m)) float32 in [0, 1].
    """

    def __init__(
        self,
        maps: Sequence[torch.Tensor],
        scale: int,
        patch_size: int,
        neighbours: int = 0,
        margin: int | None = None,
        **generator_options,
    ) -> None:
        from mrsr.data.synth import RandSynthMR

        if not len(maps):
            raise MrsrError("Synthetic training needs at least one tissue-map volume.")
        self.maps = [m.float().contiguous() for m in maps]
        self.margin = max(4, patch_size // 4) if margin is None else int(margin)
        side = int(scale) * (int(patch_size) + 2 * self.margin)
        self.generator = RandSynthMR(spatial_size=(side, side, 2 * neighbours + 1), **generator_options)

    def __call__(self, rng: np.random.Generator) -> torch.Tensor:
        maps = self.maps[int(rng.integers(len(self.maps)))]
        return self.generator.generate(maps, rng).as_tensor()[0].permute(2, 0, 1).contiguous()


class PairedPatchDataset(Dataset):
    """Random aligned (LR, HR) patch pairs from HR volumes, degraded by k-space truncation.

    Slices are cropped at their far in-plane edges to multiples of s, so that LR sample m lies on
    HR sample m*s exactly. Item ``g`` (any non-negative integer; :class:`SampleSampler` makes them) is
    ``{"image": LR (2k+1, P, P), "label": HR (1, s*P, s*P)}``, float32 tensors: the LR patch holds the
    degraded slice and its k neighbours each side (edges replicated, as at inference), the HR patch
    the centre slice exactly under it.

    ``target_grids`` adds, for each factor f (a divisor of s, 1 < f <= s), ``"label_<f>"``: the
    centre HR slice as a clean acquisition on the grid 1/f measures it (its whole-slice k-space
    truncation by f, magnitude, no window or noise), cropped under the patch: (1, s/f*P, s/f*P).
    These are the intermediate targets of multi-stage networks (ICONet); truncating the HR *patch*
    instead would treat the patch as periodic and put wrap-around ringing into the target.

    Args:
        volumes: (1, X, Y, Z) HR volumes, normalised.
        scale: SR factor s (integer).
        patch_size: LR patch side P.
        neighbours: k (0: 2D).
        samples_per_epoch: the dataset's length (samples per epoch over all ranks).
        degradation: see :class:`Degradation`.
        slice_axis: the axis across which slices are taken.
        background_weight: see :func:`slice_weights`.
        seed: the seed every sample's randomness derives from.
        target_grids: factors f of the extra ``"label_<f>"`` targets (see above).
        balance_volumes: every volume is drawn equally often (its slice weights scaled to sum to 1);
            by default the slice weights of all volumes are pooled, so larger volumes are drawn more.
        patch_degradation: degrade the HR patch itself instead of the whole slice, so the LR patch is
            exactly the patch's own k-space band (with wrap-around at its edges): what training with
            data consistency needs to be exact on patches.
        synthetic: a :class:`SyntheticSlabs` to draw a fraction of the samples from, or ``None``.
        synthetic_fraction: that fraction, in [0, 1] (1: synthetic only, ``volumes`` may be empty). The
            synthetic slab goes through the same degradation; its patch is the slab's centre.

    Raises:
        MrsrError: no volume is large enough for an LR patch of ``patch_size`` (and not synthetic only).
        ValueError: a target grid factor does not divide ``scale``.
    """

    def __init__(
        self,
        volumes: Sequence[torch.Tensor],
        scale: int,
        patch_size: int,
        neighbours: int = 0,
        samples_per_epoch: int = 1000,
        degradation: Degradation | None = None,
        slice_axis: int = 2,
        background_weight: float = 0.1,
        seed: int = 0,
        target_grids: Sequence[int] = (),
        balance_volumes: bool = False,
        patch_degradation: bool = False,
        synthetic: SyntheticSlabs | None = None,
        synthetic_fraction: float = 0.0,
    ) -> None:
        self.scale, self.patch_size, self.k = int(scale), int(patch_size), int(neighbours)
        if not 0.0 <= synthetic_fraction <= 1.0 or (synthetic_fraction > 0 and synthetic is None):
            raise MrsrError(f"The synthetic fraction must be in [0, 1] with a generator, got {synthetic_fraction}.")
        self.synthetic, self.synthetic_fraction = synthetic, float(synthetic_fraction)
        self.patch_degradation = bool(patch_degradation)
        if self.patch_degradation and target_grids:
            raise ValueError("patch_degradation makes single-scale pairs; it cannot give stage targets.")
        self.target_grids = tuple(int(f) for f in target_grids)
        bad = [f for f in self.target_grids if f <= 1 or self.scale % f]
        if bad:
            raise ValueError(f"target_grids {bad}: each must be a divisor of the scale {self.scale} above 1.")
        self.samples_per_epoch, self.seed = int(samples_per_epoch), int(seed)
        self.degradation = degradation or Degradation()
        self.slice_axis = slice_axis
        a, b = _in_plane(slice_axis)
        need = self.scale * self.patch_size
        # slices as (Z, X, Y) stacks, cropped in-plane to multiples of s: only then does LR sample m
        # lie exactly on HR sample m*s (on an odd axis the truncated grid's spacing is N/n, not s)
        self.stacks = [
            convert_to_tensor(v[0], track_meta=False)
            .movedim(slice_axis, 0)[:, : v.shape[a + 1] // scale * scale, : v.shape[b + 1] // scale * scale]
            .contiguous()
            for v in volumes
            if min(v.shape[a + 1], v.shape[b + 1]) >= need
        ]
        if not self.stacks and self.synthetic_fraction == 1.0:
            self.slice_index, self.cumulative = [], np.ones(0)
            return
        if not self.stacks:
            sizes = ", ".join(f"{v.shape[a + 1]}x{v.shape[b + 1]}" for v in volumes)
            raise MrsrError(
                f"No training volume is large enough for an LR patch of {self.patch_size} at x{self.scale} "
                f"(HR {need}x{need}); in-plane sizes: {sizes}. Use a smaller --patch-size."
            )
        weights = [slice_weights(s.movedim(0, slice_axis)[None], slice_axis, background_weight) for s in self.stacks]
        if balance_volumes:
            weights = [w / w.sum() for w in weights]
        self.slice_index = [(v, z) for v, w in enumerate(weights) for z in range(len(w))]
        cum = np.cumsum(np.concatenate(weights))
        self.cumulative = cum / cum[-1]

    def __len__(self) -> int:
        return self.samples_per_epoch

    def _hr_stack(self, rng: np.random.Generator) -> torch.Tensor:
        v, z = self.slice_index[int(np.searchsorted(self.cumulative, rng.random(), side="right"))]
        hr = stack_neighbours(self.stacks[v], self.k, [z])[0]  # (2k+1, X, Y)
        if self.degradation.augment:
            if rng.random() < 0.5:
                hr = hr.transpose(1, 2)
            flips = [d for d in (1, 2) if rng.random() < 0.5]
            if flips:
                hr = hr.flip(flips)
        return hr

    def _degrade(self, hr: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        """The LR (C, X/s, Y/s) of ``hr`` (C, X, Y); factor, window, SNR, then noise drawn from ``rng``.

        The draw order is part of the reproducibility promise: changing it changes every sample.
        """
        deg = self.degradation
        factor = self.scale * rng.uniform(1.0, deg.factor_jitter)
        window = deg.windows[int(rng.integers(len(deg.windows)))]
        snr = None if deg.snr_range is None else rng.uniform(*deg.snr_range)
        # grid=s: a jittered band still lands on the nominal LR matrix, so every sample has one shape
        return KSpaceTruncate(factor, axes=(0, 1), grid=self.scale, window=window, snr=snr, rng=rng)(hr)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng([self.seed, int(index)])
        s, p = self.scale, self.patch_size
        # drawn only when mixing, so that real-only runs keep every sample they had
        if self.synthetic_fraction and (self.synthetic_fraction == 1.0 or rng.random() < self.synthetic_fraction):
            hr = self.synthetic(rng)
            y0 = x0 = self.synthetic.margin
        else:
            hr = self._hr_stack(rng)
            # the HR patch [s*y0, s*(y0+p)) must fit: y0 <= floor(N / s) - p
            y0 = int(rng.integers(hr.shape[1] // s - p + 1))
            x0 = int(rng.integers(hr.shape[2] // s - p + 1))
        centre = hr[self.k : self.k + 1]
        if self.patch_degradation:
            lr_patch = self._degrade(_crop_under(hr, s, y0, x0, p), rng)
        else:
            lr = self._degrade(hr, rng)  # drawn last: the degradation options don't move the patch
            lr_patch = lr[:, y0 : y0 + p, x0 : x0 + p]
        item = {"image": lr_patch.float().contiguous(), "label": _crop_under(centre, s, y0, x0, p)}
        for f in self.target_grids:
            acquired = KSpaceTruncate(f, axes=(0, 1))(centre)  # f divides the slice sides: exactly 1/f of them
            item[f"label_{f}"] = _crop_under(acquired, s // f, y0, x0, p)
        return item


def _crop_under(image: torch.Tensor, step: int, y0: int, x0: int, p: int) -> torch.Tensor:
    """The (C, step*p, step*p) crop of ``image`` that lies under the LR patch at (y0, x0) of side p."""
    return image[:, step * y0 : step * (y0 + p), step * x0 : step * (x0 + p)].float().contiguous()


class VolumePairDataset(Dataset):
    """Whole-volume (LR, HR) pairs for validation, degraded deterministically.

    The HR volume is cropped at its far in-plane edges to a multiple of the scale, so the SR output
    (s times the LR matrix) lands exactly on it; the LR is its in-plane k-space truncation by s
    (no window, no noise unless given), a MetaTensor with the LR affine.

    Args:
        volumes: (1, X, Y, Z) HR volumes, normalised.
        scale: SR factor s (integer).
        slice_axis: the axis across which slices are taken.
        window: k-space window of the degradation.
        snr: Rician noise level, or ``None``.
        seed: noise seed (item i uses ``seed + i``).

    Item i: ``{"image": LR (1, x, y, Z), "label": HR (1, s*x, s*y, Z)}``.
    """

    def __init__(
        self,
        volumes: Sequence[torch.Tensor],
        scale: int,
        slice_axis: int = 2,
        window: str = "none",
        snr: float | None = None,
        seed: int = 0,
    ) -> None:
        self.scale, self.slice_axis, self.window, self.snr, self.seed = int(scale), slice_axis, window, snr, seed
        self.volumes = [self._crop(v) for v in volumes]

    def _crop(self, volume: torch.Tensor) -> torch.Tensor:
        index = [slice(None)] * 4
        for ax in _in_plane(self.slice_axis):
            size = volume.shape[ax + 1] // self.scale * self.scale
            if size // self.scale < 2:
                raise MrsrError(
                    f"A validation volume of shape {tuple(volume.shape[1:])} is too small for x{self.scale}."
                )
            index[ax + 1] = slice(0, size)
        return volume[tuple(index)]

    def __len__(self) -> int:
        return len(self.volumes)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        hr = self.volumes[i]
        t = KSpaceTruncate(
            self.scale, axes=_in_plane(self.slice_axis), window=self.window, snr=self.snr, seed=self.seed + i
        )
        lr = t(hr)
        return {"image": lr if isinstance(lr, MetaTensor) else MetaTensor(lr), "label": hr}


class SampleSampler(DistributedSampler):
    """Numbers the samples of each epoch ``epoch * len(dataset) + i``, shuffled and split over ranks.

    A ``DistributedSampler`` (MONAI's engines call ``set_epoch`` on it at every epoch start), with
    rank r drawing positions ``r, r + R, r + 2R, ...`` of the epoch's permutation: with R ranks and
    batch B per rank, step t sees the same R*B samples as one rank with batch R*B.

    Args:
        dataset: a :class:`PairedPatchDataset` (its length is the samples per epoch).
        num_replicas: number of ranks (1 without DDP).
        rank: this rank.
        seed: shuffling seed.
    """

    def __init__(self, dataset: Dataset, num_replicas: int = 1, rank: int = 0, seed: int = 0) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed, drop_last=True)

    def __iter__(self):
        offset = self.epoch * len(self.dataset)  # type: ignore[arg-type]
        return (offset + i for i in super().__iter__())


def steps_per_epoch(samples_per_epoch: int, batch_size: int, world_size: int = 1) -> int:
    """Optimiser steps per epoch (incomplete batches are dropped)."""
    return max(1, math.floor(samples_per_epoch / world_size) // batch_size)
