"""Robust intensity normalisation to [0, 1] that remembers how to undo itself."""

from __future__ import annotations

from collections.abc import Hashable, Mapping

import torch
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import InvertibleTransform, MapTransform
from monai.transforms.utils_pytorch_numpy_unification import percentile
from monai.utils import TraceKeys, TransformBackends, convert_to_tensor

from mrsr.errors import MrsrError

__all__ = ["RobustNormalize", "RobustNormalized", "RobustNormalizeD", "RobustNormalizeDict", "INTENSITY_KEY"]

INTENSITY_KEY = "mrsr_intensity_range"


class RobustNormalize(InvertibleTransform):
    """Map the ``lower`` and ``upper`` percentiles of an image to 0 and 1.

    Values are not clipped, so the map is exactly invertible. The (low, high) intensities used
    are stored twice: in a MetaTensor's meta under ``"mrsr_intensity_range"`` and, as MONAI's
    invertible transforms do, in a record pushed onto ``applied_operations`` (the input's history is
    kept). :meth:`inverse` maps any image (the SR output included) back to the original intensity
    scale with them, so ``Compose.inverse`` and ``monai.transforms.Invertd`` undo it in turn with the
    transforms before it (``Spacingd``, ``Orientationd``, ...).

    Args:
        lower: lower percentile (0-100).
        upper: upper percentile (0-100).

    >>> t = RobustNormalize(0, 100)
    >>> y = t(MetaTensor(torch.tensor([[2.0, 4.0, 6.0]])))
    >>> y.tolist(), t.inverse(y).tolist()
    ([[0.0, 0.5, 1.0]], [[2.0, 4.0, 6.0]])
    """

    backend = [TransformBackends.TORCH]

    def __init__(self, lower: float = 0.5, upper: float = 99.5) -> None:
        if not 0 <= lower < upper <= 100:
            raise MrsrError(f"Percentiles must satisfy 0 <= lower < upper <= 100, got {lower}, {upper}.")
        self.lower, self.upper = lower, upper

    def intensity_range(self, x: torch.Tensor) -> tuple[float, float]:
        """The (low, high) intensities of ``x`` at the two percentiles; high > low always."""
        lo = float(percentile(x.float(), self.lower))
        hi = float(percentile(x.float(), self.upper))
        if not hi > lo:
            hi = float(x.max())
            if not hi > lo:
                raise MrsrError("The image is constant: there is nothing to super-resolve.")
        return lo, hi

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        """Normalise ``img`` (C, *spatial); returns a float32 MetaTensor with the input's meta and history.

        The output's ``applied_operations`` are the input's plus a ``RobustNormalize`` record whose
        ``extra_info["intensity_range"]`` is the (low, high) used.
        """
        x = convert_to_tensor(img, track_meta=False).float()
        lo, hi = self.intensity_range(x)
        out = (x - lo) / (hi - lo)
        is_meta = isinstance(img, MetaTensor)
        meta = dict(img.meta) if is_meta else {}
        meta[INTENSITY_KEY] = (lo, hi)
        history = list(img.applied_operations) if is_meta else None
        return self.push_transform(
            MetaTensor(out, meta=meta, applied_operations=history), extra_info={"intensity_range": (lo, hi)}
        )

    @classmethod
    def inverse(cls, img: torch.Tensor, intensity_range: tuple[float, float] | None = None) -> torch.Tensor:
        """Undo the normalisation: ``img * (high - low) + low``.

        Callable on the class or on an instance (``Compose.inverse`` and ``Invertd`` call it on the
        instance). The most recent ``RobustNormalize`` record in a MetaTensor's ``applied_operations``
        is popped, so the history stays consistent for the inverses of earlier transforms.

        Args:
            img: the normalised image (or the SR output made from it), any shape.
            intensity_range: the (low, high) to use; default: the popped record's, else the range in
                ``img``'s meta.

        Returns:
            ``img`` on the original intensity scale (a MetaTensor keeps its meta).

        Raises:
            MrsrError: no range given and ``img`` carries none.
        """
        record = cls._pop_record(img)
        if intensity_range is None:
            if record is not None:
                intensity_range = record[TraceKeys.EXTRA_INFO]["intensity_range"]
            else:
                meta = img.meta if isinstance(img, MetaTensor) else {}
                if INTENSITY_KEY not in meta:
                    raise MrsrError("The image carries no intensity range: pass the (low, high) used to normalise it.")
                intensity_range = meta[INTENSITY_KEY]
        lo, hi = (float(v) for v in intensity_range)
        out = img * (hi - lo)
        # in place on the new tensor: the same values as ``+ lo``, without a third volume-sized array at the peak
        return out.add_(lo) if isinstance(out, torch.Tensor) else out + lo

    @classmethod
    def _pop_record(cls, img: torch.Tensor) -> dict | None:
        """Remove and return the most recent record of this class in ``img``'s history, if any."""
        if not isinstance(img, MetaTensor):
            return None
        ops = img.applied_operations
        for i in range(len(ops) - 1, -1, -1):
            if isinstance(ops[i], Mapping) and ops[i].get(TraceKeys.CLASS_NAME) == cls.__name__:
                return ops.pop(i)
        return None


class RobustNormalized(MapTransform, InvertibleTransform):
    """Dictionary version of :class:`RobustNormalize`; invertible (``Invertd`` restores the intensities).

    Args:
        keys: keys of the (C, *spatial) images to normalise.
        lower: lower percentile (0-100).
        upper: upper percentile (0-100).
        allow_missing_keys: do not raise if a key is missing.
    """

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

    def inverse(self, data: Mapping[Hashable, torch.Tensor]) -> dict[Hashable, torch.Tensor]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.normalize.inverse(d[key])
        return d


RobustNormalizeD = RobustNormalizeDict = RobustNormalized
