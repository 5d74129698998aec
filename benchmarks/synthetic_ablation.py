"""Does the synthetic-MR corpus help? Train on real only, synthetic only and a mix; score per image.

    python benchmarks/synthetic_ablation.py [--networks msrn wasa] [--scale 2] [--variants real synthetic mix]
                                            [--mix 0.5] [--epochs N] [--out runs/ablation] [--json results.json]

Each run is the bundle's own recipe (``bundles/recipes/<network>.json``, the settings at ``--scale``) with
``synthetic`` set: 0 (real only), 1 (synthetic only) or ``--mix``; ``--epochs`` overrides the recipe's
length. The run keeps the weights of its best epoch on the manifest's validation section, as ``mrsr train``
does. Every run (and the shipped weights, ``shipped``) is then scored per image on the validation section
(what choices may use) and the test section (for reporting only), with data consistency as the bundles run,
against zerofill and bicubic (:func:`mrsr.bundle.evaluation.score_methods`; PSNR in dB over the HR range,
``scale`` border pixels cropped). Training times are wall seconds on this machine.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from mrsr.bundle import find_bundle, load_bundle_network
from mrsr.bundle.evaluation import held_out_pairs, score_methods
from mrsr.checkpoint import load_network
from mrsr.engines import TrainConfig, train
from mrsr.networks.baselines import Bicubic, ZeroFill

REPO = Path(__file__).resolve().parents[1]
MANIFEST = REPO / "data_manifests" / "real_data.json"
FRACTIONS = {"real": 0.0, "synthetic": 1.0}


def recipe_config(network: str, scale: int, synthetic: float, out: Path, epochs: int | None) -> TrainConfig:
    bundle = find_bundle(network).name.removesuffix("_mr_sr")
    recipe = json.loads((REPO / "bundles" / "recipes" / f"{bundle}.json").read_text())
    settings = dict(recipe["scales"][f"x{scale}"]["settings"])
    settings.update(manifest=str(MANIFEST), out=str(out), synthetic=synthetic, progress=False)
    if epochs:
        settings.update(epochs=epochs, iterations=None)
    return TrainConfig.from_dict(settings)


def score_runs(models: dict[str, tuple], scale: int, section: str) -> dict[str, dict[str, float]]:
    """``{image: {method: PSNR}}`` for every model (with data consistency) and both baselines."""
    methods = {"zerofill": (ZeroFill(scale=scale), 1), "bicubic": (Bicubic(scale=scale), 1), **models}
    table: dict[str, dict[str, float]] = {}
    for name, pair in held_out_pairs(MANIFEST, scale, section):
        row = {}
        for label, scores, _ in score_methods(pair, methods, scale):
            if label in ("zerofill", "bicubic") or label.endswith(" +dc"):
                row[label.removesuffix(" +dc")] = scores["psnr"]
        table[name] = row
        print(f"  {section} {name}: " + ", ".join(f"{k} {v:.2f}" for k, v in row.items()), flush=True)
    return table


def margins(table: dict[str, dict[str, float]], method: str) -> list[float]:
    """``method``'s PSNR minus the better of zerofill and bicubic, per image of ``table``."""
    return [row[method] - max(row["zerofill"], row["bicubic"]) for row in table.values()]


def markdown(table: dict[str, dict[str, float]], title: str) -> str:
    methods = list(next(iter(table.values())))
    lines = [f"**{title}** (PSNR dB, data consistency on; margin = network - max(zerofill, bicubic))", "",
             "| image | " + " | ".join(methods) + " |", "|---" * (len(methods) + 1) + "|"]  # fmt: skip
    for image, row in table.items():
        lines.append(f"| {image} | " + " | ".join(f"{row[m]:.2f}" for m in methods) + " |")
    mean = {m: float(np.mean([row[m] for row in table.values()])) for m in methods}
    lines.append("| **mean** | " + " | ".join(f"{mean[m]:.2f}" for m in methods) + " |")
    per_method = [margins(table, m) for m in methods[2:]]
    lines.append("| **mean margin** | | | " + " | ".join(f"{np.mean(v):+.2f}" for v in per_method) + " |")
    lines.append("| **worst margin** | | | " + " | ".join(f"{min(v):+.2f}" for v in per_method) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", nargs="+", default=["msrn", "wasa"])
    parser.add_argument("--scale", type=int, default=2)
    parser.add_argument("--variants", nargs="+", default=["real", "synthetic", "mix"],
                        choices=["real", "synthetic", "mix"])  # fmt: skip
    parser.add_argument("--mix", type=float, default=0.5, help="synthetic fraction of the mix")
    parser.add_argument("--epochs", type=int, help="override the recipe's epochs")
    parser.add_argument("--out", type=Path, default=Path("runs/ablation"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--retrain", action="store_true", help="train again even where a finished run exists")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results: dict = {"scale": args.scale, "train_seconds": {}, "validation": {}, "test": {}}
    for network in args.networks:
        models = {"shipped": load_bundle_network(find_bundle(network), args.scale)}
        for variant in args.variants:
            fraction = FRACTIONS.get(variant, args.mix)
            out = args.out / f"{network}_x{args.scale}_{variant}"
            config = recipe_config(network, args.scale, fraction, out, args.epochs)
            if args.retrain or not (out / "model_best.pt").is_file():
                start = time.perf_counter()
                train(config, overwrite=True)
                results["train_seconds"][f"{network} {variant}"] = time.perf_counter() - start
                print(f"{network} {variant} (synthetic {fraction:g}): trained in "
                      f"{results['train_seconds'][f'{network} {variant}']:.0f} s", flush=True)  # fmt: skip
            net, _, _ = load_network(out / "model_best.pt")
            models[variant] = (net, config.in_channels)
        for section in ("validation", "test"):
            table = score_runs(models, args.scale, section)
            results[section][network] = table
            print("\n" + markdown(table, f"{network} x{args.scale}, {section}") + "\n", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
