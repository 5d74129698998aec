"""The model card (docs/README.md) of an mrsr bundle, from make_bundles.py's table and the stored eval_metrics."""

from __future__ import annotations

from make_bundles import MANIFEST, SCALES, train_command

from mrsr.bundle import TOO_SMALL

LIMITATIONS = """\
- Demonstration weights. The training data are what can be had offline inside Python packages: one
  many-subject T1 template (smooth, 1 mm) and a 10-slice diffusion b0 volume. No knee, no cardiac,
  no pathology; a few thousand patches on two CPU cores. Retrain on your own data before drawing
  any conclusion about the network.
- Trained and tested on one degradation: in-plane k-space truncation (no window, no noise) of
  magnitude images, x2 or x4. Real low-resolution acquisitions differ (partial Fourier, noise,
  coil combination); through-plane (thick-slice) SR is not what these weights do.
- 2D: slices are super-resolved one by one across `slice_axis`: by default ("auto") the axis with
  the largest voxel spacing (the acquisition's slice direction, wherever `--orientation` puts it),
  or axis 2 when no axis is thickest (isotropic voxels; where DICOM series and most NIfTI files keep
  slices). Pass `--slice_axis 0|1|2` when that guess is wrong.
- The test images are six real MR images from four packages (shoulder, abdomen, three heads or brains,
  one small T2 field of view), most of them single slices; the margins below are measured on them,
  not on a clinical test set. No recipe or checkpoint was chosen on them.
- Not for clinical use.
"""


def _cell(scores: dict, zerofill: float) -> str:
    """A margin over zerofill, with the adaptation's choice and time where there was one."""
    note = f" ({scores['adapt_choice']}, {scores['adapt_seconds']:.0f} s)" if "adapt_choice" in scores else ""
    note = " (too small: default)" if scores.get("adapt_choice") == TOO_SMALL else note
    return f"{scores['psnr'] - zerofill:+.2f}{note}"


def do_no_harm_sentence(name: str, key: str, m: dict) -> str:
    """One plain sentence: does the default output lose more than 0.1 dB to zerofill on some test image?"""
    if m.get("do_no_harm", True):
        return (f"At {key} the default output ({name} with data consistency) is within 0.1 dB of zerofill or better "
                "on every test image.")
    worst = m["volumes"][m["worst_image"]]
    adapted = worst.get(f"{name} +dc +adapt")
    tail = (f" (with `--adapt`: {adapted['psnr'] - worst['zerofill']['psnr']:+.2f} dB)" if adapted else "")
    return (f"At {key} the default output ({name} with data consistency) is worse than zerofill by "
            f"{-m['worst_margin']:.2f} dB on {m['worst_image']}{tail}: on scans like it, zerofill is the safer "
            "choice.")  # fmt: skip


def _scores(meta: dict, name: str) -> str:
    metrics = meta.get("eval_metrics") or {}
    if not metrics:
        return "No weights have been scored yet: run the evaluate command above.\n"
    lines = []
    for key in sorted(metrics, key=lambda k: int(k[1:])):
        m = metrics[key]
        variants = [v for v in (f"{name} +dc", name, f"{name} +dc +adapt")
                    if any(v in s for s in m["volumes"].values())]  # fmt: skip
        titles = {f"{name} +dc": "default (data consistency)", name: "without data consistency",
                  f"{name} +dc +adapt": "`--adapt` (choice, time)"}  # fmt: skip
        lines.append(
            f"**{key}** ({m['data']}; mean PSNR of the default output {m['psnr']:.2f} dB, "
            f"{m['psnr'] - m['psnr_zerofill']:+.2f} dB vs zerofill, {m['psnr'] - m['psnr_bicubic']:+.2f} dB vs bicubic; "
            f"speed {m.get('speed', 'not measured')})\n"
        )
        lines.append("PSNR margin over zerofill (dB) on each test image:\n")
        lines.append("| image | zerofill PSNR / SSIM | " + " | ".join(titles[v] for v in variants) + " | bicubic |")
        lines.append("|---|---:|" + "---:|" * (len(variants) + 1))
        for vol, s in m["volumes"].items():
            zf = s["zerofill"]
            cells = [_cell(s[v], zf["psnr"]) for v in variants] + [_cell(s["bicubic"], zf["psnr"])]
            lines.append(f"| {vol} | {zf['psnr']:.2f} / {zf['ssim']:.4f} | " + " | ".join(cells) + " |")
        lines.append(f"\n{do_no_harm_sentence(name, key, m)}\n")
    return "\n".join(lines)


