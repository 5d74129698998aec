"""Synthetic MR training images by domain randomisation, in the style of SynthSR (Iglesias et al., 2021).

An SR network trained on one contrast learns that contrast. Trained instead on images synthesised
from tissue maps with a new random contrast, texture, deformation, bias field and noise every
time, it has to learn the anatomy and its edges, whatever the contrast (Iglesias et al., "Joint
super-resolution and synthesis of 1 mm isotropic MP-RAGE volumes from clinical MRI exams with
scans of different orientation, resolution and contrast", NeuroImage 2021).

Label sources are soft tissue maps, (C, X, Y, Z) probabilities summing to at most 1 per voxel (the
rest is background):

- :func:`mni152_tissue_maps`: CSF, GM and WM of the MNI152 2009 template (nilearn, optional);
- :func:`kmeans_tissue_maps`: soft k-means classes of the intensities of any real volume.

:class:`RandSynthMR` turns maps into one sharp HR slab (1, H, W, S) in [0, 1]; :class:`SynthMRDataset`
is an endless, reproducible training set of them (item ``i`` depends on ``(seed, i)`` only);
:func:`write_examples` writes a few as NIfTI with a PNG panel to look at; :func:`high_band_energy`
measures how much content a slab has near the Nyquist frequency, which the SR pairs made from it
need (a blurred HR teaches a network nothing beyond blurring).
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import MapTransform, Randomizable, Transform
from monai.utils import TransformBackends, convert_to_tensor
from torch.utils.data import Dataset

from mrsr.errors import MrsrError
from mrsr.paths import atomic_path
from mrsr.progress import progress_iter

__all__ = [
    "mni152_t1",
    "mni152_tissue_maps",
    "kmeans_tissue_maps",
    "default_maps",
    "high_band_energy",
    "RandSynthMR",
    "RandSynthMRd",
    "RandSynthMRD",
    "RandSynthMRDict",
    "SynthMRDataset",
    "write_examples",
    "ORIENTATIONS",
    "SHAPES",
]

ORIENTATIONS = ("axial", "coronal", "sagittal")
# output axes (row, column, slice) -> map voxel axes, for maps stored (X: left-right, Y: back-front, Z: foot-head)
_ORIENTATION_AXES = {"axial": (0, 1, 2), "coronal": (0, 2, 1), "sagittal": (1, 2, 0)}
SHAPES = ("ellipse", "rectangle", "polygon", "blob", "patch")
_NILEARN_HINT = "The MNI152 tissue maps need nilearn, an optional extra: pip install nilearn"
_PROGRESS_FROM = 50  # write_examples reports progress from this many examples on


# ---------------------------------------------------------------------------------------------------------------
# label sources


def _nilearn_datasets():
    """``nilearn.datasets``, imported on first use (nilearn is an optional extra and slow to import)."""
    try:
        from nilearn import datasets
    except ImportError:
        raise MrsrError(_NILEARN_HINT) from None
    return datasets


def _image_data(image) -> np.ndarray:
    """A nibabel image's voxels as a float32 array."""
    return np.asarray(image.dataobj, dtype=np.float32)


@functools.lru_cache(maxsize=1)
def _mni152_arrays() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The MNI152 2009 T1 (X, Y, Z), its GM, WM and brain mask stacked (3, X, Y, Z), and its affine; read once.

    nilearn's loaders read the files shipped inside the package (nothing downloads); they take about 2 s.
    """
    datasets = _nilearn_datasets()
    t1 = datasets.load_mni152_template(resolution=1)
    gm = _image_data(datasets.load_mni152_gm_template(resolution=1))
    wm = _image_data(datasets.load_mni152_wm_template(resolution=1))
    mask = _image_data(datasets.load_mni152_brain_mask(resolution=1))
    arrays = (_image_data(t1), np.stack([gm, wm, mask]), np.asarray(t1.affine, dtype=np.float64))
    for a in arrays:
        a.setflags(write=False)  # cached and shared by every caller: hand out copies only
    return arrays


def mni152_t1() -> MetaTensor:
    """The MNI152 2009 T1 template of nilearn (skull-stripped, 1 mm), read offline from the installed package.

    Returns:
        (1, 197, 233, 189) float32 MetaTensor in [0, 1] with the template's affine.

    Raises:
        MrsrError: nilearn is not installed.
    """
    t1, _, affine = _mni152_arrays()
    return MetaTensor(torch.tensor(t1)[None], affine=torch.tensor(affine))


def mni152_tissue_maps() -> MetaTensor:
    """CSF, GM and WM probabilities of the MNI152 2009 template (nilearn), 1 mm, read offline.

    GM and WM are nilearn's templates (``mni_icbm152_{gm,wm}_tal_nlin_sym_09a``, scaled to a maximum
    of 1); CSF is what the brain mask leaves of them, ``mask - GM - WM`` clipped at 0. Where GM + WM
    exceeds 1 both are scaled down, so each voxel sums to at most 1.

    Returns:
        (3, 197, 233, 189) float32 MetaTensor (channels CSF, GM, WM) with the template's affine.

    Raises:
        MrsrError: nilearn is not installed (it is an optional extra).
    """
    _, stack, affine = _mni152_arrays()
    gm, wm, mask = (torch.tensor(a) for a in stack)
    total = gm + wm
    excess = total.clamp_min(1.0)  # the two templates were scaled separately: keep their sum a probability
    gm, wm = gm / excess, wm / excess
    csf = (mask - gm - wm).clamp_min(0.0)
    return MetaTensor(torch.stack([csf, gm, wm]), affine=torch.tensor(affine))


def default_maps() -> list[MetaTensor]:
    """The default label sources: the MNI152 tissue maps and 3-class k-means maps of the MNI152 T1.

    Returns:
        Two (3, 197, 233, 189) float32 MetaTensors.

    Raises:
        MrsrError: nilearn is not installed.
    """
    return [mni152_tissue_maps(), kmeans_tissue_maps(mni152_t1(), classes=3)]


def _lloyd_1d(values: np.ndarray, centres: np.ndarray, iterations: int) -> np.ndarray:
    """1D k-means: sorted ``centres`` refined on ``values`` by Lloyd's iterations (nearest centre by bisection)."""
    for _ in range(iterations):
        labels = np.searchsorted((centres[1:] + centres[:-1]) / 2, values)
        sums = np.bincount(labels, weights=values, minlength=len(centres))
        counts = np.bincount(labels, minlength=len(centres))
        new = np.where(counts > 0, sums / np.maximum(counts, 1), centres)
        new.sort()
        if np.allclose(new, centres, rtol=0, atol=1e-6 * (values.max() - values.min() + 1e-12)):
            return new
        centres = new
    return centres


