"""The model card (``docs/README.md``) and the data licences (``docs/data_license.txt``) of an mrsr bundle.

Laid out as a MONAI model-zoo card (Model Overview, Data, Preprocessing, Training configuration, Input, Output,
Performance, MONAI Bundle Commands, Limitations, References, License). Every number it shows comes from data:
the scores from the bundle's ``eval_metrics``, the training settings from its recipe (``bundles/recipes/``),
the data from its datalist and the packages from ``required_packages_version``. bundles/make_bundles.py
calls it; it imports nothing from there.
"""

from __future__ import annotations

import json
from pathlib import Path

from mrsr.bundle import DO_NO_HARM_DB, TOO_SMALL
from mrsr.data.manifest import PIP_NAMES

# the bundle whose recipe measured training with data consistency (its note has the numbers)
DATA_CONSISTENCY_MEASURED_ON = "msrn"
SECTIONS = {
    "training": "the weights were fitted to these",
    "validation": "every choice of recipe and checkpoint was made on these",
    "test": "scored for the Performance section only: never trained on, nothing chosen on them",
}
# the recipe settings the card tabulates: TrainConfig field -> what it is
SETTINGS = {
    "preset": "network preset",
    "network_kwargs": "network options",
    "patch_size": "LR patch side (HR: scale x this)",
    "batch_size": "patches per step",
    "samples_per_epoch": "patches per epoch",
    "epochs": "epochs",
    "lr": "learning rate (Adam)",
    "lr_schedule": "learning-rate schedule",
    "warmup": "warm-up steps",
    "grad_clip": "gradient-norm clip",
    "loss": "loss options",
    "balance_volumes": "every training volume drawn equally often",
    "data_consistency": "trained with data consistency",
    "seed": "seed",
}


def _cell(scores: dict, zerofill: float) -> str:
    """A margin over zerofill, with the adaptation's choice and time where there was one."""
    note = f" ({scores['adapt_choice']}, {scores['adapt_seconds']:.0f} s)" if "adapt_choice" in scores else ""
    note = " (too small: default)" if scores.get("adapt_choice") == TOO_SMALL else note
    return f"{scores['psnr'] - zerofill:+.2f}{note}"


def do_no_harm_sentence(name: str, key: str, m: dict) -> str:
    """One plain sentence: does the default output lose more than ``DO_NO_HARM_DB`` to zerofill on some test image?"""
    if m.get("do_no_harm", True):
        return (f"At {key} the default output ({name} with data consistency) is within {DO_NO_HARM_DB} dB of zerofill "
                "or better on every test image.")  # fmt: skip
    worst = m["volumes"][m["worst_image"]]
    adapted = worst.get(f"{name} +dc +adapt")
    tail = f" (with `--adapt`: {adapted['psnr'] - worst['zerofill']['psnr']:+.2f} dB)" if adapted else ""
    return (f"At {key} the default output ({name} with data consistency) is worse than zerofill by "
            f"{-m['worst_margin']:.2f} dB on {m['worst_image']}{tail}: on scans like it, zerofill is the safer "
            "choice.")  # fmt: skip


