"""Write mrsr's MONAI bundles from one table and their recipes; install trained weights; score them; write the cards.

    python bundles/make_bundles.py                      # configs, datalist, LICENSE, model card, data licence
                                                        #   of every bundle (keeps weights and eval_metrics)
    python bundles/make_bundles.py --check              # write nothing; exit 1 naming every generated file
                                                        #   that differs from what this script writes
    python bundles/make_bundles.py --install runs       # + runs/<network>_x<s>/model_best.pt -> models/
    python bundles/make_bundles.py --evaluate           # + score every shipped weights file (x2, x4) on
                                                        #   data_manifests/real_data.json [test], store the
                                                        #   numbers in metadata.json and the model cards
    python bundles/make_bundles.py --scores benchmark/benchmark.csv
                                                        # the same numbers from an `mrsr benchmark` run
                                                        #   (with test-time adaptation at x2)
    python bundles/make_bundles.py --torchscript        # + export the weights to TorchScript beside them
                                                        #   (models/model.ts, models/model_x4.ts; MONAI's
                                                        #   ckpt_export; what MONAI Deploy loads) where --check
                                                        #   finds the file missing or out of date

What each bundle is comes from its network's spec (``bundle=`` in ``mrsr.networks.NetworkSpec``: name, class,
papers; :func:`bundle_table`); how its shipped weights were trained from
``bundles/recipes/<name>.json``: for each scale, the ``mrsr train`` command that was run from the repository
root (``command``), the run's settings as its ``config.json`` records them (``settings``: every
:class:`mrsr.engines.TrainConfig` field), why it differs from x2 (``why``) and the share of its added detail
the output keeps (``detail``, chosen on validation by ``benchmarks/detail.py``; inference.json's ``details``),
with the machine and an optional ``note`` shown in the model card. ``configs/train.json`` takes its recipe from
the x2 settings.
Edit the specs or the recipes, never the generated files: ``--check`` (and tests/bundle) compares them, and
reports a TorchScript file that is missing or holds other weights, another inference config or other metadata
(scores and installed versions aside) than it would be written with: rerun with ``--torchscript`` (after
``--install`` too), which writes only those.
The model card's text is ``bundles/model_card.py``'s.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import os
import sys
import tempfile
from importlib.metadata import version
from pathlib import Path

from model_card import data_license, model_card, package_of  # this script's folder is the first entry of sys.path

from mrsr.networks import BASELINES, get_network_class, specs

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RECIPES = HERE / "recipes"
# MONAI's bundle metadata schema (a copy is tests/data/monai_meta_schema_20240725.json)
SCHEMA = "https://github.com/Project-MONAI/MONAI-extra-test-data/releases/download/0.8.1/meta_schema_20240725.json"
VERSION = "0.1.0"
MANIFEST = "data_manifests/real_data.json"  # the datalist every bundle trains, validates and is scored on
DATALIST = "configs/datalist.json"  # the bundle's copy of it


def bundle_table() -> dict[str, dict]:
    """Bundle name -> what the bundle is, from its network's spec (``mrsr.networks.specs()``, ``bundle=``)
    and its recipe (the network options its weights were trained with)."""
    table = {}
    for spec in specs():
        if spec.bundle:
            table[spec.bundle] = {
                "name": f"{spec.display_name or spec.name} MR super-resolution",
                "network": spec.name,
                "class": get_network_class(spec.name).__name__,
                "title": spec.title,
                "references": list(spec.references),
                "options": recipe(spec.bundle)["scales"]["x2"]["settings"]["network_kwargs"],
            }
    return table


# what the configs need besides MONAI, PyTorch and NumPy (pip names); their installed versions are written into
# the metadata, with the packages the datalist's pkg: paths read from
PACKAGES = (
    "mrsr",  # every config: the networks, readers, writers, engines
    "nibabel",  # NIfTI in and out
    "pydicom",  # DICOM in and out
    "pytorch-ignite",  # MONAI's engines: the inference and evaluation runs, training
    "tensorboard",  # train.json's logs
    "tqdm",  # progress bars
    "fire",  # python -m monai.bundle's command line
)


# every config ends a run that fails on bad input with one line (mrsr.bundle.one_line_errors); --traceback True
# on the command line shows the traceback
ONE_LINE_ERRORS = {"traceback": False, "initialize": ["$mrsr.bundle.one_line_errors(@traceback)"]}
# the same for commands that build only network_def and run no initialize step (ckpt_export, onnx_export): it
# is what names the --scale of weights that do not fit the network
NETWORK_REQUIRES = "$mrsr.bundle.one_line_errors(@traceback)"
# the data of the train and evaluate configs: the bundle's own datalist; --datalist and --dataset_dir (the folder
# its relative paths start from; pkg: paths need none) point them at other data. `manifest` and `data_root`, mrsr's
# names for them, are overrides too.
DATA = {
    "dataset_dir": None,
    "datalist": f"$@bundle_root + '/{DATALIST}'",
    "manifest": "@datalist",
    "data_root": "@dataset_dir",
}
# the TrainConfig fields train.json sets from the x2 recipe (the network, preset, scale, data and run folder
# are its own); every other field must have TrainConfig's default in the recipe
# TrainConfig fields whose train.json key is the model zoo's name for them
ZOO_NAMES = {"val_every": "val_interval"}
TRAIN_KEYS = (
    "neighbours", "patch_size", "batch_size", "samples_per_epoch", "epochs", "iterations", "lr", "warmup",
    "grad_clip", "loss", "balance_volumes", "synthetic", "val_every", "seed", "device", "amp", "num_workers",
    "progress",
)  # fmt: skip


def recipe(name: str) -> dict:
    """``bundles/recipes/<name>.json``: how the shipped weights of bundle ``name`` were trained."""
    return json.loads((RECIPES / f"{name}.json").read_text())


def scales(name: str) -> list[int]:
    """The scales bundle ``name`` has a recipe for (and ships weights for)."""
    return sorted(int(key[1:]) for key in recipe(name)["scales"])


# bundle name -> what it is (see bundle_table)
BUNDLES = bundle_table()


def settings(name: str, scale: int = 2) -> dict:
    """The ``TrainConfig`` settings of the run that made bundle ``name``'s weights at ``scale``.

    Raises:
        ValueError: they do not train the bundle's network with its options.
    """
    spec, found = BUNDLES[name], recipe(name)["scales"][f"x{scale}"]["settings"]
    if found["network"] != spec["network"] or found["network_kwargs"] != spec["options"] or found["scale"] != scale:
        raise ValueError(f"bundles/recipes/{name}.json x{scale}: not the bundle's network, options or scale.")
    return found


def real_datalist() -> dict:
    """The real-data datalist (``data_manifests/real_data.json``), which every bundle carries as its datalist."""
    return json.loads((REPO / MANIFEST).read_text())


def tested_versions(datalist: dict) -> dict[str, str]:
    """The installed versions of :data:`PACKAGES` and of the packages the datalist's ``pkg:`` paths read from."""
    names = set(PACKAGES)
    for section in ("training", "validation", "test"):
        names.update(package_of(entry) for entry in datalist.get(section, []) if entry["image"].startswith("pkg:"))
    return {name: version(name).split("+")[0] for name in sorted(names)}