def _responsibilities(values: np.ndarray, centres: np.ndarray, fit: np.ndarray) -> np.ndarray:
    """(N, k) Gaussian-mixture responsibilities of ``values`` for the k-means classes of the fit sample ``fit``."""
    labels = np.searchsorted((centres[1:] + centres[:-1]) / 2, fit)
    k = len(centres)
    counts = np.bincount(labels, minlength=k).astype(np.float64)
    spread = fit.max() - fit.min() + 1e-12
    var = np.bincount(labels, weights=(fit - centres[labels]) ** 2, minlength=k) / np.maximum(counts, 1)
    var = np.maximum(var, (1e-3 * spread) ** 2)  # a class of one repeated value still gets a finite width
    log_prior = np.log(np.maximum(counts, 1) / counts.sum())
    logp = log_prior - 0.5 * np.log(var) - 0.5 * (values[:, None] - centres) ** 2 / var
    logp -= logp.max(axis=1, keepdims=True)
    p = np.exp(logp)
    return (p / p.sum(axis=1, keepdims=True)).astype(np.float32)


def kmeans_tissue_maps(
    volume: torch.Tensor | np.ndarray,
    classes: int = 3,
    seed: int = 0,
    fraction: float = 0.1,
    iterations: int = 50,
    max_samples: int = 200_000,
) -> MetaTensor:
    """Soft tissue classes of a real volume by k-means on the intensities of its foreground.

    The foreground is :func:`mrsr.metrics.foreground_mask` (voxels above ``fraction`` of the way
    from the minimum to the 99th percentile). k-means (Lloyd, initialised at intensity quantiles)
    runs on up to ``max_samples`` foreground voxels; each class then becomes a Gaussian of its own
    mean, variance and weight, and every foreground voxel gets its responsibilities. Voxels between
    two classes (partial volume) are therefore shared between them, as in a tissue probability map.

    Args:
        volume: (1, X, Y, Z) (or (X, Y, Z)) real image; a MetaTensor's affine is kept.
        classes: number of classes (>= 1); ordered by mean intensity, darkest first.
        seed: seed of the voxel subsample the classes are fitted on.
        fraction: foreground threshold, see :func:`mrsr.metrics.foreground_mask`.
        iterations: most Lloyd iterations.
        max_samples: most voxels to fit on (the responsibilities cover every foreground voxel).

    Returns:
        (classes, X, Y, Z) float32 MetaTensor of probabilities: they sum to 1 on the foreground and
        are 0 on the background.

    Raises:
        MrsrError: the volume is not (1, X, Y, Z), or has fewer foreground voxels than classes.
    """
    from mrsr.metrics import foreground_mask

    x = convert_to_tensor(volume, track_meta=False).float()
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4 or x.shape[0] != 1 or classes < 1:
        raise MrsrError(f"k-means tissue maps need one (1, X, Y, Z) volume and classes >= 1, got {tuple(x.shape)}.")
    mask = foreground_mask(x[0], fraction).numpy()
    values = x[0].numpy()[mask].astype(np.float64)
    if values.size < classes:
        raise MrsrError(f"The volume has {values.size} foreground voxels, fewer than the {classes} classes asked for.")
    rng = np.random.default_rng(seed)
    fit = values if values.size <= max_samples else values[rng.integers(0, values.size, max_samples)]
    centres = _lloyd_1d(fit, np.quantile(fit, (np.arange(classes) + 0.5) / classes), iterations)
    maps = np.zeros((classes, *mask.shape), dtype=np.float32)
    maps[:, mask] = _responsibilities(values, centres, fit).T
    affine = volume.affine if isinstance(volume, MetaTensor) else torch.eye(4, dtype=torch.float64)
    return MetaTensor(torch.from_numpy(maps), affine=affine)


# ---------------------------------------------------------------------------------------------------------------
# sharpness