def _scores(meta: dict, name: str) -> str:
    metrics = meta.get("eval_metrics") or {}
    if not metrics:
        return "No weights have been scored yet: run the evaluate command (MONAI Bundle Commands).\n"
    lines = []
    for key in sorted(metrics, key=lambda k: int(k[1:])):
        m = metrics[key]
        variants = [v for v in (f"{name} +dc", name, f"{name} +dc +adapt")
                    if any(v in s for s in m["volumes"].values())]  # fmt: skip
        titles = {f"{name} +dc": "default (data consistency)", name: "without data consistency",
                  f"{name} +dc +adapt": "`--adapt` (choice, time)"}  # fmt: skip
        lines.append(
            f"**{key}** ({m['data']}; mean PSNR of the default output {m['psnr']:.2f} dB, "
            f"{m['psnr'] - m['psnr_zerofill']:+.2f} dB vs zerofill, "
            f"{m['psnr'] - m['psnr_bicubic']:+.2f} dB vs bicubic; "
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


def package_of(entry: dict) -> str:
    """The package (its pip name) a datalist entry's ``pkg:`` path reads from (``-`` for other paths)."""
    image = entry["image"]
    if not image.startswith("pkg:"):
        return "-"
    package = image[len("pkg:") :].split("/")[0]
    return PIP_NAMES.get(package, package)


def _data_table(datalist: dict) -> str:
    rows = ["| section | image | package | anatomy | contrast | licence |", "|---|---|---|---|---|---|"]
    for section in SECTIONS:
        for e in datalist.get(section, []):
            rows.append(f"| {section} | `{e['name']}` | {package_of(e)} | {e.get('anatomy', '')} | "
                        f"{e.get('contrast', '')} | {e.get('licence', '')} |")  # fmt: skip
    return "\n".join(rows)


def _value(value) -> str:
    return f"`{value if isinstance(value, str) else json.dumps(value)}`"


def _shape(tensor: dict) -> str:
    """A tensor's ``spatial_shape`` as the card writes it: ``* x *``, ``scale*h x scale*w``."""
    return " x ".join(str(size) for size in tensor["spatial_shape"])


def _settings_table(recipe: dict) -> str:
    keys = sorted(recipe["scales"], key=lambda k: int(k[1:]))
    runs = [recipe["scales"][k]["settings"] for k in keys]
    rows = ["| setting | " + " | ".join(keys) + " |", "|---|" + "---|" * len(keys)]
    for field, what in SETTINGS.items():
        rows.append(f"| {what} (`{field}`) | " + " | ".join(_value(run[field]) for run in runs) + " |")
    return "\n".join(rows)


def _limitations(name: str, recipe: dict, datalist: dict) -> str:
    scales = " or ".join(key for key in sorted(recipe["scales"], key=lambda k: int(k[1:])))
    test = datalist.get("test", [])
    packages = sorted({package_of(e) for e in test})
    return f"""\
- Demonstration weights. The training data are what can be had offline inside Python packages
  ({", ".join(f"`{e['name']}`" for e in datalist.get("training", []))}): no knee, no cardiac, no pathology,
  trained on {recipe["machine"]}. Retrain on your own data before drawing any conclusion about the network.
- Trained and tested on one degradation: in-plane k-space truncation (no window, no noise) of
  magnitude images, {scales}. Real low-resolution acquisitions differ (partial Fourier, noise,
  coil combination); through-plane (thick-slice) SR is not what these weights do.
- 2D: slices are super-resolved one by one across `slice_axis`: by default ("auto") the axis with
  the largest voxel spacing (the acquisition's slice direction, wherever `--orientation` puts it),
  or axis 2 when no axis is thickest (isotropic voxels; where DICOM series and most NIfTI files keep
  slices). Pass `--slice_axis 0|1|2` when that guess is wrong.
- The test images are the {len(test)} real MR images of the datalist's test section (Data), from
  {len(packages)} packages ({", ".join(packages)}); the margins in Performance are measured on them, not
  on a clinical test set. No recipe or checkpoint was chosen on them.
- Not for clinical use.
"""


def model_card(name: str, spec: dict, meta: dict, recipe: dict, datalist: dict, manifest: str) -> str:
    """Markdown model card of bundle ``name``.

    Args:
        name: the bundle's name (its folder is ``<name>_mr_sr``).
        spec: its entry of make_bundles.py's ``BUNDLES`` (network class, title, options).
        meta: its ``configs/metadata.json`` (name, description, scores, papers, packages, tensor formats).
        recipe: ``bundles/recipes/<name>.json``.
        datalist: its ``configs/datalist.json``.
        manifest: the repository's datalist the bundle's is a copy of.
    """
    root = f"bundles/{name}_mr_sr"
    scale_keys = sorted(recipe["scales"], key=lambda k: int(k[1:]))
    commands = "\n".join(recipe["scales"][k]["command"] for k in scale_keys)
    why = "".join(f"- {k}: {recipe['scales'][k]['why']}\n" for k in scale_keys if recipe["scales"][k].get("why"))
    note = f"\n{recipe['note']}\n" if recipe.get("note") else ""
    dc = ""
    if name != DATA_CONSISTENCY_MEASURED_ON:  # that card's note has the measurement itself
        dc = f"""
Data consistency is applied at inference, not in training: training with it (`mrsr train --data-consistency`)
was measured with MSRN's x2 recipe on the validation section and did not help (the training notes of the
{DATA_CONSISTENCY_MEASURED_ON}_mr_sr model card have the numbers), so the shipped weights are trained without it.
Weights trained with it must run with data consistency on.
"""
    options = ", ".join(f"`{k}={v!r}`" for k, v in spec["options"].items())
    weights = ", ".join(f"{k} `{recipe['scales'][k]['weights']}`" for k in scale_keys)
    scripted_files = [Path(recipe["scales"][k]["weights"]).with_suffix(".ts").as_posix() for k in scale_keys]
    scripted = ", ".join(f"{k} `{file}`" for k, file in zip(scale_keys, scripted_files))
    details = ", ".join(f"{recipe['scales'][k].get('detail', 1.0):g} at {k}" for k in scale_keys)
    inputs, outputs = meta["network_data_format"]["inputs"]["image"], meta["network_data_format"]["outputs"]["pred"]
    packages = ", ".join(f"{k} {v}" for k, v in meta["required_packages_version"].items())
    references = "\n".join(f"[{i}] {ref}\n" for i, ref in enumerate(meta["references"], 1))
    n_test = len(datalist.get("test", []))
    return f"""# {meta["name"]} ({name}_mr_sr)

## Model Overview

{meta["description"]}

- **Network**: `mrsr.networks.{spec["class"]}` ({spec["title"]}), small preset, with {options} [1].
  What the network is, and every choice made where its paper is silent, is in the class docstring.
- **Weights**: {weights}: plain state_dicts, trained on {recipe["machine"]}. The same weights as TorchScript
  beside them, {scripted} (the scripted `network_def` at that scale, with `metadata.json` and the
  `inference.json` of that scale inside: what MONAI Deploy loads), written by
  `python bundles/make_bundles.py --torchscript` with MONAI's `ckpt_export` (MONAI Bundle Commands).
- **Intended use**: {meta["intended_use"]}
- **Tested with**: MONAI {meta["monai_version"]}, PyTorch {meta["pytorch_version"]}, NumPy {meta["numpy_version"]},
  {packages} (`required_packages_version`).

## Data

Real MR scans that ship inside Python packages, read in place (`pkg:PACKAGE/...` paths, nothing is
downloaded or copied): `configs/datalist.json`, a copy of mrsr's `{manifest}`. Their licences are listed in
`docs/data_license.txt`; the sections:

{"".join(f"- **{section}**: {what}.{chr(10)}" for section, what in SECTIONS.items())}
{_data_table(datalist)}

nilearn, dipy and pydicom-data come with `pip install "mrsr[data]"`; the others are mrsr's own dependencies.

## Preprocessing

- Intensities: {inputs["channel_def"]["0"]}; the output is mapped back to the input's intensities.
- Slices: a volume is super-resolved slice by slice across `slice_axis` (see Limitations); the output
  overlays the input exactly in world coordinates (the affine keeps the origin and divides the in-plane
  spacing by the scale).
- Training and test pairs: each HR volume is normalised the same way and k-space truncated in-plane by the
  scale (no window, no noise; docs/CONVENTIONS.md in the mrsr repository).

## Training configuration

The shipped weights were trained on {recipe["machine"]}, one `mrsr train` run per scale from the repository
root (`bundles/recipes/{name}.json` in the mrsr repository records each run's command and settings). Each run's
best epoch by validation PSNR replaced the earlier weights only where it scored better on the validation section
(`python benchmarks/compare_weights.py --chosen runs/chosen`), was installed with
`python bundles/make_bundles.py --install runs/chosen` and scored by `mrsr benchmark` (`--scores`):

```bash
{commands}
```

{_settings_table(recipe)}

{why}{note}
Loss: the network's own training loss (`mrsr.losses.get_loss`) with the loss options above. The VGG-19 terms
of WASA and MedGAN are off because the ImageNet VGG-19 weights cannot be had offline: pass
`--loss '{{"vgg_weights": "vgg19.pth", ...}}'` to use them.
{dc}
`configs/train.json` trains the **default-size** network with the x2 recipe (MONAI Bundle Commands).

## Input

Channels: {inputs["num_channels"]}, {inputs["channel_def"]["0"]}; {inputs["dtype"]} in
{inputs["value_range"]}; slices of any size ({_shape(inputs)}); scales {", ".join(f"x{s}" for s in inputs["scale"])}.
Files: a NIfTI file, a DICOM file or a DICOM series folder (a folder of NIfTI files runs them all).

## Output

Channels: {outputs["num_channels"]}, {outputs["channel_def"]["0"]}; {outputs["dtype"]}; {_shape(outputs)}.
Files: `<input name>_sr_x<scale>.nii.gz` in `output_dir`, each path printed as it
is written. An input whose output exists is skipped before any work (a folder of inputs goes on with the
others) unless `--overwrite True`.

## Performance

The test section of the datalist: {n_test} real MR images that no training run and no recipe or checkpoint
choice has touched (recipes were chosen on the validation section). Each HR image is normalised, k-space
truncated in-plane by the scale and super-resolved back; PSNR over the whole image with the HR image's data
range and `scale` border pixels cropped; SSIM the mean over slices. Three ways of running the network are
scored: the default (data consistency: the output keeps exactly the input's k-space band, and adds nothing
beyond it along an axis where the input is already band-limited; and the bundle's `detail`, below), without
data consistency (`--data_consistency False`),
and with test-time adaptation (`--adapt`, as `mrsr benchmark` runs it: fine-tuning on the input's own pairs
one scale down, kept only where the input's held-out slices say it beats the network and zerofill, otherwise
the better of those two; the choice and the time, on the machine the speed is given for, are in the cell).
Produced by `mrsr benchmark` and stored with `python bundles/make_bundles.py --scores benchmark/benchmark.csv`
(or scored bundle by bundle with the evaluate command below).

{_scores(meta, name)}
## MONAI Bundle Commands

From the repository root, after `pip install -e .` (or inside the Docker image, where the bundles live in
`/opt/mrsr/bundles`; after `pip install .` they are inside the installed package: `mrsr bundles` shows
the folder):

```bash
# super-resolve a volume (default input: mrsr's T1 sample; outputs in the current folder without --output_dir)
python -m monai.bundle run --config_file {root}/configs/inference.json \\
    --bundle_root {root} --input /data/scan.nii.gz --output_dir /data/sr --scale 2
# the same through mrsr's command
mrsr infer /data/scan.nii.gz -o /data/scan_sr.nii.gz --bundle {name} --scale 2
# score the weights on the datalist's test section against zerofill and bicubic (Performance; metrics_x2.json here)
python -m monai.bundle run --config_file {root}/configs/evaluate.json \\
    --bundle_root {root} --scale 2
# train the default-size network on the bundle's datalist (x2 recipe)
python -m monai.bundle run --config_file {root}/configs/train.json \\
    --bundle_root {root} --scale 2 --output_dir runs/{name}_default_x2
# train on your own data: a datalist whose relative paths start from --dataset_dir
python -m monai.bundle run --config_file {root}/configs/train.json \\
    --bundle_root {root} --datalist /data/ixi.json --dataset_dir /data/IXI-T1 --output_dir runs/{name}_ixi
# the run's parts are the model zoo's: add handlers, validate every 5 epochs (train#dataset and validate#dataset too)
python -m monai.bundle run --config_file {root}/configs/train.json --bundle_root {root} --val_interval 5 \\
    --train#handlers "[{{'_target_': 'StatsHandler', 'iteration_log': False}}]"
# several GPUs (DDP: one process per GPU, each on its LOCAL_RANK device; batch_size is per GPU)
torchrun --standalone --nnodes=1 --nproc_per_node=4 -m monai.bundle run \\
    --config_file "['{root}/configs/train.json','{root}/configs/multi_gpu_train.json']" \\
    --bundle_root {root}
# TorchScript: the bundle ships {" and ".join(scripted_files)}, each giving the eager network's output
# on any slice size; `python bundles/make_bundles.py --torchscript` (mrsr repository) writes them with
# ckpt_export as below. Other weights: their file as --ckpt_file (x4 weights with --scale 4)
python -m monai.bundle ckpt_export network_def --filepath my_model.ts \\
    --ckpt_file {root}/models/model.pt --meta_file {root}/configs/metadata.json \\
    --config_file {root}/configs/inference.json --bundle_root {root}
# ONNX export at one slice size (pip install "mrsr[export]")
python -m monai.bundle onnx_export network_def --filepath {root}/models/model.onnx \\
    --ckpt_file {root}/models/model.pt --meta_file {root}/configs/metadata.json \\
    --config_file {root}/configs/inference.json --bundle_root {root} \\
    --input_shape "[1,1,128,128]" --use_trace False
# check the metadata against MONAI's schema (the repository keeps a copy) and the network's input and output
python -m monai.bundle verify_metadata --meta_file {root}/configs/metadata.json \\
    --filepath tests/data/monai_meta_schema_20240725.json
python -m monai.bundle verify_net_in_out network_def --meta_file {root}/configs/metadata.json \\
    --config_file {root}/configs/inference.json --bundle_root {root} --device cpu --any 24
```

Any config entry can be overridden on the command line (`--scale 4`, `--epochs 30`,
`--network_kwargs#features 32`, `--preset small`). Write a datalist for public data with a script from
`data_manifests/` in the mrsr repository from your own copy (`python data_manifests/ixi.py --ixi-root
/data/IXI-T1 --out ixi.json`, `fastmri_knee.py`, `acdc.py`; fixed, documented splits). Then
`mrsr infer --weights runs/.../model_best.pt` uses the result, or install it into a bundle with
`python bundles/make_bundles.py --install runs`.

Options of `inference.json` worth knowing: `--device cuda`, `--amp True` (float16 on CUDA),
`--roi_size "[128,128]"` (tiles: bounded memory for any slice size; `--overlap 0.25` of the tile,
half of it context that is dropped), `--slice_batch 16` (default: 8 on a GPU, the network's measured pixel
budget on a CPU), `--channels_last True|False` (default: the network's measured preference),
`--slice_axis auto|0|1|2`, `--orientation RAS`, `--output_ext ""` (write a DICOM series), `--traceback True`
(the Python traceback instead of a one-line error on bad input).

Data consistency is on by default (`--data_consistency False` turns it off): the output keeps exactly
the k-space band of the input and takes only what lies outside it from the network; along an in-plane
axis where the input's own spectrum ends inside its band (a zero-filled reconstruction or a reformat), it
adds nothing there either, and the output's description says so (`band-limited axis 1`). `--adapt 300`
(`mrsr infer --adapt`) fine-tunes a copy of the network on the input's own pairs one scale down first,
and uses it only where slices it never trained on say it beats the network and zerofill (otherwise
the better of those two); `--adapt_time 60` caps its time, `--seed` fixes it.

The output keeps a share of the detail the network adds beyond the input's band: {details} (`detail`, set
per scale by `details` in inference.json; `--detail 1` keeps all of it, as does `mrsr infer --detail 1`).
Where a scan holds such detail, that is the gain; where it does not (a scan reconstructed on a finer grid
than it was acquired on), all of it is error, and nothing in the input tells the two apart: keeping a share
`d` costs `d²` of a wrong detail's error and keeps `d (2 - d)` of a right one's gain. The share was chosen
on the validation section by `benchmarks/detail.py` in the mrsr repository: the best worst-image margin
over zerofill, each validation image scored as it is and with its detail ending at 1.1 and 1.4 times the
input's band. docs/CONVENTIONS.md in the mrsr repository explains all three.

## Limitations

{_limitations(name, recipe, datalist)}
## References

{references}
## License

Code and weights: Apache-2.0 (`LICENSE`). The data keep their own licences: `docs/data_license.txt`.
"""


def data_license(name: str, datalist: dict) -> str:
    """``docs/data_license.txt``: every image of the datalist by section, with its package, source and licence."""
    title = f"Third-party data of the {name}_mr_sr bundle and their licences"
    lines = [
        title,
        "=" * len(title),
        "",
        "The weights in models/ were trained on the training section of configs/datalist.json; their",
        "recipe and checkpoint were chosen on its validation section; the test section was used only to",
        "score them (docs/README.md, Performance). Every image is a file inside the Python package named",
        "in its path (pkg:PACKAGE/...), read in place there: none is copied into this bundle. Each keeps",
        "the licence stated below, that of the package it ships in.",
    ]
    for section, what in SECTIONS.items():
        entries = datalist.get(section, [])
        if not entries:
            continue
        heading = f"{section.capitalize()}: {what}"
        lines += ["", "", heading, "-" * len(heading)]
        for e in entries:
            lines += ["", e["name"], f"    file:    {e['image']}", f"    package: {package_of(e)}"]
            lines += [f"    source:  {e.get('source', '')}", f"    licence: {e.get('licence', '')}"]
    return "\n".join(lines) + "\n"
