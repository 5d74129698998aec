"""Retrained weights against the shipped ones: choose on validation, report on test, per image.

    python benchmarks/compare_weights.py [--runs runs] [--networks msrn wasa durn iconet casnet] [--scales 2 4]
                                         [--chosen runs/chosen] [--json compare.json] [--markdown compare.md]

For each network and scale with a finished run (``RUNS/<network>_x<s>/model_best.pt``, as ``mrsr train``
writes it), the run's weights (``new``) and the bundle's shipped weights (``shipped``) are scored per image
with data consistency on (as the bundles run) against zerofill and bicubic, first on the manifest's
validation section, then on its test section (:func:`synthetic_ablation.score_runs`; the run's input channels
come from its ``config.json``). The choice looks at validation only: the new weights are chosen when their
mean margin over the better baseline is higher than the shipped weights'. ``--chosen`` links each chosen run
there, ready for ``python bundles/make_bundles.py --install CHOSEN``. Test is printed for the report and
decides nothing.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from synthetic_ablation import margins, markdown, score_runs  # this script's folder is the first entry of sys.path

from mrsr.bundle import find_bundle, load_bundle_network
from mrsr.checkpoint import load_network
from mrsr.engines import TrainConfig


def compare(run: Path, network: str, scale: int) -> dict:
    """Score the shipped and the new weights of one network at one scale on validation, then on test."""
    new, _, _ = load_network(run)
    channels = TrainConfig.from_dict(json.loads((run.parent / "config.json").read_text())).in_channels
    models = {"shipped": load_bundle_network(find_bundle(network), scale), "new": (new, channels)}
    result = {"validation": score_runs(models, scale, "validation")}
    better = np.mean(margins(result["validation"], "new")) > np.mean(margins(result["validation"], "shipped"))
    result["choice"] = "new" if better else "shipped"
    result["test"] = score_runs(models, scale, "test")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, default=Path("runs"))
    parser.add_argument("--networks", nargs="+", default=["msrn", "wasa", "durn", "iconet", "casnet"])
    parser.add_argument("--scales", nargs="+", type=int, default=[2, 4])
    parser.add_argument("--chosen", type=Path, help="link each chosen run's folder here")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results, text = {}, []
    for network in args.networks:
        for scale in args.scales:
            run = args.runs / f"{network}_x{scale}"
            if not (run / "model_best.pt").is_file():
                print(f"{network} x{scale}: no finished run in {run}, skipped", flush=True)
                continue
            key = f"{network} x{scale}"
            results[key] = result = compare(run / "model_best.pt", network, scale)
            for section in ("validation", "test"):
                text.append(markdown(result[section], f"{key}, {section}"))
            text.append(f"Chosen on validation: **{result['choice']}**.")
            print("\n\n".join(text[-3:]) + "\n", flush=True)
            if args.chosen and result["choice"] == "new":
                args.chosen.mkdir(parents=True, exist_ok=True)
                link = args.chosen / run.name
                link.unlink(missing_ok=True)
                link.symlink_to(run.resolve(), target_is_directory=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    if args.markdown:
        args.markdown.write_text("\n\n".join(text) + "\n")


if __name__ == "__main__":
    main()
