"""Self-supervised through-plane SR (``mrsr selfsr``) against interpolation along the thick axis.

    python benchmarks/selfsr.py [--mm 2 4 6] [--profiles box gaussian] [--time 240] [--threads 2]
                                [--json results.json] [--png docs/selfsr_reformat.png]

Input: an isotropic real volume (default: the MNI152 2009 T1 template, 1 mm, from nilearn; ``--volume`` takes
any NIfTI or ``pkg:`` path) as the truth. For each slice thickness and profile it simulates thick axial
slices (:class:`mrsr.transforms.SliceProfileDegrade` along axis 2: box = the slice average, gaussian = FWHM
one slice), then scores against the truth, on the truth's grid: cubic B-spline, Keys cubic, linear and
zerofill (periodic sinc) interpolation along the axis (:func:`mrsr.transforms.thick_interp`), and
:func:`mrsr.selfsr.fit_selfsr` trained for ``--time`` seconds on the thick volume itself, its two
through-plane orientations combined by their average, by Fourier burst accumulation and (box only) the
average made slab consistent. Scores: PSNR over the volume and over the foreground, and SSIM on the
sagittal slices (those that contain the thick axis), as :func:`mrsr.metrics.evaluate`.
Times are wall seconds on this machine with ``--threads`` torch threads.

``--png`` writes a sagittal and a coronal reformat of one case (``--png-case``, default 4 mm box): the
thick input (each slice repeated), cubic B-spline, selfsr and the truth.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from monai.data import MetaTensor

from mrsr.data import load_volume
from mrsr.data.manifest import resolve_path
from mrsr.metrics import evaluate
from mrsr.selfsr import fit_selfsr
from mrsr.settings import SelfSRSettings
from mrsr.transforms import SliceProfileDegrade, thick_interp

MNI = "pkg:nilearn/datasets/data/mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz"
INTERPOLATIONS = {"cubic B-spline": "bspline", "cubic (Keys)": "cubic", "linear": "linear", "zerofill": "zerofill"}


def thick_case(hr: MetaTensor, scale: int, profile: str) -> tuple[MetaTensor, MetaTensor]:
    """The truth cropped to whole slabs along axis 2 and its thick-slice simulation."""
    depth = hr.shape[3] // scale * scale
    truth = hr[..., :depth]
    return truth, SliceProfileDegrade(scale, axis=2, profile=profile)(truth)


def scores(sr: torch.Tensor, truth: torch.Tensor) -> dict[str, float]:
    result = evaluate(sr, truth, slice_axis=0)  # SSIM on sagittal slices: the thick axis is in them
    return {"psnr": result.psnr, "psnr_fg": result.psnr_fg, "ssim": result.ssim}


def run_case(hr: MetaTensor, mm: float, profile: str, args: argparse.Namespace) -> tuple[list[dict], dict]:
    """All methods on one thickness and profile; the rows and the volumes of the reformat panel."""
    scale = int(round(mm / float(np.linalg.norm(np.asarray(hr.affine)[:3, 2]))))
    truth, thick = thick_case(hr, scale, profile)
    t = truth.as_tensor()
    rows, volumes = [], {"input": thick.as_tensor().repeat_interleave(scale, -1), "truth": t}
    for name, mode in INTERPOLATIONS.items():
        start = time.perf_counter()
        sr = thick_interp(thick.as_tensor(), scale, dim=3, mode=mode)
        rows.append({"method": name, "seconds": time.perf_counter() - start, **scores(sr, t)})
        volumes[name] = sr
    start = time.perf_counter()
    settings = SelfSRSettings(
        network=args.network,
        preset=args.preset,
        steps=10**9,
        time_budget=args.time,
        profile=profile,
        seed=args.seed,
        approach=args.approach,
        progress=args.progress,
    )
    model = fit_selfsr(thick, settings)
    fit_seconds = time.perf_counter() - start
    report = model.report
    combos = [("average", False), ("fba", False)] + ([("average", True)] if model.box_profile else [])
    for combine, consistent in combos:
        start = time.perf_counter()
        sr = model.predict(combine, slab_consistency=consistent).as_tensor()
        name = f"selfsr {combine}" + (" + slab consistency" if consistent else "")
        rows.append({"method": name, "seconds": fit_seconds + time.perf_counter() - start, "steps": report.steps,
                     "choice": report.choice, **scores(sr, t)})  # fmt: skip
        volumes.setdefault("selfsr", sr)
    for row in rows:
        row.update(mm=mm, profile=profile, scale=scale)
    return rows, volumes


def table(rows: list[dict]) -> str:
    header = "| slices | profile | method | PSNR (dB) | PSNR fg (dB) | SSIM (sagittal) | seconds | gain over B-spline |"
    lines = [header, "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        base = next(r for r in rows if r["mm"] == row["mm"] and r["profile"] == row["profile"]
                    and r["method"] == "cubic B-spline")  # fmt: skip
        steps = f" ({row['steps']} steps)" if "steps" in row else ""
        lines.append(f"| {row['mm']:g} mm | {row['profile']} | {row['method']}{steps} | {row['psnr']:.2f} | "
                     f"{row['psnr_fg']:.2f} | {row['ssim']:.4f} | {row['seconds']:.1f} | "
                     f"{row['psnr'] - base['psnr']:+.2f} |")  # fmt: skip
    return "\n".join(lines)


def reformat_panel(volumes: dict, path: Path, title: str) -> None:
    """Sagittal (middle x) and coronal (middle y) reformats: input, cubic B-spline, selfsr, truth."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = ["input", "cubic B-spline", "selfsr", "truth"]
    truth = volumes["truth"][0]
    lo, hi = float(truth.min()), float(np.percentile(truth.numpy(), 99.5))
    fig, axes = plt.subplots(2, 4, figsize=(13, 7.5))
    for col, name in enumerate(names):
        vol = volumes[name][0].numpy()
        views = (("sagittal", vol[vol.shape[0] // 2]), ("coronal", vol[:, vol.shape[1] // 2]))
        for row, (view, cut) in enumerate(views):
            ax = axes[row, col]
            ax.imshow(np.rot90(cut), cmap="gray", vmin=lo, vmax=hi, interpolation="nearest")
            ax.set_title(f"{name} ({view})", fontsize=10)
            ax.axis("off")
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--volume", default=MNI, help="isotropic truth volume (a path or pkg: path)")
    parser.add_argument("--mm", type=float, nargs="+", default=[2.0, 4.0, 6.0], help="slice thicknesses")
    parser.add_argument("--profiles", nargs="+", default=["box", "gaussian"], choices=["box", "gaussian"])
    parser.add_argument("--time", type=float, default=240.0, help="selfsr training seconds per case")
    parser.add_argument("--network", default="msrn")
    parser.add_argument("--preset", default="small")
    parser.add_argument("--approach", default="refine", choices=["refine", "upsample"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--json", type=Path, help="write every row here")
    parser.add_argument("--png", type=Path, help="write the reformat panel here")
    parser.add_argument("--png-case", default="4:box", help="THICKNESS:PROFILE of the panel")
    parser.add_argument("--progress", action="store_true", help="selfsr's training progress")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    hr = load_volume(resolve_path(args.volume, None))
    print(f"truth {args.volume}: {tuple(hr.shape[1:])}, {args.threads} threads, selfsr {args.network} "
          f"({args.preset}, {args.approach}) {args.time:g} s per case", flush=True)  # fmt: skip
    rows = []
    for mm in args.mm:
        for profile in args.profiles:
            case_rows, volumes = run_case(hr, mm, profile, args)
            rows += case_rows
            print(table(case_rows), flush=True)
            if args.png and args.png_case == f"{mm:g}:{profile}":
                reformat_panel(volumes, args.png, f"{mm:g} mm {profile}-profile slices of {Path(args.volume).name}")
    print("\n" + table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
