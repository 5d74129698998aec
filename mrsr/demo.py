"""``mrsr demo``: degrade the bundled real T1 scan, super-resolve it, score it, draw a panel.

The baselines (:data:`mrsr.networks.BASELINES`) and, beside them, a bundle: one named, or the best
one that does no harm on any test image at this scale (:func:`demo_bundle`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import torch

from mrsr.bundle import bundle_detail, load_bundle_network
from mrsr.bundle_table import harm_note, rank_bundles
from mrsr.data import load_volume, sample_path, save_volume
from mrsr.errors import MrsrError
from mrsr.inference import super_resolve
from mrsr.metrics import EvaluationResult, evaluate
from mrsr.networks.baselines import BASELINES, get_baseline
from mrsr.paths import atomic_path, check_output_path, write_text_atomic
from mrsr.progress import say
from mrsr.report import save_panel
from mrsr.transforms import KSpaceTruncate, RobustNormalize

__all__ = ["demo_bundle", "run_demo", "demo_files"]

Log = Callable[[str], None]


def demo_bundle(choice: str, scale: float, log: Log = say) -> str | None:
    """The bundle the demo runs: ``choice`` itself, the best with weights for ``scale`` (``"best"``),
    or none (``"none"``, a fractional scale, or no bundle that does no harm). Notes on the choice go to ``log``.

    Raises:
        MrsrError: a named bundle at a fractional scale.
    """
    if choice == "none":
        return None
    if scale != int(scale):
        if choice != "best":
            raise MrsrError(f"Bundles upsample by an integer factor; got --scale {scale:g}.")
        log(f"note: no bundle works at x{scale:g} (integer factors only): running the baselines")
        return None
    if choice != "best":
        note = harm_note(choice, int(scale))
        if note:
            log(f"note: {note}")
        return choice
    scored, harmful = rank_bundles(int(scale))
    if harmful:
        log(f"note: not considered, as they lose more than 0.1 dB to zerofill on some test image at x{int(scale)}: "
            f"{', '.join(harmful)} (see `mrsr bundles`)")  # fmt: skip
    if not scored:
        log(f"note: no bundle ships x{int(scale)} weights that do no harm on every test image: running the baselines "
            "only (name one to run it anyway, e.g. --bundle wasa)")  # fmt: skip
        return None
    best = max(scored)[1]
    log(f"note: running {best}, the best bundle at x{int(scale)} that does no harm on any test image (see `mrsr "
        "bundles`; --bundle NAME runs another, --bundle none only the baselines)")  # fmt: skip
    return best


def demo_files(methods: list[str]) -> list[str]:
    """The files :func:`run_demo` writes for these methods, in its order.

    >>> demo_files(["zerofill", "bicubic"])
    ['hr.nii.gz', 'lr.nii.gz', 'sr_zerofill.nii.gz', 'sr_bicubic.nii.gz', 'metrics.json', 'panel.png']
    """
    return ["hr.nii.gz", "lr.nii.gz", *(f"sr_{n}.nii.gz" for n in methods), "metrics.json", "panel.png"]


def run_demo(
    output: str | os.PathLike = "mrsr_demo",
    scale: float = 2.0,
    bundle: str = "best",
    device: str = "auto",
    overwrite: bool = False,
    log: Log = say,
) -> dict[str, EvaluationResult]:
    """Degrade the bundled T1 scan in-plane by ``scale``, super-resolve it with the baselines and a
    bundle (:func:`demo_bundle`), score each against the original, and write the folder ``output``
    (atomically, :func:`demo_files`): HR, LR and SR volumes, ``metrics.json`` and ``panel.png`` (the
    best method beside the others).

    Args:
        output: the folder to write.
        scale: the in-plane factor (any value >= 1; bundles run at integer factors only).
        bundle: a bundle name, ``"best"`` or ``"none"``.
        device: ``"cpu"``, ``"cuda"`` or ``"auto"``.
        overwrite: replace an existing ``output``.
        log: where the stage lines go (default: stderr).

    Returns:
        The scores by method, baselines first.
    """
    out = check_output_path(output, overwrite, volume=False)
    name = demo_bundle(bundle, scale, log)
    if name is not None:  # loaded first: a bad bundle fails before any work
        network, in_channels = load_bundle_network(name, int(scale))
        detail = bundle_detail(name, int(scale))
    log(f"[1/4] loading the bundled sample {sample_path().name} (real T1 head MRI, Apache-2.0)")
    hr = RobustNormalize()(load_volume(sample_path()))  # (1, 128, 128, 62)
    log(f"[2/4] degrading in-plane by k-space truncation, factor {scale:g}")
    lr = KSpaceTruncate(scale, axes=(0, 1))(hr)
    exact = (hr.shape[1] / lr.shape[1], hr.shape[2] / lr.shape[2])  # lands on the HR matrix for any factor
    methods = {n: (get_baseline(n, exact), 1) for n in BASELINES}
    if name is not None:
        methods[name] = (network, in_channels)
    results, volumes = {}, {}
    for method, (predictor, channels) in methods.items():
        how = "" if method in BASELINES else f" (data consistency on, keeping {detail:g} of the detail it adds)"
        log(f"[3/4] super-resolving with {method}{how}")
        sr = super_resolve(lr, predictor, scale, slice_axis=2, in_channels=channels, device=device,
                           out_size=hr.shape[1:3], data_consistency=method not in BASELINES,
                           detail=1.0 if method in BASELINES else detail)  # fmt: skip
        volumes[method], results[method] = sr, evaluate(sr, hr, border=int(round(scale)))
    log("[4/4] writing volumes, metrics and the panel")
    _write(out, hr, lr, volumes, results, scale)
    return results


def _write(
    out: Path,
    hr: torch.Tensor,
    lr: torch.Tensor,
    volumes: dict[str, torch.Tensor],
    results: dict[str, EvaluationResult],
    scale: float,
) -> None:
    """The demo's folder, replaced whole: volumes, metrics and the panel of the best method."""
    with atomic_path(out, directory=True) as tmp:
        save_volume(hr, tmp / "hr.nii.gz")
        save_volume(lr, tmp / "lr.nii.gz")
        for method, sr in volumes.items():
            save_volume(sr, tmp / f"sr_{method}.nii.gz")
        best = max(results, key=lambda n: results[n].psnr)
        title = f"{best}, x{scale:g} (PSNR {results[best].psnr:.2f} dB)"
        others = {n: v for n, v in volumes.items() if n != best}
        save_panel(lr, volumes[best], hr, tmp / "panel.png", title=title, baselines=others, sr_name=best,
                   psnr_border=int(round(scale)))  # fmt: skip
        write_text_atomic(tmp / "metrics.json", json.dumps({n: r.as_dict() for n, r in results.items()}, indent=2,
                                                           default=float) + "\n")  # fmt: skip