def high_band_energy(slab: torch.Tensor | np.ndarray) -> float:
    """Fraction of the in-plane spectral energy outside the x2 band: above half the Nyquist frequency.

    Each in-plane slice has its mean removed and is mirrored to (2H, 2W) (as a DCT does), so the jump
    between opposite edges, which the FFT's periodicity would add as spurious high frequencies, is not
    counted. The energy of the 2D spectrum with ``|k| > 0.25`` cycles/pixel along either axis (what a
    factor-2 k-space truncation removes) is divided by the total, over all slices together. White noise
    gives about 0.75; a slab band-limited to the x2 band, about 0.

    Args:
        slab: (C, H, W, S), (H, W, S) or (H, W) image; H and W are the in-plane axes.

    Returns:
        The fraction in [0, 1] (0 for a constant slab).
    """
    x = convert_to_tensor(slab, track_meta=False).double()
    if x.ndim == 2:
        x = x[..., None]
    if x.ndim == 4:
        x = x.movedim(0, -1)  # (H, W, S, C): every channel is one more slice
    x = x.reshape(x.shape[0], x.shape[1], -1)
    x = x - x.mean(dim=(0, 1), keepdim=True)
    x = torch.cat([x, x.flip(0)], dim=0)
    x = torch.cat([x, x.flip(1)], dim=1)
    power = torch.fft.fft2(x, dim=(0, 1)).abs() ** 2
    fx = torch.fft.fftfreq(x.shape[0], dtype=torch.float64).abs()[:, None, None]
    fy = torch.fft.fftfreq(x.shape[1], dtype=torch.float64).abs()[None, :, None]
    high = (fx > 0.25) | (fy > 0.25)
    total = float(power.sum())
    return float(power[high.expand_as(power)].sum()) / total if total > 0 else 0.0


# ---------------------------------------------------------------------------------------------------------------
# the generator


def _rotation(axis: int, angle: float) -> np.ndarray:
    """3x3 rotation by ``angle`` (radians) about coordinate ``axis``."""
    c, s = math.cos(angle), math.sin(angle)
    i, j = [a for a in range(3) if a != axis]
    r = np.eye(3)
    r[i, i], r[i, j], r[j, i], r[j, j] = c, -s, s, c
    return r


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(math.exp(rng.uniform(math.log(low), math.log(high))))


@functools.lru_cache(maxsize=64)
def _linear_matrix(n_in: int, n_out: int) -> torch.Tensor:
    """(n_out, n_in) linear interpolation from ``n_in`` samples spanning the same extent as the ``n_out`` ones."""
    if n_in == 1:
        return torch.ones(n_out, 1)
    position = torch.linspace(0.0, n_in - 1.0, n_out, dtype=torch.float64)
    low = position.floor().clamp(max=n_in - 2).long()
    frac = position - low
    matrix = torch.zeros(n_out, n_in, dtype=torch.float64)
    rows = torch.arange(n_out)
    matrix[rows, low] = 1.0 - frac
    matrix[rows, low + 1] = frac
    return matrix.float()


def _smooth_field(rng: np.random.Generator, channels: int, grid: Sequence[int], size: Sequence[int]) -> torch.Tensor:
    """(channels, *size) unit Gaussian noise drawn on a coarse ``grid`` and upsampled linearly: smooth at the grid's
    scale. Upsampled by three small matrices (separable), several times faster than ``F.interpolate``."""
    coarse = tuple(max(1, min(int(g), int(s))) for g, s in zip(grid, size))
    noise = torch.from_numpy(rng.standard_normal((channels, *coarse), dtype=np.float32))
    rows, cols, slices = (_linear_matrix(c, int(s)) for c, s in zip(coarse, size))
    return torch.einsum("cijk,hi,wj,sk->chws", noise, rows, cols, slices)


def _white_noise(rng: np.random.Generator, shape: Sequence[int]) -> torch.Tensor:
    """Unit Gaussian noise of ``shape`` from a torch generator seeded by ``rng`` (torch draws it faster than numpy)."""
    generator = torch.Generator().manual_seed(int(rng.integers(2**62)))
    return torch.randn(tuple(shape), generator=generator)


def _as_maps(maps: torch.Tensor | np.ndarray) -> tuple[torch.Tensor, np.ndarray]:
    """The (C, X, Y, Z) float32 tensor of ``maps`` (no copy when it already is one) and its voxel size in mm."""
    spacing = np.ones(3)
    if isinstance(maps, MetaTensor):
        affine = np.asarray(maps.affine, dtype=np.float64)
        spacing = np.maximum(np.linalg.norm(affine[:3, :3], axis=0), 1e-6)
    x = convert_to_tensor(maps, track_meta=False)
    if x.ndim != 4 or x.shape[0] < 1:
        raise MrsrError(f"Tissue maps must be (C, X, Y, Z) probabilities, got shape {tuple(x.shape)}.")
    return x.float(), spacing


