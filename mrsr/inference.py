"""Volume in, super-resolved volume out, at bounded memory.

A 2D or 2.5D network (or an interpolation baseline) sees slices (B, C, h, w) and returns
(B, 1, s*h, s*w). :func:`super_resolve` feeds it a few slices at a time, with ``k`` neighbours on
each side as channels for 2.5D (:func:`~mrsr.transforms.stack_neighbours`, as everywhere, built
per batch so the volume is never copied 2k+1 times), through MONAI's ``sliding_window_inference``
when an ROI is given, and writes each batch into the preallocated output. Working memory depends
on the slice size, the slice batch and the ROI, not on the number of slices. MONAI's
``SliceInferer`` would hold every slice's output in a list and stack it at the end (twice the
output), which is why the loop is ours.

The output affine follows docs/CONVENTIONS.md: sample ``j`` of the output lies at input position
``j * n / M`` along each upsampled axis (origin kept), so when the input was made from an HR
volume by k-space truncation with a factor that divides its matrix, the output has the HR affine.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.inferers import Inferer, sliding_window_inference
from monai.transforms import MapTransform
from monai.utils import TraceKeys

from mrsr.data.io import DESCRIPTION_KEY
from mrsr.errors import MrsrError
from mrsr.progress import progress_iter, say
from mrsr.runtime import autocast_context, resolve_device, resolve_slice_axis
from mrsr.settings import InferSettings
from mrsr.transforms.bandlimit import band_limited_dims, keep_band, scale_detail
from mrsr.transforms.consistency import kspace_consistency
from mrsr.transforms.intensity import RobustNormalize
from mrsr.transforms.slicestack import stack_neighbours

__all__ = [
    "BAND_LIMITED_KEY",
    "DETAIL_KEY",
    "DATA_CONSISTENCY_KEY",
    "DESCRIPTION_KEY",
    "describe",
    "autocast_context",
    "core_weight_map",
    "even_tiles",
    "prefers_channels_last",
    "resolve_slice_batch",
    "resolve_device",
    "resolve_slice_axis",
    "sr_shape",
    "super_resolve",
    "upsampled_affine",
    "VolumeInferer",
    "RestoreVolumed",
    "ProgressLines",
    "PROVENANCE_KEYS",
    "SliceSR",
]

#: what super-resolves slices: (B, in_channels, h, w) -> (B, 1, H, W), a network or a baseline
SliceSR = Callable[[torch.Tensor], torch.Tensor]
DATA_CONSISTENCY_KEY = "mrsr_data_consistency"
BAND_LIMITED_KEY = "mrsr_band_limited_axes"
DETAIL_KEY = "mrsr_detail"


def describe(
    method: str, scale: float, data_consistency: bool, band_limited: Sequence[int] = (), detail: float = 1.0
) -> str:
    """The provenance line of an SR output, e.g. ``"mrsr MSRN x2; data consistency on"``.

    ``band_limited``: the axes along which the input was band-limited and nothing was added
    (:mod:`mrsr.transforms.bandlimit`), named as ``"; band-limited axis 1"``; ``detail`` other than 1
    (:func:`super_resolve`) as ``"; detail 0.5"``.
    """
    line = f"mrsr {method} x{scale:g}; data consistency {'on' if data_consistency else 'off'}"
    if band_limited:
        line += f"; band-limited axis {', '.join(str(int(a)) for a in band_limited)}"
    if detail != 1:
        line += f"; detail {detail:g}"
    return line


def check_detail(detail: float) -> float:
    """``detail`` as a float, or a one-line :class:`MrsrError` unless it lies in [0, 1]."""
    if isinstance(detail, bool) or not (isinstance(detail, (int, float)) and 0 <= detail <= 1):
        raise MrsrError(
            f"detail must be a number from 0 (nothing beyond the input's k-space band) to 1 (all the detail the "
            f"network adds), got {detail!r}."
        )
    return float(detail)


def upsampled_affine(affine: torch.Tensor, old_shape: Sequence[int], new_shape: Sequence[int]) -> torch.Tensor:
    """Affine of a volume resampled from ``old_shape`` to ``new_shape`` on the degradation's grid.

    Column ``a`` is scaled by ``old / new``; the origin (sample 0) does not move.
    """
    out = torch.as_tensor(affine, dtype=torch.float64).clone()
    for a, (n_old, n_new) in enumerate(zip(old_shape, new_shape)):
        out[:-1, a] *= n_old / n_new
    return out


def prefers_channels_last(predictor: SliceSR) -> bool:
    """Whether a predictor runs faster in channels_last: its ``prefers_channels_last`` attribute, else False.

    The networks set it from ``mrsr benchmark``'s measurements (DURN, ICONet and MSRN gain on a CPU;
    WASA's time is its attention and CasNet's its transposed convolutions, which do not).
    """
    return bool(getattr(predictor, "prefers_channels_last", False))


def _memory_format(predictor: SliceSR, channels_last: bool | None) -> torch.memory_format | None:
    """The format to run in: channels_last or contiguous when asked, else the network's preference or as it is."""
    if channels_last is None:
        return torch.channels_last if prefers_channels_last(predictor) else None
    return torch.channels_last if channels_last else torch.contiguous_format


