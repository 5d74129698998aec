"""MONAI-style transforms of mrsr: k-space degradation and data consistency, slice stacking, intensity normalisation."""

from .bandlimit import (
    BandLimitGuard,
    BandLimitGuardD,
    BandLimitGuardd,
    BandLimitGuardDict,
    band_edge_ratio,
    band_edge_ratios,
    band_limited_dims,
    keep_band,
    scale_detail,
    zero_filled_acquisition,
)
from .consistency import (
    KSpaceConsistency,
    KSpaceConsistencyD,
    KSpaceConsistencyd,
    KSpaceConsistencyDict,
    kspace_consistency,
)
from .intensity import RobustNormalize, RobustNormalizeD, RobustNormalized, RobustNormalizeDict
from .kspace import (
    KSpaceTruncate,
    KSpaceTruncateD,
    KSpaceTruncated,
    KSpaceTruncateDict,
    RandKSpaceTruncate,
    RandKSpaceTruncateD,
    RandKSpaceTruncated,
    RandKSpaceTruncateDict,
    fourier_resize,
    truncated_size,
)
from .resample import interp_matrix, resize_axis, thick_interp, thick_interp_matrix, upsample_aligned
from .sliceprofile import (
    SliceProfileDegrade,
    SliceProfileDegradeD,
    SliceProfileDegraded,
    SliceProfileDegradeDict,
    through_plane_factor,
)
from .slicestack import SliceStack, SliceStackD, SliceStackd, SliceStackDict, stack_neighbours