class RandSynthMR(Randomizable, Transform):
    """One synthetic MR slab of random contrast from soft tissue maps (SynthSR-style domain randomisation).

    Steps, each drawn anew per call:

    1. **Geometry.** A centre on tissue (or, with ``background_centre_prob``, anywhere); a view
       (axial, coronal or sagittal, optionally mirrored); any in-plane rotation, a small tilt out of
       the plane, a scale (output voxel size in mm: mostly >= 1, i.e. minified, because magnifying
       interpolates and blurs), a small shear, and a smooth elastic warp (a coarse random
       displacement grid, upsampled). All maps are resampled at once by one ``grid_sample`` that
       gathers only the voxels under the output grid: the cost is set by ``spatial_size``, not by
       the volume (an explicit crop, copied first, measured slower).
    2. **Partial volume.** The maps are sharpened by a random power (``p**g``, renormalised with the
       background), so tissue boundaries range from the template's soft ones to crisp ones.
    3. **Contrast and texture.** Each class and the background gets an independent mean intensity
       (any order: T1-, T2-, PD-like), a smooth multiplicative field and a fine texture (white noise
       in the log-intensity, so there is content up to Nyquist); image = sum_c p_c I_c.
    4. **Non-brain content.** Random shapes (soft blobs, and sharp-edged ellipses, rectangles,
       polygons and irregular patches) of random intensities are painted over the background, so
       mostly outside the tissue; with ``lesion_prob`` a shape is painted over the tissue too.
    5. **Artefacts.** A smooth multiplicative bias field and Rician noise at a random SNR (both drawn here
       like the other fields, rather than by MONAI's ``RandBiasField``/``RandRicianNoise``, so that every
       draw comes from the one generator that makes an item reproducible).
    6. **Intensities.** Percentiles ``lower``/``upper`` to 0 and 1, clipped, then a random gamma.

    Args:
        spatial_size: output (H, W, S): S neighbouring slices (1 for 2D training).
        orientations: views to draw from (:data:`ORIENTATIONS`); each says which map axis the
            slices are taken across (maps stored X left-right, Y back-front, Z foot-head).
        flip_prob: probability of mirroring the view.
        rotate_range: in-plane rotation, uniform in +-this many degrees (180: any angle).
        tilt_range: out-of-plane rotation about each in-plane axis, uniform in +-this many degrees.
        scale_range: (low, high) of the output voxel size in mm, log-uniform (the maps' own voxel size
            is read from a MetaTensor's affine, else taken as 1 mm).
        anisotropy_std: log-normal jitter of each axis' scale around the common one.
        shear_range: in-plane shear, uniform in +-this.
        elastic_grid: control points of the elastic warp along each in-plane axis (2 along the slices).
        elastic_std: largest standard deviation of the warp, in output pixels (drawn uniformly up to it).
        background_centre_prob: probability that the centre need not lie on tissue.
        sharpen_range: (low, high) of the power that sharpens the maps (1: as they are).
        intensity_range: (low, high) of the class and shape mean intensities, uniform.
        background_range: (low, high) of the background's mean intensity, uniform.
        texture_grid: control points of the smooth within-class field along each in-plane axis.
        texture_std: largest standard deviation of that field (in log-intensity).
        fine_texture_std: largest standard deviation of the fine, per-voxel texture (in log-intensity).
        max_shapes: most non-brain shapes per slab (uniform from 0).
        shapes: kinds to draw from (:data:`SHAPES`): ``"blob"`` is smooth, the others sharp-edged.
        shape_radius_range: (low, high) of a shape's radius in pixels, log-uniform.
        edge_width_range: (low, high) of a sharp shape's edge width in pixels (its sigmoid's scale).
        lesion_prob: probability that a shape is painted over the tissue too.
        bias_grid: control points of the bias field along each in-plane axis.
        bias_std: largest standard deviation of the log bias field.
        snr_range: (low, high) of the SNR (mean image intensity over the noise sigma), log-uniform;
            ``None``: no noise.
        lower: percentile mapped to 0.
        upper: percentile mapped to 1.
        gamma_std: standard deviation of the log of the final gamma (0: none).

    Shapes:
        ``maps`` (C, X, Y, Z) float32 probabilities (sum over C at most 1; stored channels-last they
        sample about 10% faster, see :class:`SynthMRDataset`) -> (1, H, W, S) float32
        MetaTensor in [0, 1] with an identity (1 mm) affine. The draws of the last call are in
        :attr:`params`.

    >>> maps = torch.rand(3, 32, 32, 32) / 3
    >>> RandSynthMR(spatial_size=(16, 16, 3)).set_random_state(0)(maps).shape
    torch.Size([1, 16, 16, 3])
    """

    backend = [TransformBackends.TORCH, TransformBackends.NUMPY]

    def __init__(
        self,
        spatial_size: Sequence[int] = (96, 96, 5),
        orientations: Sequence[str] = ORIENTATIONS,
        flip_prob: float = 0.5,
        rotate_range: float = 180.0,
        tilt_range: float = 6.0,
        scale_range: tuple[float, float] = (0.95, 1.5),
        anisotropy_std: float = 0.05,
        shear_range: float = 0.05,
        elastic_grid: int = 5,
        elastic_std: float = 2.0,
        background_centre_prob: float = 0.1,
        sharpen_range: tuple[float, float] = (1.0, 3.0),
        intensity_range: tuple[float, float] = (0.0, 1.0),
        background_range: tuple[float, float] = (0.0, 0.5),
        texture_grid: int = 8,
        texture_std: float = 0.2,
        fine_texture_std: float = 0.1,
        max_shapes: int = 8,
        shapes: Sequence[str] = SHAPES,
        shape_radius_range: tuple[float, float] = (2.0, 40.0),
        edge_width_range: tuple[float, float] = (0.3, 1.0),
        lesion_prob: float = 0.1,
        bias_grid: int = 4,
        bias_std: float = 0.3,
        snr_range: tuple[float, float] | None = (12.0, 80.0),
        lower: float = 1.0,
        upper: float = 99.5,
        gamma_std: float = 0.25,
    ) -> None:
        self.spatial_size = tuple(int(s) for s in spatial_size)
        if len(self.spatial_size) != 3 or min(self.spatial_size[:2]) < 2 or self.spatial_size[2] < 1:
            raise MrsrError(f"spatial_size must be (H, W, S) with H, W >= 2 and S >= 1, got {spatial_size}.")
        for name, pair in (("scale_range", scale_range), ("shape_radius_range", shape_radius_range),
                           ("sharpen_range", sharpen_range), ("edge_width_range", edge_width_range)):  # fmt: skip
            if not 0 < pair[0] <= pair[1]:
                raise ValueError(f"{name} must be (low, high) with 0 < low <= high, got {pair}.")
        if snr_range is not None and not 0 < snr_range[0] <= snr_range[1]:
            raise ValueError(f"snr_range must be (low, high) with 0 < low <= high, or None, got {snr_range}.")
        if not 0 <= lower < upper <= 100:
            raise ValueError(f"Percentiles must satisfy 0 <= lower < upper <= 100, got {lower}, {upper}.")
        unknown = [o for o in orientations if o not in ORIENTATIONS] + [s for s in shapes if s not in SHAPES]
        if unknown or not orientations:
            raise ValueError(f"Unknown or no orientations/shapes {unknown}; choose from {ORIENTATIONS} and {SHAPES}.")
        self.orientations, self.shapes = tuple(orientations), tuple(shapes)
        self.flip_prob, self.rotate_range, self.tilt_range = flip_prob, rotate_range, tilt_range
        self.scale_range, self.anisotropy_std, self.shear_range = tuple(scale_range), anisotropy_std, shear_range
        self.elastic_grid, self.elastic_std = elastic_grid, elastic_std
        self.background_centre_prob, self.sharpen_range = background_centre_prob, tuple(sharpen_range)
        self.intensity_range, self.background_range = tuple(intensity_range), tuple(background_range)
        self.texture_grid, self.texture_std, self.fine_texture_std = texture_grid, texture_std, fine_texture_std
        self.max_shapes, self.shape_radius_range = max_shapes, tuple(shape_radius_range)
        self.edge_width_range, self.lesion_prob = tuple(edge_width_range), lesion_prob
        self.bias_grid, self.bias_std, self.snr_range = bias_grid, bias_std, snr_range
        self.lower, self.upper, self.gamma_std = lower, upper, gamma_std
        # output pixel coordinates centred on the slab, per axis and as an (H, W, S, 3) grid: made once
        self._axes = [torch.arange(n, dtype=torch.float32) - (n - 1) / 2 for n in self.spatial_size]
        self._coords = torch.stack(torch.meshgrid(*self._axes, indexing="ij"), dim=-1)
        self._seed: np.ndarray | None = None
        self.params: dict = {}

    # -- randomness ------------------------------------------------------------------------------------------

    def randomize(self, data=None) -> None:
        """Draw the seed of the next slab from :attr:`R` (every draw of a slab comes from that one seed)."""
        self._seed = self.R.randint(0, 2**31 - 1, size=2)

    def __call__(self, maps: torch.Tensor | np.ndarray, randomize: bool = True) -> MetaTensor:
        """A slab from ``maps`` (C, X, Y, Z); ``randomize=False`` repeats the last draw. Returns (1, H, W, S)."""
        if randomize or self._seed is None:
            self.randomize()
        image, self.params = self.generate(maps, np.random.default_rng(self._seed), return_params=True)
        return image

    def generate(
        self, maps: torch.Tensor | np.ndarray, rng: np.random.Generator, return_params: bool = False
    ) -> MetaTensor | tuple[MetaTensor, dict]:
        """A slab drawn with ``rng`` only: thread-safe (no state of the transform changes) and reproducible.

        Args:
            maps: (C, X, Y, Z) probabilities; a MetaTensor's affine gives the voxel size.
            rng: the source of every random draw of this slab.
            return_params: also return the draws (a dict).

        Returns:
            (1, H, W, S) float32 MetaTensor in [0, 1] (identity affine), and the draws if asked.
        """
        volume, spacing = _as_maps(maps)
        params: dict = {"classes": int(volume.shape[0])}
        probs = self._resample(volume, spacing, rng, params)
        probs = self._sharpen(probs, rng, params)
        image, texture = self._contrast(probs, rng, params)
        image = self._non_brain(image, probs, texture, rng, params)
        image = self._artefacts(image, rng, params)
        image = self._normalise(image, rng, params)
        out = MetaTensor(image[None], affine=torch.eye(4, dtype=torch.float64))
        return (out, params) if return_params else out

    # -- 1. geometry -----------------------------------------------------------------------------------------

    def _centre(self, volume: torch.Tensor, rng: np.random.Generator) -> np.ndarray:
        """A random voxel on tissue: a few tries, each one voxel lookup, so it costs nothing on any volume."""
        shape = np.asarray(volume.shape[1:])
        anywhere = rng.random() < self.background_centre_prob
        for _ in range(20):
            centre = rng.uniform(0, shape - 1)
            i, j, k = np.round(centre).astype(int)
            if anywhere or float(volume[:, i, j, k].sum()) > 0.5:
                break
        return centre

    def _affine(self, rng: np.random.Generator, params: dict) -> np.ndarray:
        """3x3 matrix from output pixels (row, column, slice) to millimetres along the map's voxel axes."""
        orientation = self.orientations[rng.integers(len(self.orientations))]
        view = np.eye(3)[:, list(_ORIENTATION_AXES[orientation])]
        if rng.random() < self.flip_prob:
            view = view @ np.diag([1.0, -1.0, 1.0])
        angle = math.radians(rng.uniform(-self.rotate_range, self.rotate_range))
        tilt = [math.radians(rng.uniform(-self.tilt_range, self.tilt_range)) for _ in range(2)]
        scale = _log_uniform(rng, *self.scale_range)
        scales = scale * np.exp(rng.normal(0.0, self.anisotropy_std, 3))
        shear = np.eye(3)
        shear[0, 1], shear[1, 0] = rng.uniform(-self.shear_range, self.shear_range, 2)
        rotation = _rotation(0, tilt[0]) @ _rotation(1, tilt[1]) @ _rotation(2, angle)
        params.update(orientation=orientation, angle=math.degrees(angle), scale=scales.tolist())
        return view @ rotation @ shear @ np.diag(scales)

    def _displacement(self, rng: np.random.Generator) -> torch.Tensor:
        """(H, W, S, 3) smooth elastic displacement in output pixels."""
        h, w, s = self.spatial_size
        std = rng.uniform(0.0, self.elastic_std)
        grid = (self.elastic_grid, self.elastic_grid, 2)
        return (_smooth_field(rng, 3, grid, (h, w, s)) * std).permute(1, 2, 3, 0)

    def _resample(
        self, volume: torch.Tensor, spacing: np.ndarray, rng: np.random.Generator, params: dict
    ) -> torch.Tensor:
        """(C, H, W, S) maps under the random geometry, by one trilinear ``grid_sample`` (zeros outside)."""
        shape = np.asarray(volume.shape[1:], dtype=np.float64)
        centre = self._centre(volume, rng)
        to_voxels = np.diag(1.0 / spacing) @ self._affine(rng, params)
        # grid_sample wants coordinates in [-1, 1] (align_corners=True) ordered (Z, Y, X): fold both into the matrix
        norm = np.where(shape > 1, 2.0 / np.maximum(shape - 1, 1), 0.0)
        matrix = torch.as_tensor((norm[:, None] * to_voxels)[::-1].T.copy(), dtype=torch.float32)
        offset = torch.as_tensor((norm * centre - (shape > 1))[::-1].copy(), dtype=torch.float32)
        points = self._coords + self._displacement(rng)
        grid = torch.addmm(offset, points.reshape(-1, 3), matrix).reshape(1, *self.spatial_size, 3)
        params["centre"] = centre.tolist()
        return F.grid_sample(volume[None], grid, mode="bilinear", padding_mode="zeros", align_corners=True)[0]

    # -- 2. partial volume -----------------------------------------------------------------------------------

    def _sharpen(self, probs: torch.Tensor, rng: np.random.Generator, params: dict) -> torch.Tensor:
        """(C + 1, H, W, S): the classes and the background (last), sharpened by a random power, summing to 1."""
        probs = probs.clamp(0.0, 1.0)
        background = (1.0 - probs.sum(0, keepdim=True)).clamp_min(0.0)
        probs = torch.cat([probs, background])
        power = rng.uniform(*self.sharpen_range)
        params["sharpen"] = power
        if power != 1.0:
            probs = probs.pow(power)
        return probs / probs.sum(0, keepdim=True).clamp_min(1e-6)

    # -- 3. contrast and texture -----------------------------------------------------------------------------

    def _contrast(self, probs: torch.Tensor, rng: np.random.Generator, params: dict) -> tuple[torch.Tensor, ...]:
        """(H, W, S) image sum_c p_c I_c, and the background's multiplicative texture (H, W, S) for the shapes."""
        n = probs.shape[0]
        means = rng.uniform(*self.intensity_range, n)
        means[-1] = rng.uniform(*self.background_range)
        smooth_std = torch.from_numpy(rng.uniform(0.0, self.texture_std, n).astype(np.float32))
        fine_std = torch.from_numpy(rng.uniform(0.0, self.fine_texture_std, n).astype(np.float32))
        h, w, s = self.spatial_size
        grid = (self.texture_grid, self.texture_grid, 2)
        log_texture = _smooth_field(rng, n, grid, (h, w, s)) * smooth_std[:, None, None, None]
        log_texture += _white_noise(rng, (n, h, w, s)) * fine_std[:, None, None, None]
        texture = torch.exp(log_texture)
        intensity = torch.from_numpy(means.astype(np.float32))[:, None, None, None] * texture
        params.update(means=means[:-1].tolist(), background=float(means[-1]))
        return (probs * intensity).sum(0), texture[-1]

    # -- 4. non-brain content --------------------------------------------------------------------------------

    def _shape_frame(self, rng: np.random.Generator, free: torch.Tensor, reach: float) -> tuple:
        """A shape's box and its rotated in-plane coordinates there, centred where the background is (a few tries).

        Returns:
            (rows, cols) slices of the box that holds everything within ``reach`` pixels of the centre (on
            every slice), and the two rotated coordinates broadcast to (h, w, S) over it.
        """
        h, w, s = self.spatial_size
        for _ in range(5):
            i, j, k = rng.integers(0, h), rng.integers(0, w), rng.integers(0, s)
            if free[i, j, k] > 0.5:
                break
        drift = rng.normal(0.0, 0.3, 2)  # the shape moves a little from slice to slice: a slanted prism
        reach += float(np.abs(drift).max()) * (s - 1) / 2 + 1
        rows = slice(max(0, math.floor(i - reach)), min(h, math.ceil(i + reach) + 1))
        cols = slice(max(0, math.floor(j - reach)), min(w, math.ceil(j + reach) + 1))
        u = self._axes[0][rows] - float(i - (h - 1) / 2)  # self._axes are centred on the slab
        v = self._axes[1][cols] - float(j - (w - 1) / 2)
        z = self._axes[2]
        x = u[:, None, None] - float(drift[0]) * z
        y = v[None, :, None] - float(drift[1]) * z
        angle = rng.uniform(0, math.pi)
        c, sn = math.cos(angle), math.sin(angle)
        return (rows, cols), c * x + sn * y, c * y - sn * x

    def _shape(self, kind: str, rng: np.random.Generator, free: torch.Tensor) -> tuple:
        """One random shape: the (rows, cols) box it covers and its soft mask (h, w, S) in [0, 1] there.

        Only the box is computed, so small shapes cost little.
        """
        if kind == "patch":  # irregular regions over the whole slab: a smooth random field, thresholded softly
            field = _smooth_field(rng, 1, (6, 6, 2), self.spatial_size)[0]
            return (slice(None), slice(None)), torch.sigmoid((field - rng.uniform(0.3, 1.5)) / rng.uniform(0.02, 0.3))
        a, b = _log_uniform(rng, *self.shape_radius_range) * rng.uniform(0.3, 1.0, 2)
        edge = rng.uniform(*self.edge_width_range)
        # beyond the box the mask is below 4e-4: a blob's exp(-2 r^2) past twice its radius, an edge's sigmoid
        # past 8 widths (a rectangle's corners lie hypot(a, b) from its centre)
        extent = math.hypot(a, b) if kind == "rectangle" else max(a, b)
        reach = 2 * extent if kind == "blob" else extent + 8 * edge
        box, x, y = self._shape_frame(rng, free, reach)
        if kind == "blob":
            return box, torch.exp(-2.0 * ((x / a).square() + (y / b).square()))
        if kind == "ellipse":
            distance = (torch.sqrt((x / a).square() + (y / b).square()) - 1.0) * min(a, b)
        elif kind == "rectangle":
            distance = torch.maximum(x.abs() - a, y.abs() - b)
        else:  # a convex polygon (vertices in order on an ellipse): the intersection of its edges' half-planes
            angles = np.sort(rng.uniform(0, 2 * math.pi, rng.integers(3, 8)))
            vertices = np.stack([a * np.cos(angles), b * np.sin(angles)], axis=1)
            edges = np.roll(vertices, -1, axis=0) - vertices
            normals = np.stack([edges[:, 1], -edges[:, 0]], axis=1)
            normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-9)
            heights = torch.as_tensor((normals * vertices).sum(1), dtype=torch.float32)
            points = torch.stack(torch.broadcast_tensors(x, y), dim=-1)
            distance = (points @ torch.as_tensor(normals.T, dtype=torch.float32) - heights).amax(-1)
        return box, torch.sigmoid(distance / -edge)

    def _non_brain(
        self, image: torch.Tensor, probs: torch.Tensor, texture: torch.Tensor, rng: np.random.Generator, params: dict
    ) -> torch.Tensor:
        """Paint random shapes: over the background (weighted by its probability), or over everything (lesions)."""
        free = probs[-1]
        count = int(rng.integers(0, self.max_shapes + 1)) if self.shapes else 0
        params["shapes"] = count
        for _ in range(count):
            kind = self.shapes[rng.integers(len(self.shapes))]
            box, mask = self._shape(kind, rng, free)
            value = rng.uniform(*self.intensity_range) * texture[box]
            weight = mask if rng.random() < self.lesion_prob else mask * free[box]
            image[box] = torch.lerp(image[box], value, weight)
        return image

    # -- 5. artefacts and 6. intensities -----------------------------------------------------------------------

    def _artefacts(self, image: torch.Tensor, rng: np.random.Generator, params: dict) -> torch.Tensor:
        """A smooth multiplicative bias field, then Rician noise: the magnitude of image plus complex Gaussian noise."""
        grid = (self.bias_grid, self.bias_grid, 2)
        bias_std = rng.uniform(0.0, self.bias_std)
        image = image * torch.exp(_smooth_field(rng, 1, grid, self.spatial_size)[0] * bias_std)
        if self.snr_range is None:
            params["snr"] = None
            return image
        snr = _log_uniform(rng, *self.snr_range)
        sigma = float(image.mean()) / snr
        noise = _white_noise(rng, (2, *self.spatial_size)) * sigma
        params["snr"] = snr
        return torch.sqrt((image + noise[0]) ** 2 + noise[1] ** 2)

    def _normalise(self, image: torch.Tensor, rng: np.random.Generator, params: dict) -> torch.Tensor:
        """Percentiles ``lower``/``upper`` to 0 and 1, clipped, then a random gamma."""
        flat = image.reshape(-1).numpy()
        flat = flat[:: max(1, flat.size // 16384)]  # percentiles of a strided subsample: as good, and twice as fast
        ranks = [round(q / 100 * (flat.size - 1)) for q in (self.lower, self.upper)]
        lo, hi = (float(v) for v in np.partition(flat, ranks)[ranks])
        if not hi > lo:
            lo, hi = float(image.min()), float(image.max())
        image = ((image - lo) / max(hi - lo, 1e-6)).clamp(0.0, 1.0)
        gamma = math.exp(rng.normal(0.0, self.gamma_std)) if self.gamma_std > 0 else 1.0
        params["gamma"] = gamma
        return image.pow(gamma) if gamma != 1.0 else image


class RandSynthMRd(Randomizable, MapTransform):
    """Dictionary version of :class:`RandSynthMR`: maps under ``keys`` -> a synthetic slab under ``output_key``.

    Several keys are concatenated along the channel axis (one (1, X, Y, Z) map per key, say), which
    copies them every call: for speed keep all classes under one key.

    Args:
        keys: keys of the (C, X, Y, Z) tissue maps (on one grid).
        output_key: where to write the (1, H, W, S) slab.
        allow_missing_keys: do not raise if a key is missing.
        kwargs: the arguments of :class:`RandSynthMR`.

    >>> t = RandSynthMRd("maps", spatial_size=(16, 16, 1)).set_random_state(0)
    >>> t({"maps": torch.rand(3, 24, 24, 24) / 3})["image"].shape
    torch.Size([1, 16, 16, 1])
    """

    backend = RandSynthMR.backend

    def __init__(
        self, keys: KeysCollection, output_key: str = "image", allow_missing_keys: bool = False, **kwargs
    ) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        self.output_key = output_key
        self.synth = RandSynthMR(**kwargs)

    def set_random_state(self, seed: int | None = None, state: np.random.RandomState | None = None) -> RandSynthMRd:
        super().set_random_state(seed, state)
        self.synth.set_random_state(seed, state)
        return self

    def randomize(self, data=None) -> None:
        self.synth.randomize()

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict[Hashable, torch.Tensor]:
        d = dict(data)
        maps = [d[key] for key in self.key_iterator(d)]
        if not maps:
            return d
        d[self.output_key] = self.synth(maps[0] if len(maps) == 1 else torch.cat([torch.as_tensor(m) for m in maps]))
        return d


RandSynthMRD = RandSynthMRDict = RandSynthMRd


# ---------------------------------------------------------------------------------------------------------------
# dataset and examples


class SynthMRDataset(Dataset):
    """An endless supply of synthetic HR slabs; item ``i`` is the same for a given ``seed`` in any order or worker.

    Item ``i`` draws everything, the label source included, from ``np.random.default_rng([seed, i])``,
    so the set is reproducible with any number of DataLoader workers or shuffling.

    Args:
        maps: label sources, each (C, X, Y, Z) probabilities (:func:`mni152_tissue_maps`,
            :func:`kmeans_tissue_maps`), C may differ between them; checked and stored float32
            channels-last once here (a copy, unless they already are).
        length: number of items.
        seed: seed of the whole set.
        spatial_size: (H, W, S) of each slab.
        kwargs: the other arguments of :class:`RandSynthMR`.

    Raises:
        MrsrError: no maps, or maps that are not (C, X, Y, Z) probabilities.

    Shapes:
        item: (1, H, W, S) float32 MetaTensor in [0, 1], identity (1 mm) affine.
    """

    def __init__(
        self,
        maps: Sequence[torch.Tensor | np.ndarray],
        length: int,
        seed: int = 0,
        spatial_size: Sequence[int] = (96, 96, 5),
        **kwargs,
    ) -> None:
        if not len(maps):
            raise MrsrError("SynthMRDataset needs at least one label source (a (C, X, Y, Z) tissue-map volume).")
        self.maps = [self._checked(m) for m in maps]
        self.length, self.seed = int(length), int(seed)
        self.generator = RandSynthMR(spatial_size=spatial_size, **kwargs)

    @staticmethod
    def _checked(maps: torch.Tensor | np.ndarray) -> torch.Tensor:
        """``maps`` as a float32 (C, X, Y, Z) tensor stored channels-last (a MetaTensor keeps its affine), checked once.

        Channels-last, ``grid_sample`` finds all classes of a voxel side by side: about 10% faster sampling.
        """
        x = maps if isinstance(maps, torch.Tensor) else torch.as_tensor(np.asarray(maps))
        _as_maps(x)
        x = x.float()
        if not x.permute(1, 2, 3, 0).is_contiguous():
            x = x.permute(1, 2, 3, 0).contiguous().permute(3, 0, 1, 2)
        total = x.sum(0)
        if float(x.min()) < -1e-4 or float(total.max()) > 1 + 1e-3:
            raise MrsrError("Tissue maps must be probabilities: each >= 0 and summing to at most 1 per voxel.")
        return x

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> MetaTensor:
        if not -self.length <= index < self.length:
            raise IndexError(f"Index {index} is out of range for {self.length} synthetic items.")
        index %= self.length
        rng = np.random.default_rng([self.seed, index])
        maps = self.maps[int(rng.integers(len(self.maps)))]
        return self.generator.generate(maps, rng)


def _save_panel(images: Sequence[torch.Tensor], names: Sequence[str], path: Path) -> None:
    """A PNG grid (up to 4 per row) of the centre slices of (1, H, W, S) images, greyscale 0..1, written atomically."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    cols = min(4, len(images))
    rows = math.ceil(len(images) / cols)
    fig = Figure(figsize=(3 * cols, 3 * rows))
    FigureCanvasAgg(fig)
    for n, (image, name) in enumerate(zip(images, names)):
        ax = fig.add_subplot(rows, cols, n + 1)
        ax.imshow(np.asarray(image[0, :, :, image.shape[-1] // 2]).T, cmap="gray", vmin=0, vmax=1, origin="lower")
        ax.set_title(name, fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=80)


def write_examples(
    folder: str | os.PathLike,
    n: int,
    seed: int = 0,
    spatial_size: Sequence[int] = (160, 160, 1),
    overwrite: bool = False,
    maps: Sequence[torch.Tensor] | None = None,
    **kwargs,
) -> list[Path]:
    """Write ``n`` synthetic slabs as ``synth_0000.nii.gz``, ... and ``panel.png`` (up to 8 of them), to look at.

    Args:
        folder: output folder (created if needed).
        n: number of examples (>= 1).
        seed: seed of the :class:`SynthMRDataset` they are items 0..n-1 of.
        spatial_size: (H, W, S) of each.
        overwrite: replace existing files of the same names.
        maps: label sources; default :func:`default_maps` (needs nilearn).
        kwargs: the other arguments of :class:`RandSynthMR`.

    Returns:
        The written paths: the NIfTI files in order, then the panel.

    Raises:
        MrsrError: a file exists and ``overwrite`` is False, or ``n < 1``, or nilearn is missing for the default maps.
    """
    from .io import save_volume

    if n < 1:
        raise MrsrError(f"Asked for {n} examples; ask for at least 1.")
    folder = Path(folder)
    paths = [folder / f"synth_{i:04d}.nii.gz" for i in range(n)]
    panel = folder / "panel.png"
    existing = [p for p in [*paths, panel] if p.exists()]
    if existing and not overwrite:
        raise MrsrError(f"{existing[0]} exists ({len(existing)} files in all); pass overwrite=True to replace them.")
    dataset = SynthMRDataset(default_maps() if maps is None else maps, n, seed, spatial_size, **kwargs)
    folder.mkdir(parents=True, exist_ok=True)  # only once the label sources are there: a failure leaves nothing
    shown = []
    for i in progress_iter(range(n), "synthetic examples", unit="image", enabled=n >= _PROGRESS_FROM):
        image = dataset[i]
        save_volume(image, paths[i], overwrite=True)
        if i < 8:
            shown.append(image)
    _save_panel(shown, [p.name.split(".")[0] for p in paths[: len(shown)]], panel)
    return [*paths, panel]
