"""Write mrsr's MONAI bundles from one table; install trained weights; score them; write the model cards.

    python bundles/make_bundles.py                      # configs, LICENSE, model cards (keeps eval_metrics)
    python bundles/make_bundles.py --install runs       # + runs/<network>_x<s>/model_best.pt -> models/
    python bundles/make_bundles.py --evaluate           # + score every shipped weights file (x2, x4) on
                                                        #   data_manifests/real_data.json [test], store the
                                                        #   numbers in metadata.json and the model cards
    python bundles/make_bundles.py --scores benchmark/benchmark.csv
                                                        # the same numbers from an `mrsr benchmark` run
                                                        #   (with test-time adaptation at x2)

The weights themselves come from the ``mrsr train`` commands in ``RECIPES`` (printed in each model card).
Edit this file, not the generated JSON: ``tests/test_bundles.py`` checks they agree.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SCHEMA = "https://github.com/Project-MONAI/MONAI-extra-test-data/releases/download/0.8.1/meta_schema_20240725.json"
VERSION = "0.1.0"
SCALES = (2, 4)
MANIFEST = "data_manifests/real_data.json"
BASELINES = ("zerofill", "bicubic")
EPOCHS_X4 = 8  # the x4 weights get a shorter run (CPU time), otherwise the x2 recipe

# bundle name -> network (registry name, class), paper, what the bundle sets beyond the small preset,
# and the training recipe of the shipped weights (mrsr train options besides --network/--scale: "train" as
# option-value pairs, "train_flags" as bare flags)
BUNDLES = {
    "durn": {
        "network": "durn",
        "class": "DURN",
        "title": "DURN, dual U-Net residual network",
        "reference": "Dual U-Net residual networks for cardiac magnetic resonance images super-resolution "
        "(see mrsr/networks/durn.py for what is built from it)",
        "options": {"global_residual": "sinc_reflect", "zero_init_residual": True},
        "train": ["--lr", "2e-3", "--epochs", "15"],
        "epochs_x4": 2,  # DURN-S is the slowest small network on a CPU (about 15 samples/s)
    },
    "wasa": {
        "network": "wasa",
        "class": "WASA",
        "title": "WASA, CNN + Haar wavelet + attention SR network",
        "reference": "Residual wavelet attention network for medical image SR (Liu et al., Neurocomputing 2021) "
        "and self-attention (Zhang et al., ICML 2019), as reproduced in a public blog post (see mrsr/networks/wasa.py)",
        "options": {"interp_mode": "sinc_reflect"},
        "train": ["--lr", "2e-3", "--epochs", "15"],
    },
    "iconet": {
        "network": "iconet",
        "class": "ICONet",
        "title": "ICONet, iterative collaboration network guided by a reconstruction prior",
        "reference": "Kui, Ji, Zou, Li, Dai, Chen, Vera, Ruan, Iterative Collaboration Network Guided by "
        "Reconstruction Prior for Medical Image Super-Resolution, IEEE TCI 2025, arXiv:2504.16958",
        "options": {"interp_mode": "sinc_reflect", "zero_init_residual": True},
        "train": ["--lr", "2e-3", "--warmup", "100", "--grad-clip", "1.0", "--epochs", "15"],
        "train_flags": ["--balance-volumes"],
        "epochs_x4": 4,  # two x2 stages on 128x128 HR patches: the slowest at x4 on a CPU (about 9 min an epoch)
        "note": "The paper's L1 multi-stage loss. Three choices the paper does not state, each made on validation "
        "PSNR: a linear learning-rate warm-up over the first 100 steps with the gradient norm clipped to 1, both "
        "training volumes drawn equally often (--balance-volumes), and the run length. Without warm-up and "
        "clipping, Adam's first steps at lr 2e-3 threw the zero-initialised network far off (an MSE run's "
        "loss went from 0.0025 to 0.056 at step 2) and validation never got more than 0.05 dB past zerofill "
        "(31.207 dB): L1 fell after epoch 1 (e.g. 31.236 to 31.173 dB by epoch 5), an MSE stage loss reached "
        "31.252, and lr 5e-4 was at 31.24 after 2 epochs (balanced volumes were chosen then: MSE pooled reached "
        "31.230). With warm-up and clipping (balanced volumes, 10 epochs) MSE reached 31.914 dB and L1 31.935 "
        "(L1 with the warm-up alone: 31.855, with clipping alone: 31.810); 15 epochs of L1 reached 32.050 dB, "
        "the shipped x2 weights. The x4 weights: the same recipe, 4 epochs (validation 27.152 dB against "
        "zerofill's 26.871; the earlier x4 weights, L1 at lr 5e-4 without warm-up and with the old stage "
        "targets, scored 26.908).",
    },
    "msrn": {
        "network": "msrn",
        "class": "MSRN",
        "title": "MSRN, multi-scale residual network",
        "reference": "Li, Fang, Mei, Zhang, Multi-scale Residual Network for Image Super-Resolution, ECCV 2018",
        "options": {"global_residual": "sinc_reflect"},
        "train": ["--lr", "2e-3", "--epochs", "15"],
    },
    "medgan": {
        "network": "casnet",
        "class": "CasNet",
        "title": "MedGAN's CasNet generator, trained with its conditional GAN",
        "reference": "Armanious et al., MedGAN: Medical image translation using GANs, Computerized Medical "
        "Imaging and Graphics 79, 2020, arXiv:1806.06397",
        "options": {"interp_mode": "sinc_reflect", "global_residual": True},
        "train": [
            "--loss",
            json.dumps({"style_weight": 0, "content_weight": 0, "adversarial_weight": 0.01, "perceptual_weight": 1}),
            "--lr",
            "2e-3",
            "--epochs",
            "15",
        ],
    },
}


# every config ends a run that fails on bad input with one line (mrsr.bundle.one_line_errors); --traceback True
# on the command line shows the traceback
ONE_LINE_ERRORS = {"traceback": False, "initialize": ["$mrsr.bundle.one_line_errors(@traceback)"]}
# the same for commands that build only network_def and run no initialize step (ckpt_export, onnx_export): it
# is what names the --scale of weights that do not fit the network
NETWORK_REQUIRES = "$mrsr.bundle.one_line_errors(@traceback)"


def network_def(spec: dict, preset: str = "small") -> dict:
    """The ``network_def`` of a bundle: the class, the preset's sizes and the bundle's options."""
    sys.path.insert(0, str(REPO))
    from mrsr.networks import presets

    return {
        "_target_": f"mrsr.networks.{spec['class']}",
        "_requires_": NETWORK_REQUIRES,
        "spatial_dims": 2,
        "in_channels": 1,
        "out_channels": 1,
        "scale": "@scale",
        **presets(spec["network"])[preset],
        **spec["options"],
    }


def train_command(name: str, scale: int) -> str:
    """The ``mrsr train`` command that made the shipped weights of bundle ``name`` at ``scale``."""
    spec = BUNDLES[name]
    args = [
        "mrsr train",
        f"--network {spec['network']}",
        f"--manifest {MANIFEST}",
        f"--scale {scale}",
        "--preset small",
        f"--network-kwargs '{json.dumps(spec['options'])}'",
    ]
    rest = spec["train"]
    for flag, value in zip(rest[::2], rest[1::2]):
        if flag == "--epochs" and scale != 2:
            value = str(spec.get("epochs_x4", EPOCHS_X4))
        args.append(f"{flag} '{value}'" if value.startswith("{") else f"{flag} {value}")
    args.extend(spec.get("train_flags", ()))
    args.append(f"--out runs/{spec['network']}_x{scale}")
    return " ".join(args)


def metadata(name: str, old: dict) -> dict:
    import monai
    import numpy
    import torch

    spec = BUNDLES[name]
    tensor = {
        "type": "image",
        "format": "magnitude",
        "modality": "MR",
        "num_channels": 1,
        "dtype": "float32",
        "value_range": [0, 1],
        "is_patch_data": False,
    }
    return {
        "schema": SCHEMA,
        "version": VERSION,
        "changelog": {VERSION: "first release: small preset trained on mrsr's real-data manifest, x2 and x4"},
        "monai_version": monai.__version__.split("+")[0],
        "pytorch_version": torch.__version__.split("+")[0],
        "numpy_version": numpy.__version__,
        "required_packages_version": {"mrsr": VERSION, "nibabel": "5.0", "pydicom": "2.4", "pytorch-ignite": "0.4.11"},
        "task": "In-plane super-resolution of magnitude MR slices (x2 and x4)",
        "description": f"{spec['title']} ({spec['class']}, small preset) for 2D in-plane MR super-resolution, trained "
        f"on real brain MR scans that ship in Python packages ({MANIFEST}) with low-resolution inputs made by "
        "k-space truncation. Demonstration weights: retrain on your own data (docs/README.md).",
        "authors": "mrsr developers",
        "copyright": "Copyright (c) mrsr developers",
        "data_source": f"{MANIFEST}: nilearn MNI152 T1 template and dipy b0 volumes (training), dipy aniso_vox "
        "(validation), ITK's T1 head sample and nibabel's anatomical.nii (held-out test)",
        "data_type": "nifti",
        "intended_use": "Research and demonstration only, not for clinical use. Super-resolves magnitude MR volumes "
        "in-plane, slice by slice, by the bundle's scale; the output overlays the input in world coordinates.",
        "references": [spec["reference"]],
        "eval_metrics": old.get("eval_metrics", {}),
        "network_data_format": {
            "inputs": {
                "image": {
                    **tensor,
                    "spatial_shape": ["*", "*"],
                    "channel_def": {"0": "one LR slice, normalised: 0.5th/99.5th intensity percentiles -> 0/1"},
                    "scale": list(SCALES),
                }
            },
            "outputs": {
                "pred": {
                    **tensor,
                    "spatial_shape": ["scale*h", "scale*w"],
                    "channel_def": {"0": "the SR slice, same intensity scale as the input"},
                }
            },
        },
    }


def inference_config(name: str) -> dict:
    return {
        "imports": ["$import torch", "$import mrsr", "$import mrsr.bundle", "$import mrsr.data"],
        "bundle_root": ".",
        "scale": 2,
        "ckpt_path": "$mrsr.bundle.shipped_weights(@bundle_root, @scale)",
        "input": "$str(mrsr.data.sample_path())",
        "output_dir": "$@bundle_root + '/eval'",
        "output_postfix": "$'sr_x%d' % @scale",
        "output_ext": ".nii.gz",
        "overwrite": False,
        "orientation": None,
        "slice_axis": "auto",
        "roi_size": None,
        "overlap": 0.25,
        "slice_batch": None,
        "amp": False,
        "channels_last": None,
        "data_consistency": True,
        "adapt": None,
        "adapt_time": None,
        "seed": 0,
        "device": "$torch.device('cuda:0' if torch.cuda.is_available() else 'cpu')",
        "network_def": network_def(BUNDLES[name]),
        "network": "$@network_def.to(@device)",
        "preprocessing": {
            "_target_": "Compose",
            "transforms": [
                {"_target_": "mrsr.data.LoadVolumed", "keys": "image", "orientation": "@orientation"},
                {"_target_": "mrsr.transforms.RobustNormalized", "keys": "image"},
            ],
        },
        # inputs whose output exists are left out (one line each) before any work, unless --overwrite
        "dataset": {
            "_target_": "Dataset",
            "data": "$mrsr.data.as_datalist(@input, output_dir=@output_dir, output_postfix=@output_postfix, "
            "output_ext=@output_ext, overwrite=@overwrite)",
            "transform": "@preprocessing",
        },
        "dataloader": {
            "_target_": "DataLoader",
            "dataset": "@dataset",
            "batch_size": 1,
            "shuffle": False,
            "num_workers": 0,
        },
        "inferer": {
            "_target_": "mrsr.inference.VolumeInferer",
            "scale": "@scale",
            "in_channels": "@network_def#in_channels",
            "slice_axis": "@slice_axis",
            "roi_size": "@roi_size",
            "overlap": "@overlap",
            "slice_batch": "@slice_batch",
            "amp": "@amp",
            "channels_last": "@channels_last",
            "data_consistency": "@data_consistency",
            "adapt": "@adapt",
            "adapt_time": "@adapt_time",
            "seed": "@seed",
            "progress": True,  # a bar on a terminal, a line every 10 s in a log
        },
        "postprocessing": {
            "_target_": "Compose",
            "transforms": [
                {"_target_": "mrsr.inference.RestoreVolumed", "keys": "pred", "ref_key": "image"},
                {
                    "_target_": "mrsr.data.SaveVolumed",
                    "keys": "pred",
                    "ref_key": "image",
                    "output_dir": "@output_dir",
                    "output_postfix": "@output_postfix",
                    "output_ext": "@output_ext",
                    "overwrite": "@overwrite",
                },
            ],
        },
        "handlers": [
            {
                "_target_": "CheckpointLoader",
                "load_path": "@ckpt_path",
                "load_dict": {"model": "@network"},
                "map_location": "@device",
            },
            {"_target_": "mrsr.inference.ProgressLines"},  # "mrsr: super-resolving INPUT (i/n)"; SaveVolumed: "wrote"
        ],  # no StatsHandler: it has no metrics to log here, and it logs every error's traceback
        "evaluator": {
            "_target_": "SupervisedEvaluator",
            "device": "@device",
            "val_data_loader": "@dataloader",
            "network": "@network",
            "inferer": "@inferer",
            "postprocessing": "@postprocessing",
            "val_handlers": "@handlers",
        },
        **ONE_LINE_ERRORS,
        "run": ["$@evaluator.run() if @dataset#data else None"],  # nothing left to do: as_datalist said so
    }


def train_config(name: str) -> dict:
    spec = BUNDLES[name]
    recipe = dict(zip(spec["train"][::2], spec["train"][1::2]))
    return {
        "imports": ["$import mrsr", "$import mrsr.bundle", "$import mrsr.engines"],
        "bundle_root": ".",
        "network_name": spec["network"],
        "preset": "default",
        "network_kwargs": spec["options"],
        "scale": 2,
        "manifest": f"$@bundle_root + '/../../{MANIFEST}'",
        "data_root": None,
        "output_dir": "$@bundle_root + '/runs/train_x%d' % @scale",
        "neighbours": 0,
        "patch_size": 32,
        "batch_size": 16,
        "samples_per_epoch": 1600,
        "epochs": int(recipe.get("--epochs", 10)),
        "iterations": None,
        "lr": float(recipe.get("--lr", 5e-4)),
        "warmup": int(recipe.get("--warmup", 0)),
        "grad_clip": float(recipe["--grad-clip"]) if "--grad-clip" in recipe else None,
        "loss": json.loads(recipe.get("--loss", "{}")),
        "balance_volumes": "--balance-volumes" in spec.get("train_flags", ()),
        "val_every": 1,
        "seed": 0,
        "device": "auto",
        "amp": False,
        "num_workers": 0,
        "progress": True,
        "resume": False,
        "overwrite": False,
        "train_config": {
            "_target_": "mrsr.engines.TrainConfig",
            "network": "@network_name",
            "preset": "@preset",
            "network_kwargs": "@network_kwargs",
            "scale": "@scale",
            "manifest": "@manifest",
            "data_root": "@data_root",
            "out": "@output_dir",
            "neighbours": "@neighbours",
            "patch_size": "@patch_size",
            "batch_size": "@batch_size",
            "samples_per_epoch": "@samples_per_epoch",
            "epochs": "@epochs",
            "iterations": "@iterations",
            "lr": "@lr",
            "warmup": "@warmup",
            "grad_clip": "@grad_clip",
            "loss": "@loss",
            "balance_volumes": "@balance_volumes",
            "val_every": "@val_every",
            "seed": "@seed",
            "device": "@device",
            "amp": "@amp",
            "num_workers": "@num_workers",
            "progress": "@progress",
        },
        **ONE_LINE_ERRORS,
        "run": ["$mrsr.engines.train(@train_config, resume=@resume, overwrite=@overwrite)"],
    }


MULTI_GPU = {
    # torchrun --nproc_per_node=N -m monai.bundle run --config_file "['configs/train.json','configs/multi_gpu_train.json']"
    # mrsr.engines.train joins the process group torchrun describes (NCCL on GPUs, gloo on CPUs), wraps the
    # network in DDP, shards the samples and lets rank 0 write; batch_size is per GPU.
    "imports": ["$import mrsr", "$import mrsr.bundle", "$import mrsr.engines"],
    "device": "auto",
    "num_workers": 2,
    "initialize": [*ONE_LINE_ERRORS["initialize"], "$mrsr.bundle.require_torchrun()"],
}


def evaluate_config() -> dict:
    return {
        "imports": ["$import mrsr", "$import mrsr.bundle"],
        "bundle_root": ".",
        "scale": 2,
        "manifest": f"$@bundle_root + '/../../{MANIFEST}'",
        "data_root": None,
        "section": "test",
        "device": "auto",
        "output_dir": "$@bundle_root + '/eval'",
        "update_metadata": False,
        **ONE_LINE_ERRORS,
        "run": [
            "$mrsr.bundle.evaluate_bundle(@bundle_root, @manifest, scale=@scale, section=@section, "
            "data_root=@data_root, device=@device, output=@output_dir + '/metrics_x%d.json' % @scale, "
            "update_metadata=@update_metadata)"
        ],
    }


LOGGING_CONF = """[loggers]
keys=root

