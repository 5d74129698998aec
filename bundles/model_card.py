"""The model card (docs/README.md) of an mrsr bundle, from make_bundles.py's table and the stored eval_metrics."""

from __future__ import annotations

from make_bundles import MANIFEST, SCALES, train_command

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
- Held-out test data are two small brain volumes; the margins below are measured on them, not on a
  clinical test set.
- Not for clinical use.
"""


def _scores(meta: dict, name: str) -> str:
    metrics = meta.get("eval_metrics") or {}
    if not metrics:
        return "No weights have been scored yet: run the evaluate command above.\n"
    lines = []
    for key in sorted(metrics, key=lambda k: int(k[1:])):
        m = metrics[key]
        lines.append(
            f"**{key}** ({m['data']}; mean over volumes: {m['psnr']:.2f} dB, "
            f"{m['psnr'] - m['psnr_zerofill']:+.2f} dB vs zerofill, {m['psnr'] - m['psnr_bicubic']:+.2f} dB vs bicubic; "
            f"speed {m.get('speed', 'not measured')})\n"
        )
        lines.append(
            f"| volume | {name} PSNR / SSIM | zerofill | bicubic | margin vs zerofill | margin vs bicubic "
            "| foreground PSNR: {name}, zerofill, bicubic |".replace("{name}", name)
        )
        lines.append("|---|---|---|---|---|---|---|")
        for vol, s in m["volumes"].items():
            net, zf, bic = s[name], s["zerofill"], s["bicubic"]
            lines.append(
                f"| {vol} | {net['psnr']:.2f} dB / {net['ssim']:.4f} | {zf['psnr']:.2f} / {zf['ssim']:.4f} | "
                f"{bic['psnr']:.2f} / {bic['ssim']:.4f} | {net['psnr'] - zf['psnr']:+.2f} dB | "
                f"{net['psnr'] - bic['psnr']:+.2f} dB | {net['psnr_fg']:.2f}, {zf['psnr_fg']:.2f}, {bic['psnr_fg']:.2f} |"
            )
        misses = [f"{b} on {vol} ({s[name]['psnr'] - s[b]['psnr']:+.2f} dB)" for vol, s in m["volumes"].items()
                  for b in ("zerofill", "bicubic") if s[name]["psnr"] <= s[b]["psnr"]]  # fmt: skip
        verdict = "beat both baselines on every held-out volume." if not misses else (
            "do **not** beat " + "; ".join(misses) + ".")  # fmt: skip
        lines.append(f"\nAt {key} these weights {verdict}\n")
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
- **Output**: `<input name>_sr_x<scale>.nii.gz` in `output_dir`; an existing output is kept unless
  `--overwrite True`.

## Use

From the repository root, after `pip install -e .` (or inside the Docker image, where the bundles live in
`/opt/mrsr/bundles`):

```bash
# super-resolve a volume (default input: mrsr's T1 sample; outputs in bundles/{name}_mr_sr/eval)
python -m monai.bundle run --config_file bundles/{name}_mr_sr/configs/inference.json \\
    --bundle_root bundles/{name}_mr_sr --input /data/scan.nii.gz --output_dir /data/sr --scale 2
# the same through mrsr's command
mrsr infer /data/scan.nii.gz -o /data/scan_sr.nii.gz --bundle {name} --scale 2
# score the weights on held-out real data against zerofill and bicubic (the numbers below)
python -m monai.bundle run --config_file bundles/{name}_mr_sr/configs/evaluate.json \\
    --bundle_root bundles/{name}_mr_sr --scale 2
# TorchScript export (the exported model gives the eager model's output)
python -m monai.bundle ckpt_export network_def --filepath bundles/{name}_mr_sr/models/model.ts \\
    --ckpt_file bundles/{name}_mr_sr/models/model.pt --meta_file bundles/{name}_mr_sr/configs/metadata.json \\
    --config_file bundles/{name}_mr_sr/configs/inference.json --bundle_root bundles/{name}_mr_sr
```

Options of `inference.json` worth knowing: `--device cuda`, `--amp True` (float16 on CUDA),
`--roi_size "[128,128]"` (tiles: bounded memory for any slice size; `--overlap 0.25` of the tile,
half of it context that is dropped), `--slice_batch 16` (default: 8 on a GPU, the network's measured pixel budget on a CPU), `--channels_last True|False` (default: the
network's measured preference), `--slice_axis auto|0|1|2`, `--orientation RAS`, `--output_ext ""`
(write a DICOM series), `--traceback True` (the Python traceback instead of a one-line error on bad input).

## Measured quality

Held-out test volumes of `{MANIFEST}` (never seen in training or validation): each HR volume is
normalised, k-space truncated in-plane by the scale (DATA.md's convention) and super-resolved back;
PSNR over the whole volume with the HR volume's data range and `scale` border pixels cropped (the
last column: over the foreground mask only, HR above 10% of its range); SSIM the mean over slices. Produced by the evaluate command above (all bundles at once:
`python bundles/make_bundles.py --evaluate`).

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
volume (BSD-3-Clause); validation: dipy's `aniso_vox` b0 volume; test: ITK's T1 head sample
(Apache-2.0, ships with mrsr) and nibabel's `anatomical.nii` (MIT). Patches: LR 32x32, batch 16,
1600 per epoch, Adam with a cosine schedule, L1 loss (the network's own loss where it has one; the
VGG-19 terms of WASA and MedGAN are off because the ImageNet VGG-19 weights cannot be had offline:
pass `--loss '{{"vgg_weights": "vgg19.pth", ...}}'` to use them). The best epoch by validation PSNR is
shipped.

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