@contextlib.contextmanager
def _in_memory_format(predictor: SliceSR, fmt: torch.memory_format | None):
    """Run a module's 4D weights in ``fmt``, and give them back in the format they had (training goes on in it)."""
    weights = [w for w in predictor.parameters() if w.ndim == 4] if isinstance(predictor, torch.nn.Module) else []
    if fmt is None or all(w.is_contiguous(memory_format=fmt) for w in weights):  # (a 1-channel conv is both)
        yield
        return
    cl = all(w.is_contiguous(memory_format=torch.channels_last) for w in weights)
    was = torch.channels_last if cl else torch.contiguous_format
    predictor.to(memory_format=fmt)
    try:
        yield
    finally:
        predictor.to(memory_format=was)


CPU_BATCH_PIXELS = 32768  # LR pixels per forward pass on a CPU unless the network measured its own


def resolve_slice_batch(predictor: SliceSR, slice_size: Sequence[int], device: torch.device, slice_batch=None) -> int:
    """Slices per forward pass: ``slice_batch``, or by default 8 on a GPU and on a CPU as many as fit
    the network's ``batch_pixels`` (LR pixels; :data:`CPU_BATCH_PIXELS` if it has none), at least 1.

    On a CPU, large batches run slower, not faster: their activations are fresh memory that the
    kernel must fault in on every pass (``benchmarks/inference_variants.py``: DURN 2x faster one
    128x128 slice at a time than eight), while a GPU wants work to fill it.

    >>> cpu, gpu = torch.device("cpu"), torch.device("cuda")
    >>> resolve_slice_batch(None, (64, 64), cpu), resolve_slice_batch(None, (64, 64), gpu)
    (8, 8)
    """
    if slice_batch is not None:
        return max(1, int(slice_batch))
    if device.type != "cpu":
        return 8
    budget = getattr(predictor, "batch_pixels", CPU_BATCH_PIXELS)
    return max(1, budget // max(1, int(slice_size[0]) * int(slice_size[1])))


def even_tiles(
    size: Sequence[int], roi_size: Sequence[int], overlap: float, multiple: int = 1
) -> tuple[tuple[int, ...], tuple[float, ...]]:
    """The smallest tiles, as few as ``roi_size`` needs, that cover ``size`` with ``overlap`` of ``roi_size``.

    MONAI steps fixed ``roi_size`` tiles by ``roi * (1 - overlap)`` and pushes the last one back
    inside, so a slice just larger than a multiple of the step gets a nearly redundant tile (a
    64-pixel side in 32-pixel tiles at overlap 0.25: 3 tiles, 96 pixels computed). Here the tile
    count per axis stays ``ceil((n - o) / (roi - o))`` for an overlap of ``o = round(overlap * roi)``
    pixels, and the tiles shrink evenly to ``ceil((n + (count - 1) * o) / count)``: the same
    overlap, the least computed area (64 in 32-pixel tiles: 3 tiles of 27, 81 pixels). Tiles are
    rounded up to a ``multiple`` that the network would pad to anyway (CasNet's ``input_multiple``).

    Returns:
        (tile size, overlap fraction per axis) to pass to ``sliding_window_inference``; an axis one
        tile covers gets the image size and no overlap.

    >>> tiles, fractions = even_tiles((64, 128, 20), (32, 32, 32), 0.25)
    >>> tiles, [round(f, 3) for f in fractions]
    ((27, 32, 20), [0.278, 0.234, 0.0])
    """
    tiles, fractions = [], []
    for n, roi in zip(size, roi_size):
        o = min(round(overlap * roi), roi - 1)
        count = 1 if n <= roi else math.ceil((n - o) / (roi - o))
        tile = n if count == 1 else min(n, -(-math.ceil((n + (count - 1) * o) / count) // multiple) * multiple)
        tiles.append(tile)
        fractions.append((o - 0.5) / tile if count > 1 and o > 0 else 0.0)  # MONAI floors tile * (1 - f) to tile - o
    return tuple(tiles), tuple(fractions)


def core_weight_map(tiles: Sequence[int], fractions: Sequence[float], halo_weight: float = 1e-4) -> torch.Tensor:
    """Blending weights of a tile: 1 in its core, ``halo_weight`` in the half-overlap halo at each side.

    With :func:`even_tiles`' overlap of ``o`` pixels, neighbouring cores meet (or overlap), so every
    output pixel comes from a tile that saw at least ``o // 2`` pixels of context around it: a tile
    edge's padding artefacts, long for a sinc (k-space) base, fall in the halo and are dropped rather
    than blended in, as a Gaussian map would. At the slice's own edges the halo is all there is, and
    the tile's output is taken as it is.

    >>> core_weight_map((6, 4), (2.5 / 6, 0.0))[:, 0].tolist()
    [9.999999747378752e-05, 1.0, 1.0, 1.0, 1.0, 9.999999747378752e-05]
    """
    weights = torch.ones(tuple(tiles))
    for axis, (tile, fraction) in enumerate(zip(tiles, fractions)):
        halo = (tile - int(tile * (1 - fraction))) // 2
        if halo:
            index = torch.arange(tile)
            edge = (index < halo) | (index >= tile - halo)
            weights[(slice(None),) * axis + (edge,)] = halo_weight
    return weights


def sr_shape(
    shape: Sequence[int], slice_axis: int, scale: float, out_size: Sequence[int] | None = None
) -> tuple[int, int, int]:
    """The spatial shape of :func:`super_resolve`'s output for an input of spatial ``shape``: the in-plane axes
    ``round(scale * n)`` (or ``out_size``), the slice axis as it is.

    >>> sr_shape((64, 48, 20), 2, 2), sr_shape((64, 20, 48), 1, 2, (100, 90))
    ((128, 96, 20), (100, 20, 90))
    """
    size = (
        iter(out_size) if out_size is not None else (round(n * scale) for a, n in enumerate(shape) if a != slice_axis)
    )
    return tuple(int(n) if a == slice_axis else int(next(size)) for a, n in enumerate(shape))  # type: ignore[return-value]


def super_resolve(
    volume: torch.Tensor,
    predictor: SliceSR,
    scale: float,
    slice_axis: int | str = "auto",
    in_channels: int = 1,
    roi_size: Sequence[int] | None = None,
    overlap: float = 0.25,
    sw_batch_size: int = 8,
    slice_batch: int | None = None,
    device: str | torch.device | None = "cpu",
    amp: bool = False,
    channels_last: bool | None = None,
    out_size: Sequence[int] | None = None,
    progress: bool = False,
    data_consistency: bool = False,
    band_limit: bool | None = None,
    detail: float = 1.0,
    out: torch.Tensor | None = None,
) -> MetaTensor:
    """Super-resolve every slice of a volume in-plane.

    Args:
        volume: (1, X, Y, Z) volume, ideally a MetaTensor (its affine is updated).
        predictor: maps (B, in_channels, h, w) to (B, 1, H, W); an ``nn.Module`` is put in eval mode.
        scale: in-plane upsampling factor (>= 1).
        slice_axis: spatial axis across which slices are taken, or ``"auto"`` (the thickest axis, else
            2, where DICOM series and most NIfTI files keep slices: see :func:`resolve_slice_axis`);
            the other two axes are upsampled.
        in_channels: 1 for 2D, 2k+1 for 2.5D (k neighbours each side, edges replicated).
        roi_size: largest (h, w) tile for ``sliding_window_inference``; ``None`` runs whole slices.
            Tiles are shrunk evenly to cover the slice with the fewest pixels (:func:`even_tiles`);
            a slice one tile covers runs whole.
        overlap: tile overlap as a fraction of ``roi_size``: each tile keeps its core and drops
            half the overlap at each cut edge (:func:`core_weight_map`).
        sw_batch_size: tiles per forward pass (tiles of all slices in a batch are pooled).
        slice_batch: slices per forward pass; ``None``: :func:`resolve_slice_batch` (8 on a GPU, a
            measured pixel budget on a CPU).
        device: ``"cpu"``, ``"cuda"``, ``"auto"`` or a torch device.
        amp: autocast (float16 on CUDA, bfloat16 on CPU).
        channels_last: run an ``nn.Module`` and its inputs in channels_last memory format; ``None``
            follows the network's measured preference (:func:`prefers_channels_last`). The module's
            weights are given back in their own format afterwards.
        out_size: in-plane output size (H, W); default ``round(scale * (h, w))``.
        progress: report progress on stderr (:func:`mrsr.progress.progress_iter`).
        data_consistency: replace each output slice's measured k-space band by its input slice's
            (:func:`~mrsr.transforms.consistency.kspace_consistency`, on whole slices after tiling), so
            that k-space truncation of the output gives the input back exactly.
        band_limit: along each in-plane axis where the input volume is already band-limited inside
            its grid (:func:`~mrsr.transforms.bandlimit.band_limited_dims`: a zero-filled
            reconstruction or a reformat), keep the output inside the input's band: add nothing
            there. ``None``: as ``data_consistency``.
        detail: the share of what the output holds beyond the input's band (the detail the network
            adds, after data consistency and the guard) that is kept, in [0, 1]: the output is
            ``P y + detail (y - P y)``, with ``P`` the projection onto the input's k-space band
            (:func:`~mrsr.transforms.bandlimit.scale_detail`). 1 keeps it all; 0 keeps nothing beyond the
            band. A network adding wrong detail costs ``detail²`` of its error; one adding right detail
            keeps ``detail (2 - detail)`` of its gain.
        out: a float32 CPU tensor (1, X', Y', Z') of the output's shape (:func:`sr_shape`) to write the output
            into, e.g. one volume of a preallocated batch (:class:`VolumeInferer`); ``None``: a new one.

    Returns:
        (1, X', Y', Z') float32 MetaTensor on the CPU with the upsampled affine; its meta records
        ``"mrsr_data_consistency"``, ``"mrsr_band_limited_axes"`` (the volume axes kept in band) and
        ``"mrsr_detail"``.

    >>> from mrsr.networks.baselines import Bicubic
    >>> v = MetaTensor(torch.rand(1, 8, 6, 3), affine=torch.diag(torch.tensor([2.0, 2.0, 5.0, 1.0])))
    >>> sr = super_resolve(v, Bicubic(scale=2), scale=2)
    >>> tuple(sr.shape), sr.affine.diagonal().tolist()
    ((1, 16, 12, 3), [1.0, 1.0, 5.0, 1.0])
    """
    if volume.ndim != 4 or volume.shape[0] != 1:
        raise MrsrError(f"super_resolve needs a (1, X, Y, Z) volume, got shape {tuple(volume.shape)}.")
    if not (math.isfinite(scale) and scale >= 1):
        raise MrsrError(f"The scale must be a number >= 1, got {scale}.")
    if in_channels < 1 or in_channels % 2 == 0:
        raise MrsrError(f"in_channels must be odd (1 for 2D, 2k+1 for 2.5D), got {in_channels}.")
    axis = resolve_slice_axis(volume, slice_axis)
    dev = resolve_device(device)
    vol = torch.as_tensor(volume[0], dtype=torch.float32).movedim(axis, 0)  # (D, h, w)
    depth, h, w = vol.shape
    detail = check_detail(detail)
    size = tuple(int(v) for v in out_size) if out_size is not None else (round(h * scale), round(w * scale))
    band_limit = data_consistency if band_limit is None else band_limit
    limited = band_limited_dims(vol, (1, 2)) if band_limit else ()  # judged on the whole volume
    shape = sr_shape(volume.shape[1:], axis, scale, out_size)
    if out is None:
        out = torch.empty((1, *shape), dtype=torch.float32)
    elif tuple(out.shape) != (1, *shape) or out.dtype != torch.float32 or out.device.type != "cpu":
        raise MrsrError(f"out must be a float32 CPU tensor of shape {(1, *shape)}, got {out.dtype} {tuple(out.shape)}.")
    slices = out[0].movedim(axis, 0)  # (D, H, W): a view, written batch by batch
    fmt = _memory_format(predictor, channels_last)
    if isinstance(predictor, torch.nn.Module):
        predictor = predictor.to(dev).eval()
    tiles, fractions = ((h, w), (0.0, 0.0))
    if roi_size is not None:
        tiles, fractions = even_tiles((h, w), roi_size, overlap, getattr(predictor, "input_multiple", 1))
    weight_map = core_weight_map(tiles, fractions).to(dev)
    autocast = autocast_context(dev, amp)
    slice_batch = resolve_slice_batch(predictor, (h, w), dev, slice_batch)
    starts = range(0, depth, slice_batch)
    with (
        _in_memory_format(predictor, fmt),
        torch.inference_mode(),
        autocast,
    ):  # weights converted outside inference mode
        for start in progress_iter(starts, "super-resolving", "slice batch", enabled=progress):
            stop = min(start + slice_batch, depth)
            x = stack_neighbours(vol, in_channels // 2, range(start, stop)).to(dev)
            x = x if fmt is None else x.contiguous(memory_format=fmt)
            if tiles == (h, w):
                y = predictor(x)
            else:
                y = sliding_window_inference(
                    x, tiles, sw_batch_size, predictor, overlap=fractions, roi_weight_map=weight_map
                )
            if tuple(y.shape) != (stop - start, 1, *size):
                raise MrsrError(
                    f"The predictor returned shape {tuple(y.shape)} for input {tuple(x.shape)}; expected "
                    f"{(stop - start, 1, *size)}. Check the scale and in_channels match the network."
                )
            if data_consistency:
                centre = in_channels // 2
                y = kspace_consistency(y.float(), x[:, centre : centre + 1].float(), (2, 3))
            if limited:
                y = keep_band(y.float(), [vol.shape[d] for d in limited], [d + 1 for d in limited])
            y = scale_detail(y.float(), [h, w], [2, 3], detail)
            slices[start:stop] = y[:, 0].float().cpu()
    meta = dict(volume.meta) if isinstance(volume, MetaTensor) else {}
    affine = volume.affine if isinstance(volume, MetaTensor) else torch.eye(4, dtype=torch.float64)
    meta["affine"] = upsampled_affine(affine, volume.shape[1:], out.shape[1:])
    meta["spatial_shape"] = np.asarray(out.shape[1:])
    in_plane = [a for a in range(3) if a != axis]
    meta[DATA_CONSISTENCY_KEY] = bool(data_consistency)
    meta[BAND_LIMITED_KEY] = [in_plane[d - 1] for d in limited]
    meta[DETAIL_KEY] = detail
    meta[DESCRIPTION_KEY] = describe(type(predictor).__name__, scale, data_consistency, meta[BAND_LIMITED_KEY], detail)
    return MetaTensor(out, meta=meta)


class VolumeInferer(Inferer):
    """A MONAI inferer that super-resolves whole volumes with :func:`super_resolve`.

    Drop it into your own MONAI code where ``SliceInferer`` or ``sliding_window_inference`` would go:
    unlike those, its output is a MetaTensor on the SR grid (the upsampled affine and
    ``spatial_shape`` of each volume), so ``SaveImage``, ``Invertd`` and world-coordinate overlays
    stay right. It is what ``mrsr infer`` (:func:`mrsr.pipeline.inference_chain`), the bundles, their
    model cards' scores and validation during training run: batched slices, 2.5D neighbours, optional
    tiles, data consistency and test-time adaptation.

    Args:
        settings: how to super-resolve (:class:`~mrsr.settings.InferSettings`: scale, input channels,
            slice axis, tiles, batches, precision, data consistency, detail, adaptation, progress and
            the method named in the provenance line); ``None``: its defaults. Its ``device`` is not
            used: the inferer runs where its inputs are.
        changes: fields of ``settings`` to change, e.g. ``VolumeInferer(scale=4)`` (a bundle config
            gives its settings object, or these).

    Shapes:
        inputs (B, 1, x, y, z) LR volumes (a MetaTensor batch from MONAI's DataLoader, or a plain
        tensor) -> (B, 1, s*x, s*y, z) MetaTensor batch (slice axis 2), on the inputs' device.

    Example::

        inferer = VolumeInferer(InferSettings(scale=2, data_consistency=True))
        sr = inferer(batch["image"], network)  # sr.affine: (B, 4, 4) SR affines
    """

    def __init__(self, settings: InferSettings | None = None, **changes: Any) -> None:
        super().__init__()
        settings = settings or InferSettings()
        self.settings = settings.replace(**changes) if changes else settings
        self.detail = check_detail(1.0 if self.settings.detail is None else self.settings.detail)
        self.adaptations: list[Any] = []  # the last call's AdaptResult per volume (None: not adapted)

    def _predictor(self, vol: torch.Tensor, network: SliceSR) -> tuple[SliceSR, bool, str | None]:
        """The predictor to run on ``vol`` (adapted when asked), whether data consistency applies, and
        the method named in the provenance line (``None``: :func:`super_resolve`'s own)."""
        s = self.settings
        if s.adapt is None:
            self.adaptations.append(None)
            return network, s.data_consistency, s.method
        from mrsr.adapt import adapt

        result = adapt(network, vol, int(s.scale), s.adapt, s.slice_axis, s.in_channels, s.data_consistency,
                       vol.device, s.progress)  # fmt: skip
        self.adaptations.append(result)
        if s.progress:
            say(f"{s.method or 'mrsr'}: {result.summary()}")
        method = None if s.method is None else f"{s.method} ({result.choice})"
        return result.predictor, s.data_consistency and result.data_consistency_applies, method

    def __call__(self, inputs: torch.Tensor, network: SliceSR, *args: Any, **kwargs: Any) -> MetaTensor:
        s = self.settings
        self.adaptations = []
        # the outputs are written into one preallocated batch: stacking them after would hold every output twice
        batch = torch.empty((len(inputs), *self._out_shape(inputs)), dtype=torch.float32)
        outs = []
        for vol, out in zip(inputs, batch):  # a batched MetaTensor gives each volume its own meta
            predictor, consistent, method = self._predictor(vol, network)
            sr = super_resolve(
                vol, predictor, s.scale, slice_axis=s.slice_axis, in_channels=s.in_channels, roi_size=s.roi_size,
                overlap=s.overlap, sw_batch_size=s.sw_batch_size, slice_batch=s.slice_batch, device=inputs.device,
                amp=s.amp, channels_last=s.channels_last, out_size=s.out_size, progress=s.progress,
                data_consistency=consistent, detail=self.detail, out=out,
            )  # fmt: skip
            if method is not None:
                sr.meta[DESCRIPTION_KEY] = describe(method, s.scale, consistent, sr.meta[BAND_LIMITED_KEY], self.detail)
            outs.append(sr)
        return _collated(batch.to(inputs.device), outs)

    def _out_shape(self, inputs: torch.Tensor) -> tuple[int, ...]:
        """(1, X', Y', Z') of every volume's output (a batch's volumes share a shape)."""
        axis = resolve_slice_axis(inputs[0], self.settings.slice_axis)
        return (1, *sr_shape(inputs.shape[2:], axis, self.settings.scale, self.settings.out_size))


def _collated(batch: torch.Tensor, items: Sequence[MetaTensor]) -> MetaTensor:
    """``batch`` (B, ...) as the MetaTensor batch MONAI's ``list_data_collate(items)`` makes, without its stack.

    ``items`` are views of ``batch``'s volumes: their meta and history are collated as MONAI does
    (``monai.data.utils.collate_meta_tensor_fn``), the voxels are not copied again.
    """
    from monai.data.utils import default_collate

    collated = MetaTensor(batch)
    metas = [i.meta or TraceKeys.NONE for i in items]
    common = set.intersection(*[set(m.keys()) for m in metas if isinstance(m, dict)])
    if common:
        metas = [{k: m[k] for k in common} if isinstance(m, dict) else TraceKeys.NONE for m in metas]
    collated.meta = default_collate(metas)
    collated.applied_operations = [i.applied_operations or TraceKeys.NONE for i in items]
    collated.is_batch = True
    collated.spatial_ndim = min(min(i.spatial_ndim for i in items), max(collated.ndim - 1, 1))
    return collated


#: meta keys an SR output carries over to the restored volume (how it was made)
PROVENANCE_KEYS = (DESCRIPTION_KEY, DATA_CONSISTENCY_KEY, BAND_LIMITED_KEY, DETAIL_KEY)


class RestoreVolumed(MapTransform):
    """Put SR outputs back in the input's world and intensity scale.

    The output under each key gets the reference image's meta, the affine of the upsampled grid
    (:func:`mrsr.inference.upsampled_affine`: origin kept, in-plane spacing divided by the factor;
    docs/CONVENTIONS.md) and the intensities :class:`~mrsr.transforms.RobustNormalize` took away.

    Args:
        keys: keys of the SR outputs, each (1, X', Y', Z').
        ref_key: key of the normalised input (1, X, Y, Z) MetaTensor.
    """

    def __init__(self, keys: KeysCollection, ref_key: str = "image", allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.ref_key = ref_key

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict[Hashable, torch.Tensor]:
        d = dict(data)
        ref = d[self.ref_key]
        meta = dict(ref.meta) if isinstance(ref, MetaTensor) else {}
        affine = ref.affine if isinstance(ref, MetaTensor) else torch.eye(4, dtype=torch.float64)
        for key in self.key_iterator(d):
            pred = torch.as_tensor(d[key]).detach().float().cpu()
            provenance = {k: pred.meta[k] for k in PROVENANCE_KEYS if isinstance(pred, MetaTensor) and k in pred.meta}
            out = MetaTensor(pred.as_tensor() if isinstance(pred, MetaTensor) else pred, meta={**meta, **provenance})
            out.affine = upsampled_affine(affine, ref.shape[1:], pred.shape[1:])
            d[key] = RobustNormalize.inverse(out)
        return d


class ProgressLines:
    """An ignite handler of the inference configs: ``mrsr: super-resolving INPUT (i/n)`` on stderr as each
    input's super-resolution starts (flushed: a log file or a pipe gets it at once).

    Args:
        key: the batch key of the input volumes (their meta names the files).
    """

    def __init__(self, key: str = "image") -> None:
        self.key, self.done = key, 0

    def attach(self, engine: Any) -> None:
        from ignite.engine import Events

        engine.add_event_handler(Events.STARTED, self._reset)
        engine.add_event_handler(Events.ITERATION_STARTED, self)

    def _reset(self, engine: Any) -> None:
        self.done = 0

    def __call__(self, engine: Any) -> None:
        batch = engine.state.batch
        image = batch.get(self.key) if isinstance(batch, Mapping) else None
        names = image.meta.get("filename_or_obj", "volume") if isinstance(image, MetaTensor) else "volume"
        names = list(names) if isinstance(names, (list, tuple)) else [names]
        loader = getattr(engine, "data_loader", None)
        try:
            total = len(loader.dataset)  # type: ignore[union-attr]
        except (AttributeError, TypeError):
            total = engine.state.epoch_length
        for name in names:
            self.done += 1
            say(f"mrsr: super-resolving {name} ({self.done}/{total})")