def network_def(spec: dict, preset: str = "small") -> dict:
    """The ``network_def`` of a bundle: the class, the preset's sizes and the bundle's options."""
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


def _sections(datalist: dict) -> str:
    return "; ".join(
        f"{section}: {', '.join(e['name'] for e in datalist[section])}"
        for section in ("training", "validation", "test")
        if datalist.get(section)
    )


def metadata(name: str, old: dict) -> dict:
    """``configs/metadata.json``; ``old`` (the file as it is) gives the stored ``eval_metrics``."""
    import monai
    import numpy
    import torch

    spec, datalist, sizes = BUNDLES[name], real_datalist(), scales(name)
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
        "required_packages_version": tested_versions(datalist),
        "name": spec["name"],
        "task": f"In-plane super-resolution of magnitude MR slices ({' and '.join(f'x{s}' for s in sizes)})",
        "description": f"{spec['title']} ({spec['class']}, small preset) for 2D in-plane MR super-resolution, trained "
        f"on real brain MR scans that ship in Python packages ({DATALIST}) with low-resolution inputs made by "
        "k-space truncation. Demonstration weights: retrain on your own data (docs/README.md).",
        "authors": "mrsr developers",
        "copyright": "Copyright (c) mrsr developers",
        "data_source": f"{DATALIST}, a copy of mrsr's {MANIFEST}: real MR scans read in place from installed "
        f"Python packages (pkg: paths; licences in docs/data_license.txt). {_sections(datalist)}",
        "data_type": "nibabel",
        "intended_use": "Research and demonstration only, not for clinical use. Super-resolves magnitude MR volumes "
        "in-plane, slice by slice, by the bundle's scale; the output overlays the input in world coordinates.",
        "references": spec["references"],
        "eval_metrics": old.get("eval_metrics", {}),
        "network_data_format": {
            "inputs": {
                "image": {
                    **tensor,
                    "spatial_shape": ["*", "*"],
                    "channel_def": {"0": "one LR slice, normalised: 0.5th/99.5th intensity percentiles -> 0/1"},
                    "scale": sizes,
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
        "imports": [
            "$import torch",
            "$import mrsr",
            "$import mrsr.bundle",
            "$import mrsr.data",
            "$import mrsr.settings",
        ],
        "bundle_root": ".",
        "scale": 2,
        "ckpt_path": "$mrsr.bundle.shipped_weights(@bundle_root, @scale)",
        "input": "$str(mrsr.data.sample_path())",
        # the current folder: a bundle folder may be read-only or inside site-packages
        "output_dir": ".",
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
        "details": {str(scale): recipe(name)["scales"][f"x{scale}"].get("detail", 1.0) for scale in scales(name)},
        "detail": "$@details.get(str(@scale), 1.0)",
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
        # the run's settings, built once from the options above and passed to the inferer unchanged
        "settings": {
            "_target_": "mrsr.settings.InferSettings",
            "scale": "@scale",
            "in_channels": "@network_def#in_channels",
            "slice_axis": "@slice_axis",
            "roi_size": "@roi_size",
            "overlap": "@overlap",
            "slice_batch": "@slice_batch",
            "amp": "@amp",
            "channels_last": "@channels_last",
            "data_consistency": "@data_consistency",
            "detail": "@detail",
            "adapt": "$None if @adapt is None else mrsr.settings.AdaptSettings(steps=@adapt, time_budget=@adapt_time, "
            "seed=@seed)",
            "progress": True,  # a bar on a terminal, a line every 10 s in a log
        },
        "inferer": {"_target_": "mrsr.inference.VolumeInferer", "settings": "@settings"},
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
    """``configs/train.json``: the x2 recipe of the shipped weights, for the default-size network.

    Raises:
        ValueError: the recipe sets a ``TrainConfig`` field that train.json does not (it would train otherwise).
    """
    from mrsr.engines.config import TrainConfig

    recipe_x2 = settings(name, 2)
    own = {"network", "manifest", "data_root", "out", "scale", "preset", "network_kwargs", *TRAIN_KEYS}
    defaults = json.loads(json.dumps(dataclasses.asdict(TrainConfig(recipe_x2["network"], ""))))
    other = {k: v for k, v in recipe_x2.items() if k not in own and v != defaults.get(k)}
    if other:
        raise ValueError(f"bundles/recipes/{name}.json sets {sorted(other)}, which train.json does not: add them.")
    keys = {key: ZOO_NAMES.get(key, key) for key in TRAIN_KEYS}  # TrainConfig field -> train.json key
    return {
        "imports": ["$import mrsr", "$import mrsr.bundle", "$import mrsr.engines"],
        "bundle_root": ".",
        "network_name": recipe_x2["network"],
        "preset": "default",
        "network_kwargs": recipe_x2["network_kwargs"],
        "scale": 2,
        **DATA,
        "output_dir": "$'runs/train_x%d' % @scale",  # in the current folder, not the bundle's
        **{keys[key]: recipe_x2[key] for key in TRAIN_KEYS},
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
            **{key: f"@{keys[key]}" for key in TRAIN_KEYS},
        },
        # the run's parts, as a model-zoo train.json names them: override a dataset or add handlers from the
        # command line (--train#handlers "[...]"); trainer and evaluator are the MONAI engines the run built
        "train": {
            "dataset": "$mrsr.engines.training_dataset(@train_config)",
            "handlers": [],
            "workflow": {
                "_target_": "mrsr.engines.TrainingRun",
                "config": "@train_config",
                "resume": "@resume",
                "overwrite": "@overwrite",
                "train_dataset": "@train#dataset",
                "val_dataset": "@validate#dataset",
                "handlers": "@train#handlers",
            },
            "trainer": "$@train#workflow.trainer",
        },
        "validate": {
            "dataset": "$mrsr.engines.validation_dataset(@train_config)",
            "evaluator": "$@train#workflow.evaluator",
        },
        **ONE_LINE_ERRORS,
        "run": ["$@train#workflow.run()"],
    }


MULTI_GPU = {
    # torchrun --nproc_per_node=N -m monai.bundle run \
    #     --config_file "['configs/train.json','configs/multi_gpu_train.json']"
    # What a MONAI model-zoo bundle overrides for DDP, as far as mrsr.engines.train takes it from the config: the
    # device by rank (LOCAL_RANK's GPU, NCCL; on CPUs gloo) and the loader workers. train() itself joins the process
    # group torchrun describes, wraps the network in DistributedDataParallel, shards the samples (batch_size is
    # per GPU) and lets rank 0 validate into, log and write the run folder.
    "imports": ["$import os", "$import torch", "$import mrsr", "$import mrsr.bundle", "$import mrsr.engines"],
    "device": "$'cuda:' + os.environ['LOCAL_RANK'] if torch.cuda.is_available() else 'cpu'",
    "num_workers": 2,
    "initialize": [*ONE_LINE_ERRORS["initialize"], "$mrsr.bundle.require_torchrun()"],
}


def evaluate_config() -> dict:
    return {
        "imports": ["$import mrsr", "$import mrsr.bundle"],
        "bundle_root": ".",
        "scale": 2,
        **DATA,
        "section": "test",
        "device": "auto",
        "output_dir": ".",
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
    with open(csv_file, newline="") as f:
        rows = list(csv.DictReader(f))
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


def _json(obj: dict) -> str:
    return json.dumps(obj, indent=4) + "\n"


def bundle_files(name: str, meta: dict) -> dict[str, str]:
    """Every generated file of bundle ``name`` (path in the bundle -> text) but ``configs/metadata.json``;
    ``meta`` is the metadata the model card shows."""
    datalist = real_datalist()
    return {
        "configs/inference.json": _json(inference_config(name)),
        "configs/train.json": _json(train_config(name)),
        "configs/multi_gpu_train.json": _json(MULTI_GPU),
        "configs/evaluate.json": _json(evaluate_config()),
        DATALIST: _json(datalist),
        "configs/logging.conf": LOGGING_CONF,
        "LICENSE": (REPO / "LICENSE").read_text(),
        "docs/README.md": model_card(name, BUNDLES[name], meta, recipe(name), datalist, MANIFEST),
        "docs/data_license.txt": data_license(name, datalist),
    }


def write_bundle(name: str) -> Path:
    """Write (or refresh) every generated file of bundle ``name``; keeps its weights and eval_metrics."""
    root = HERE / f"{name}_mr_sr"
    meta_file = root / "configs" / "metadata.json"
    old = json.loads(meta_file.read_text()) if meta_file.is_file() else {}
    meta = metadata(name, old)
    meta_file.parent.mkdir(parents=True, exist_ok=True)
    meta_file.write_text(_json(meta))
    (root / "models").mkdir(exist_ok=True)
    for relative, text in bundle_files(name, meta).items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(text)
    return root


# metadata written by another machine differs in these: what that machine had installed
MACHINE_KEYS = ("monai_version", "pytorch_version", "numpy_version", "required_packages_version")
# what a TorchScript file's copy of the metadata may differ in: those, and the scores (stored after the export)
EXPORT_KEYS = (*MACHINE_KEYS, "eval_metrics")


def torchscript_path(root: Path, scale: int) -> Path:
    """The TorchScript file of the bundle in ``root`` at ``scale``: ``models/model.ts`` (x2),
    ``models/model_x<scale>.ts``, beside the weights file of that scale."""
    from mrsr.bundle import weights_path

    return weights_path(root, scale).with_suffix(".ts")


def torchscript_extras(root: Path, scale: int) -> dict[str, str]:
    """The files a bundle's TorchScript file at ``scale`` carries (MONAI's extra files): the bundle's
    ``metadata.json``, and its ``inference.json`` with ``scale`` set to the file's."""
    config = json.loads((root / "configs" / "inference.json").read_text())
    return {"metadata.json": (root / "configs" / "metadata.json").read_text(),
            "inference.json": _json({**config, "scale": scale})}  # fmt: skip


def _comparable(extras: dict[str, str | bytes]) -> dict[str, dict]:
    meta = json.loads(extras["metadata.json"])
    return {"metadata.json": {k: v for k, v in meta.items() if k not in EXPORT_KEYS},
            "inference.json": json.loads(extras["inference.json"])}  # fmt: skip


def stale_torchscript(root: Path) -> list[int]:
    """The scales whose TorchScript file (:func:`torchscript_path`) in the bundle in ``root`` is missing, holds
    other weights than the scale's ``.pt`` file or other :func:`torchscript_extras` (but for ``EXPORT_KEYS``).

    Args:
        root: the bundle's folder.
    """
    import torch

    from mrsr.bundle import bundle_scales, weights_path

    stale = []
    for scale in bundle_scales(root):
        target, extras = torchscript_path(root, scale), dict.fromkeys(torchscript_extras(root, scale), "")
        try:
            exported = torch.jit.load(str(target), map_location="cpu", _extra_files=extras).state_dict()
        except (RuntimeError, ValueError, OSError):  # missing or not TorchScript
            stale.append(scale)
            continue
        state = torch.load(weights_path(root, scale), map_location="cpu", weights_only=True)
        same = exported.keys() == state.keys() and all(torch.equal(exported[k], state[k]) for k in state)
        if not same or _comparable(extras) != _comparable(torchscript_extras(root, scale)):
            stale.append(scale)
    return stale


def export_torchscript(root: Path) -> list[Path]:
    """Export the weights of the bundle in ``root`` to TorchScript beside them with MONAI's ``ckpt_export``,
    for each scale :func:`stale_torchscript` names (the files are not byte for byte reproducible: the others
    are kept; delete one to write it again).

    ``models/model.pt`` becomes ``models/model.ts``, ``models/model_x4.pt`` ``models/model_x4.ts``: the
    scripted ``network_def`` at that scale with its weights, and :func:`torchscript_extras` inside, where
    the MONAI Deploy SDK reads them.

    Args:
        root: the bundle's folder.

    Returns:
        The written files.
    """
    from monai.bundle import ckpt_export

    from mrsr.bundle import weights_path

    written = []
    for scale in stale_torchscript(root):
        weights, target = weights_path(root, scale), torchscript_path(root, scale)
        with tempfile.TemporaryDirectory(dir=weights.parent) as tmp:  # the same folder: replaced atomically
            config = Path(tmp) / "inference.json"
            config.write_text(torchscript_extras(root, scale)["inference.json"])
            exported = Path(tmp) / target.name  # the archive's folder is named after the file
            ckpt_export(net_id="network_def", filepath=str(exported), ckpt_file=str(weights),
                        meta_file=str(root / "configs" / "metadata.json"), config_file=str(config),
                        bundle_root=str(root), scale=scale, traceback=True)  # fmt: skip
            os.replace(exported, target)
        written.append(target)
    return written


def check_bundle(name: str) -> list[str]:
    """The generated files of bundle ``name`` that differ from what :func:`write_bundle` would write (the
    installed versions in the metadata may differ, not which packages they are), and its stale TorchScript files
    (:func:`stale_torchscript`)."""
    root = HERE / f"{name}_mr_sr"
    meta_file = root / "configs" / "metadata.json"
    if not meta_file.is_file():
        return [str(meta_file.relative_to(REPO))]
    meta = json.loads(meta_file.read_text())
    for scale in scales(name):
        settings(name, scale)  # raises for a recipe of another network or options
    expected = metadata(name, meta)
    stale = []
    if {k: v for k, v in meta.items() if k not in MACHINE_KEYS} != {
        k: v for k, v in expected.items() if k not in MACHINE_KEYS
    } or set(meta.get("required_packages_version", {})) != set(expected["required_packages_version"]):
        stale.append(meta_file)
    for relative, text in bundle_files(name, meta).items():
        path = root / relative
        if not path.is_file() or path.read_text() != text:
            stale.append(path)
    stale += [torchscript_path(root, scale) for scale in stale_torchscript(root)]
    return [str(p.relative_to(REPO)) for p in stale]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundles", nargs="+", default=list(BUNDLES), choices=list(BUNDLES), help="which bundles")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a generated file differs")
    parser.add_argument("--install", metavar="RUNS", help="install RUNS/<network>_x<s>/model_best.pt as weights")
    parser.add_argument("--evaluate", action="store_true", help="score the weights and store the numbers")
    parser.add_argument("--adapt-steps", type=int, default=300, help="--evaluate: test-time adaptation steps at x2")
    parser.add_argument("--scores", metavar="CSV", help="store the per-image scores of an `mrsr benchmark` run")
    parser.add_argument("--torchscript", action="store_true", help="export stale weights to models/*.ts")
    args = parser.parse_args(argv)
    if args.check:
        stale = [path for name in args.bundles for path in check_bundle(name)]
        for path in stale:
            print(f"out of date: {path}", file=sys.stderr)
        if stale:
            print("run python bundles/make_bundles.py to rewrite them, with --torchscript for models/*.ts (edit the "
                  "script or bundles/recipes/, not the generated files)", file=sys.stderr)  # fmt: skip
        return 1 if stale else 0

    import mrsr.bundle as mb

    for name in args.bundles:
        root = write_bundle(name)
        if args.install:
            for scale in scales(name):
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
        if args.torchscript:  # last: the files carry the metadata and the config as written
            for path in export_torchscript(root):
                print(f"{name}: wrote {path.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
