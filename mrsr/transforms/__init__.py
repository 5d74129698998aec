"""MONAI-style transforms of mrsr: k-space degradation and data consistency, slice stacking, intensity normalisation."""

from .consistency import (
    KSpaceConsistency,
    KSpaceConsistencyd,
    KSpaceConsistencyD,
    KSpaceConsistencyDict,
    kspace_consistency,
)
from .intensity import RobustNormalize, RobustNormalized, RobustNormalizeD, RobustNormalizeDict
from .kspace import (
    KSpaceTruncate,
    KSpaceTruncated,
    KSpaceTruncateD,
    KSpaceTruncateDict,
    RandKSpaceTruncate,
    RandKSpaceTruncated,
    RandKSpaceTruncateD,
    RandKSpaceTruncateDict,
    fourier_resize,
    truncated_size,
)
from .resample import interp_matrix, resize_axis, upsample_aligned
from .slicestack import SliceStack, SliceStackd, SliceStackD, SliceStackDict, stack_neighbours
