"""How well a bundle does: held-out pairs, every method scored on them, the model cards' numbers.

:func:`evaluate_bundle` scores a bundle's weights against zerofill and bicubic on a datalist section's
HR volumes (the command behind each model card's numbers; ``configs/evaluate.json`` runs it) and
:func:`store_eval_metrics` writes a report of it (or the same rows from ``mrsr benchmark``) into the
bundle's ``eval_metrics``. :func:`held_out_pairs` and :func:`score_methods` are what both share with
``mrsr benchmark``.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mrsr.bundle.discovery import SUFFIX, find_bundle
from mrsr.bundle.weights import bundle_detail, load_bundle_network
from mrsr.errors import MrsrError
from mrsr.paths import write_text_atomic
from mrsr.progress import say
from mrsr.settings import InferSettings

__all__ = [
    "ADAPT",
    "DC",
    "DO_NO_HARM_DB",
    "TOO_SMALL",
    "evaluate_bundle",
    "held_out_pairs",
    "score_methods",
    "store_eval_metrics",
]

DC, ADAPT = " +dc", " +dc +adapt"  # a network's scored variants: data consistency, and test-time adaptation too
DO_NO_HARM_DB = 0.1  # a bundle's default output may lose at most this much to zerofill on any test image
TOO_SMALL = "too small"  # the adaptation choice of an image --adapt refuses (the default output is scored)


def held_out_pairs(
    manifest: str | os.PathLike, scale: int, section: str = "test", data_root: str | os.PathLike | None = None
) -> Iterator[tuple[str, dict[str, torch.Tensor]]]:
    """``(name, {"image": LR, "label": HR})`` for each volume of a manifest section, as the model cards score them.

    Each HR volume is normalised (:class:`~mrsr.transforms.RobustNormalize`), cropped in-plane to a
    multiple of ``scale`` and k-space truncated in-plane by ``scale`` (docs/CONVENTIONS.md; no window, no noise).

    Raises:
        MrsrError: the section is missing or empty.
    """
    from mrsr.data import LoadVolumed
    from mrsr.data.manifest import load_manifest
    from mrsr.engines.data import VolumePairDataset
    from mrsr.transforms import RobustNormalize

    entries = load_manifest(manifest, data_root, sections=(section,)).get(section) or []
    if not entries:
        raise MrsrError(f"The manifest {manifest} has no {section!r} volumes to evaluate on.")
    for entry in entries:
        hr = RobustNormalize()(LoadVolumed("image")(entry)["image"])  # the entry: a raw file's layout too
        yield entry.get("name") or Path(entry["image"]).name, VolumePairDataset([hr], scale)[0]


def score_methods(
    pair: dict[str, torch.Tensor],
    methods: dict[str, tuple[Any, int]],
    scale: int,
    device: str | torch.device = "cpu",
    adapt_steps: int = 0,
    amp: bool = False,
    details: dict[str, float] | None = None,
) -> Iterator[tuple[str, dict[str, Any], torch.Tensor]]:
    """Score every method on one held-out ``{"image": LR, "label": HR}`` pair.

    Baselines are scored as they are; each network as it is (``NAME``), with data consistency
    (``NAME +dc``: the default of ``mrsr infer`` and the bundles) and, when ``adapt_steps``, after
    test-time adaptation with data consistency (``NAME +dc +adapt``; the row carries the adaptation's
    choice and seconds; an image too small to adapt on is scored with the default output, choice
    ``"too small"``). ``details``: each network's ``detail`` (:func:`mrsr.bundle.bundle_detail`), applied
    to those two rows as ``mrsr infer`` applies it; 1 for a network not named.

    Yields:
        ``(label, scores, sr)``: scores are :meth:`mrsr.metrics.EvaluationResult.as_dict` plus
        ``seconds`` (and ``psnr_amp`` for a plain network when ``amp``).
    """
    from mrsr.adapt import TooSmallToAdapt
    from mrsr.networks.baselines import is_trained_network
    from mrsr.settings import AdaptSettings

    for method, (predictor, channels) in methods.items():
        network = is_trained_network(predictor)
        base = InferSettings(scale=scale, in_channels=channels, slice_axis=2, data_consistency=False)
        scores, sr = _score(pair, predictor, base, device)
        if network and amp:  # what mixed precision costs
            scores["psnr_amp"] = _score(pair, predictor, base.replace(amp=True), device)[0]["psnr"]
        yield method, scores, sr
        if not network:
            continue
        default = base.replace(data_consistency=True, detail=(details or {}).get(method, 1.0))
        default_scores, default_sr = _score(pair, predictor, default, device)
        yield method + DC, default_scores, default_sr
        if adapt_steps:
            try:
                scores, sr = _score(pair, predictor, default.replace(adapt=AdaptSettings(steps=adapt_steps)), device)
            except TooSmallToAdapt:  # `--adapt` refuses it: the user gets the default output
                yield method + ADAPT, {**default_scores, "adapt_choice": TOO_SMALL, "adapt_seconds": 0.0}, default_sr
                continue
            yield method + ADAPT, scores, sr


def _score(
    pair: dict[str, torch.Tensor], predictor: Any, settings: InferSettings, device: str | torch.device
) -> tuple[dict[str, Any], torch.Tensor]:
    """Scores and SR volume of ``predictor`` on ``pair``, made as ``mrsr infer`` and the bundles make it.

    The LR volume goes through the inference chain less its file reading and writing
    (:func:`mrsr.pipeline.inference_chain`): normalised by its own intensities, super-resolved by
    :class:`~mrsr.inference.VolumeInferer` as a batch of one, restored to its intensities. So a score
    equals ``mrsr infer`` then ``mrsr evaluate`` on the LR and HR volumes saved as files. An
    adaptation's choice and seconds join the scores (``seconds`` stays the SR's own).
    """
    from monai.data import decollate_batch, list_data_collate

    from mrsr.inference import RestoreVolumed, VolumeInferer
    from mrsr.metrics import evaluate
    from mrsr.runtime import resolve_device
    from mrsr.transforms import RobustNormalized

    start = time.perf_counter()
    inferer = VolumeInferer(settings)
    d = RobustNormalized("image")({"image": pair["image"]})
    batch = list_data_collate([d["image"]]).to(resolve_device(device))  # as the bundles' DataLoader gives it
    d["pred"] = decollate_batch(inferer(batch, predictor))[0].cpu()
    sr = RestoreVolumed("pred", ref_key="image")(d)["pred"]
    scores = {**evaluate(sr, pair["label"], border=int(settings.scale)).as_dict(),
              "seconds": time.perf_counter() - start}  # fmt: skip
    adaptation = inferer.adaptations[0]
    if adaptation is not None:  # the row's time is the SR's, as without adaptation; the adaptation's beside it
        scores.update(seconds=scores["seconds"] - adaptation.seconds, adapt_choice=adaptation.choice,
                      adapt_seconds=adaptation.seconds)  # fmt: skip
    return scores, sr


def evaluate_bundle(
    bundle: str | os.PathLike,
    manifest: str | os.PathLike,
    scale: int = 2,
    section: str = "test",
    data_root: str | os.PathLike | None = None,
    device: str = "auto",
    output: str | os.PathLike | None = None,
    update_metadata: bool = False,
    adapt_steps: int = 0,
) -> dict[str, Any]:
    """Score a bundle's weights against zerofill and bicubic on a manifest section's HR volumes, per image.

    Each HR volume, degraded as :func:`held_out_pairs` says, is super-resolved slice by slice by the
    network (as it is, with data consistency, and after ``adapt_steps`` of test-time adaptation when
    given: :func:`score_methods`) and by both baselines; :func:`mrsr.metrics.evaluate` scores each
    against the HR volume (whole volume and foreground mask, ``scale`` border pixels cropped, the HR
    volume's data range).

    Args:
        bundle: bundle name or folder.
        manifest: a datalist JSON (``data_manifests/real_data.json`` for the model cards).
        scale: SR factor; the bundle must ship weights for it.
        section: manifest section of held-out volumes.
        data_root: folder the manifest's relative paths start from.
        device: where the network runs.
        output: optional JSON file for the results.
        update_metadata: write the per-image scores into the bundle's ``eval_metrics``.
        adapt_steps: test-time adaptation steps of the ``+dc +adapt`` variant (0: not scored).

    Returns:
        ``{"scale", "section", "volumes": {name: {method: scores}}, "mean": {method: scores}}``.
    """
    from mrsr.networks.baselines import Bicubic, ZeroFill
    from mrsr.runtime import resolve_device

    path = find_bundle(bundle)
    network, in_channels = load_bundle_network(path, scale)
    details = {path.name[: -len(SUFFIX)]: bundle_detail(path, scale)}
    methods = {
        path.name[: -len(SUFFIX)]: (network, in_channels),
        "zerofill": (ZeroFill(scale=scale), 1),
        "bicubic": (Bicubic(scale=scale), 1),
    }
    volumes: dict[str, dict[str, dict]] = {}
    for name, pair in held_out_pairs(manifest, scale, section, data_root):
        voxels = int(pair["label"].numel())
        volumes[name] = {
            label: {**scores, "voxels": voxels}
            for label, scores, _ in score_methods(pair, methods, scale, device, adapt_steps, details=details)
        }
        say(f"{name} (x{scale}): " + ", ".join(f"{m} {v['psnr']:.2f} dB" for m, v in volumes[name].items()))
    labels = list(next(iter(volumes.values())))
    mean = {m: {k: float(np.mean([v[m][k] for v in volumes.values()])) for k in ("psnr", "ssim")} for m in labels}
    report = {
        "bundle": path.name,
        "scale": scale,
        "section": section,
        "manifest": str(manifest),
        "device": str(resolve_device(device)),
        "volumes": volumes,
        "mean": mean,
    }
    if output is not None:
        out = Path(output)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2, default=float) + "\n")
    if update_metadata:
        store_eval_metrics(path, report)
    return report


def store_eval_metrics(bundle: str | os.PathLike, report: dict[str, Any]) -> dict[str, Any]:
    """Write a report of :func:`evaluate_bundle` (or the same rows from ``mrsr benchmark``) into ``eval_metrics``.

    The report needs ``manifest``, ``section``, ``scale`` and ``volumes`` (``{image: {method: scores}}``),
    and either ``speed`` (text) or ``device`` and each network score's ``voxels`` and ``seconds``.

    ``psnr``/``ssim`` are the means of the default output (data consistency on); ``worst_margin`` is
    its smallest margin over zerofill on any image, and ``do_no_harm`` whether that stays above
    ``-DO_NO_HARM_DB``.

    Returns:
        The stored ``eval_metrics["x<scale>"]``.
    """
    path = find_bundle(bundle)
    meta_file = path / "configs" / "metadata.json"
    meta = json.loads(meta_file.read_text())
    net = path.name[: -len(SUFFIX)]
    keep = ("psnr", "ssim", "psnr_fg", "adapt_choice", "adapt_seconds")
    volumes = report["volumes"]
    scores = {
        name: {m: {k: (round(v, 4 if k == "ssim" else 3) if isinstance(v, float) else v) for k, v in s.items()
                   if k in keep} for m, s in methods.items()}
        for name, methods in volumes.items()
    }  # fmt: skip
    default = net + DC
    margins = {name: methods[default]["psnr"] - methods["zerofill"]["psnr"] for name, methods in volumes.items()}
    mean = {m: float(np.mean([v[m]["psnr"] for v in volumes.values()])) for m in (default, net, "zerofill", "bicubic")}
    speed = report.get("speed")
    if speed is None:  # on the largest volume (the first one also pays for warm-up)
        largest = max(volumes.values(), key=lambda v: v[net]["voxels"])[net]
        speed = f"{largest['voxels'] / largest['seconds'] / 1e6:.2f} output Mvoxel/s on {report['device']}"
    entry = {
        "data": f"{Path(report['manifest']).name} [{report['section']}]",
        "psnr": round(mean[default], 3),
        "ssim": round(float(np.mean([v[default]["ssim"] for v in volumes.values()])), 4),
        "psnr_without_data_consistency": round(mean[net], 3),
        "psnr_zerofill": round(mean["zerofill"], 3),
        "psnr_bicubic": round(mean["bicubic"], 3),
        "worst_margin": round(min(margins.values()), 3),
        "worst_image": min(margins, key=margins.get),
        "do_no_harm": bool(min(margins.values()) >= -DO_NO_HARM_DB),
        "volumes": scores,
        "speed": speed,
    }
    meta.setdefault("eval_metrics", {})[f"x{report['scale']}"] = entry
    write_text_atomic(meta_file, json.dumps(meta, indent=4) + "\n")
    return entry
