"""Robust intensity normalisation to [0, 1] that remembers how to undo itself."""

from __future__ import annotations

from collections.abc import Hashable, Mapping

import torch
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import MapTransform, Transform
from monai.transforms.utils_pytorch_numpy_unification import percentile
from monai.utils import convert_to_tensor

__all__ = ["RobustNormalize", "RobustNormalized", "RobustNormalizeD", "RobustNormalizeDict", "INTENSITY_KEY"]

INTENSITY_KEY = "mrsr_intensity_range"


class RobustNormalize(Transform):
    """Map the ``lower`` and ``upper`` percentiles of an image to 0 and 1.

    Values are not clipped, so the map is exactly invertible. The (low, high) intensities used
    are stored in a MetaTensor's meta under ``"mrsr_intensity_range"`` and :meth:`inverse` maps any
    image (the SR output included) back to the original intensity scale with them.

    Args:
        lower: lower percentile (0-100).
        upper: upper percentile (0-100).

    >>> t = RobustNormalize(0, 100)
    >>> y = t(MetaTensor(torch.tensor([[2.0, 4.0, 6.0]])))
    >>> y.tolist(), t.inverse(y).tolist()
    ([[0.0, 0.5, 1.0]], [[2.0, 4.0, 6.0]])
    """

    backend = [torch.Tensor]

    def __init__(self, lower: float = 0.5, upper: float = 99.5) -> None:
        if not 0 <= lower < upper <= 100:
            raise ValueError(f"Percentiles must satisfy 0 <= lower < upper <= 100, got {lower}, {upper}.")
        self.lower, self.upper = lower, upper

    def intensity_range(self, x: torch.Tensor) -> tuple[float, float]:
        """The (low, high) intensities of ``x`` at the two percentiles; high > low always."""
        lo = float(percentile(x.float(), self.lower))
        hi = float(percentile(x.float(), self.upper))
        if not hi > lo:
            hi = float(x.max())
            if not hi > lo:
                raise ValueError("The image is constant: there is nothing to super-resolve.")
        return lo, hi

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        x = convert_to_tensor(img, track_meta=False).float()
        lo, hi = self.intensity_range(x)
        out = (x - lo) / (hi - lo)
        meta = dict(img.meta) if isinstance(img, MetaTensor) else {}
        meta[INTENSITY_KEY] = (lo, hi)
        return MetaTensor(out, meta=meta)

    @staticmethod
    def inverse(img: torch.Tensor, intensity_range: tuple[float, float] | None = None) -> torch.Tensor:
        """Undo the normalisation with ``intensity_range`` (default: the one in ``img``'s meta)."""
        if intensity_range is None:
            meta = img.meta if isinstance(img, MetaTensor) else {}
            if INTENSITY_KEY not in meta:
                raise ValueError("The image carries no intensity range: pass the (low, high) used to normalise it.")
            intensity_range = meta[INTENSITY_KEY]
        lo, hi = (float(v) for v in intensity_range)
        return img * (hi - lo) + lo


class RobustNormalized(MapTransform):
    """Dictionary version of :class:`RobustNormalize`."""

    backend = RobustNormalize.backend

    def __init__(
        self, keys: KeysCollection, lower: float = 0.5, upper: float = 99.5, allow_missing_keys: bool = False
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.normalize = RobustNormalize(lower, upper)

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict[Hashable, torch.Tensor]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.normalize(d[key])
        return d


RobustNormalizeD = RobustNormalizeDict = RobustNormalized