[handlers]
keys=consoleHandler

[formatters]
keys=fullFormatter

[logger_root]
level=INFO
handlers=consoleHandler

[handler_consoleHandler]
class=StreamHandler
level=INFO
formatter=fullFormatter
args=(sys.stdout,)

[formatter_fullFormatter]
format=%(asctime)s - %(name)s - %(levelname)s - %(message)s
"""


def benchmark_reports(csv_file: Path, name: str) -> list[dict]:
    """``mrsr benchmark``'s per-image quality rows of bundle ``name`` (and both baselines), one report per scale,
    in the form :func:`mrsr.bundle.store_eval_metrics` takes; the speed from its float32 throughput row."""
    import csv

    rows = list(csv.DictReader(open(csv_file, newline="")))
    reports = []
    for scale in sorted({int(r["scale"]) for r in rows if r["table"] == "quality" and r["method"] == name}):
        volumes: dict[str, dict] = {}
        for r in rows:
            if r["table"] == "quality" and int(r["scale"]) == scale and r["method"].split(" ")[0] in (name, *BASELINES):
                scores = {k: float(r[k]) for k in ("psnr", "ssim", "psnr_fg", "adapt_seconds") if r.get(k)}
                if r.get("adapt_choice"):
                    scores["adapt_choice"] = r["adapt_choice"]
                volumes.setdefault(r["volume"], {})[r["method"]] = scores
        speed = [r for r in rows if r["table"] == "speed" and r["method"] == name and int(r["scale"]) == scale
                 and r["precision"] == "float32"]  # fmt: skip
        reports.append({"manifest": MANIFEST, "section": "test", "scale": scale, "volumes": volumes,
                        "speed": f"{float(speed[0]['mvox_per_s']):.2f} output Mvoxel/s on {speed[0]['device']} "
                        "(mrsr benchmark)" if speed else "not measured"})  # fmt: skip
    return reports


def _write_json(path: Path, obj: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=4) + "\n")


def write_bundle(name: str) -> Path:
    """Write (or refresh) every generated file of bundle ``name``; keeps its weights and eval_metrics."""
    root = HERE / f"{name}_mr_sr"
    meta_file = root / "configs" / "metadata.json"
    old = json.loads(meta_file.read_text()) if meta_file.is_file() else {}
    _write_json(meta_file, metadata(name, old))
    _write_json(root / "configs" / "inference.json", inference_config(name))
    _write_json(root / "configs" / "train.json", train_config(name))
    _write_json(root / "configs" / "multi_gpu_train.json", MULTI_GPU)
    _write_json(root / "configs" / "evaluate.json", evaluate_config())
    (root / "configs" / "logging.conf").write_text(LOGGING_CONF)
    shutil.copyfile(REPO / "LICENSE", root / "LICENSE")
    (root / "models").mkdir(exist_ok=True)
    (root / "docs").mkdir(exist_ok=True)
    (root / "docs" / "README.md").write_text(model_card_text(name, json.loads(meta_file.read_text())))
    return root


def model_card_text(name: str, meta: dict) -> str:
    """docs/README.md of bundle ``name`` (bundles/model_card.py's template)."""
    sys.path.insert(0, str(HERE))
    from model_card import model_card

    return model_card(name, BUNDLES[name], meta)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundles", nargs="+", default=list(BUNDLES), help="which bundles")
    parser.add_argument("--install", metavar="RUNS", help="install RUNS/<network>_x<s>/model_best.pt as weights")
    parser.add_argument("--evaluate", action="store_true", help="score the weights and store the numbers")
    parser.add_argument("--adapt-steps", type=int, default=300, help="--evaluate: test-time adaptation steps at x2")
    parser.add_argument("--scores", metavar="CSV", help="store the per-image scores of an `mrsr benchmark` run")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO))
    sys.path.insert(0, str(HERE))
    import mrsr.bundle as mb

    for name in args.bundles:
        root = write_bundle(name)
        if args.install:
            for scale in SCALES:
                run = Path(args.install) / f"{BUNDLES[name]['network']}_x{scale}" / "model_best.pt"
                if run.is_file():
                    print(f"{name}: installed {run} -> {mb.install_weights(run, root, scale)}")
        if args.evaluate:
            for scale in mb.bundle_scales(root):
                steps = args.adapt_steps if scale == 2 else 0
                mb.evaluate_bundle(root, REPO / MANIFEST, scale=scale, update_metadata=True, adapt_steps=steps)
        if args.scores:
            for report in benchmark_reports(Path(args.scores), name):
                mb.store_eval_metrics(root, report)
        write_bundle(name)  # the model card shows the stored numbers
    return 0


if __name__ == "__main__":
    sys.exit(main())