def model_card(name: str, spec: dict, meta: dict) -> str:
    """Markdown model card of bundle ``name``."""
    train_cmds = "\n".join(train_command(name, s) for s in SCALES)
    options = ", ".join(f"`{k}={v!r}`" for k, v in spec["options"].items())
    return f"""# {name}_mr_sr: {spec["title"]}

A MONAI bundle of mrsr: in-plane super-resolution of magnitude MR volumes, slice by slice, x2
(`models/model.pt`) or x4 (`models/model_x4.pt`). The output overlays the input exactly in world
coordinates (the affine keeps the origin and divides the in-plane spacing by the scale).

- **Network**: `mrsr.networks.{spec["class"]}`, small preset, with {options}
  ({spec["reference"]}). What the network is, and every choice made where the paper is silent, is
  in the class docstring.
- **Input**: a NIfTI file, a DICOM file or a DICOM series folder (a folder of NIfTI files runs them all);
  intensities normalised by their 0.5th/99.5th percentiles, restored on output.
- **Output**: `<input name>_sr_x<scale>.nii.gz` in `output_dir`, each path printed as it is written. An
  input whose output exists is skipped before any work (a folder of inputs goes on with the others)
  unless `--overwrite True`.

## Use

From the repository root, after `pip install -e .` (or inside the Docker image, where the bundles live in
`/opt/mrsr/bundles`; after `pip install .` they are inside the installed package: `mrsr bundles` shows
the folder):

```bash
# super-resolve a volume (default input: mrsr's T1 sample; outputs in bundles/{name}_mr_sr/eval)
python -m monai.bundle run --config_file bundles/{name}_mr_sr/configs/inference.json \\
    --bundle_root bundles/{name}_mr_sr --input /data/scan.nii.gz --output_dir /data/sr --scale 2
# the same through mrsr's command
mrsr infer /data/scan.nii.gz -o /data/scan_sr.nii.gz --bundle {name} --scale 2
# score the weights on held-out real data against zerofill and bicubic (the numbers below)
python -m monai.bundle run --config_file bundles/{name}_mr_sr/configs/evaluate.json \\
    --bundle_root bundles/{name}_mr_sr --scale 2
# TorchScript export (the exported model gives the eager model's output; x4: model_x4.pt with --scale 4)
python -m monai.bundle ckpt_export network_def --filepath bundles/{name}_mr_sr/models/model.ts \\
    --ckpt_file bundles/{name}_mr_sr/models/model.pt --meta_file bundles/{name}_mr_sr/configs/metadata.json \\
    --config_file bundles/{name}_mr_sr/configs/inference.json --bundle_root bundles/{name}_mr_sr
```

Options of `inference.json` worth knowing: `--device cuda`, `--amp True` (float16 on CUDA),
`--roi_size "[128,128]"` (tiles: bounded memory for any slice size; `--overlap 0.25` of the tile,
half of it context that is dropped), `--slice_batch 16` (default: 8 on a GPU, the network's measured pixel budget on a CPU), `--channels_last True|False` (default: the
network's measured preference), `--slice_axis auto|0|1|2`, `--orientation RAS`, `--output_ext ""`
(write a DICOM series), `--traceback True` (the Python traceback instead of a one-line error on bad input).

Data consistency is on by default (`--data_consistency False` turns it off): the output keeps exactly
the k-space band of the input and takes only what lies outside it from the network. `--adapt 300`
(`mrsr infer --adapt`) fine-tunes a copy of the network on the input's own pairs one scale down first,
and uses it only where slices it never trained on say it beats the network and zerofill (otherwise
the better of those two); `--adapt_time 60` caps its time, `--seed` fixes it. docs/CONVENTIONS.md in
the mrsr repository explains both.

## Measured quality

The test section of `{MANIFEST}`: six real MR images that no training run and no recipe or
checkpoint choice has touched (recipes were chosen on the validation section). Each HR image is
normalised, k-space truncated in-plane by the scale (docs/CONVENTIONS.md) and super-resolved back;
PSNR over the whole image with the HR image's data range and `scale` border pixels cropped; SSIM
the mean over slices. Three ways of running the network are scored: the default (data consistency:
the output keeps exactly the input's k-space band), without it (`--no-data-consistency`), and with
test-time adaptation (`--adapt`: 300 steps of fine-tuning on the input's own x2 pairs, kept only
where the input's held-out slices say it beats the network and zerofill, otherwise the better of
those two; the choice and the time on this project's 2-core CPU are in the cell). Produced by
`mrsr benchmark` and stored with `python bundles/make_bundles.py --scores benchmark/benchmark.csv`
(or scored bundle by bundle with the evaluate command above).

{_scores(meta, name)}
## Training

The shipped weights (small preset) were trained on this project's 2-core CPU machine with:

```bash
{train_cmds}
python bundles/make_bundles.py --install runs --evaluate
```
{(chr(10) + spec["note"] + chr(10)) if spec.get("note") else ""}
Training data ({MANIFEST}, read in place from the installed packages): the nilearn MNI ICBM152
2009 T1 template (licence as nilearn states; a many-subject average) and dipy's `S0_10slices` b0
volume (BSD-3-Clause); validation (every choice of recipe and checkpoint): dipy's `aniso_vox` b0
volume, ITK's T1 head sample (Apache-2.0, ships with mrsr) and nibabel's `anatomical.nii` (MIT); the
test images are listed in `{MANIFEST}` with their sources and licences. Patches: LR 32x32, batch 16,
1600 per epoch, Adam with a cosine schedule, L1 loss (the network's own loss where it has one; the
VGG-19 terms of WASA and MedGAN are off because the ImageNet VGG-19 weights cannot be had offline:
pass `--loss '{{"vgg_weights": "vgg19.pth", ...}}'` to use them). The best epoch by validation PSNR is
shipped.

Data consistency at inference, not in training: `mrsr train --data-consistency` (the network learns
only what lies outside the input's k-space band; pairs are then made by degrading each HR patch itself)
was measured with MSRN's x2 recipe (15 epochs, small preset) on the validation section. Scored with data
consistency, as they run, its margins over zerofill were +0.35, +0.34 and +0.35 dB (aniso_vox, T1 head,
nibabel brain; mean SSIM 0.84) against +0.49, +0.38 and +0.31 dB for the same recipe trained without it
(mean SSIM 0.88): it does not help, so the shipped weights are trained without it. (Weights trained with
it must run with data consistency on: without it they lose 3-5 dB to zerofill.)

`configs/train.json` trains the **default-size** network with the same recipe:

```bash
python -m monai.bundle run --config_file bundles/{name}_mr_sr/configs/train.json \\
    --bundle_root bundles/{name}_mr_sr --scale 2 --output_dir runs/{name}_default_x2
# several GPUs (DDP; batch_size is per GPU)
torchrun --nproc_per_node=4 -m monai.bundle run \\
    --config_file "['bundles/{name}_mr_sr/configs/train.json','bundles/{name}_mr_sr/configs/multi_gpu_train.json']" \\
    --bundle_root bundles/{name}_mr_sr
```

Retrain on public data: write a manifest with a script from `data_manifests/` from your own copy
(`python data_manifests/ixi.py --ixi-root /data/IXI-T1 --out ixi.json`, `fastmri_knee.py`, `acdc.py`; fixed,
documented splits) and pass `--manifest ixi.json --data_root /data/IXI-T1`. Then
`mrsr infer --weights runs/.../model_best.pt` uses the result, or install it into a bundle with
`python bundles/make_bundles.py --install runs`.

## Limitations

{LIMITATIONS}
## Licence

Code and weights: Apache-2.0 (`LICENSE`). The training data keep their own licences (above).
"""
