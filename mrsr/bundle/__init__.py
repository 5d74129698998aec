"""mrsr's MONAI bundles: find, list and load them, install trained weights, score them.

A bundle is a folder ``<name>_mr_sr/`` (``bundles/`` in the repository) in MONAI's layout::

    configs/metadata.json      name, version, task, papers, tested package versions, network_data_format,
                               eval_metrics
    configs/inference.json     LoadVolumed -> RobustNormalized -> VolumeInferer -> RestoreVolumed -> SaveVolumed
    configs/train.json         train#dataset, train#handlers, train#trainer, validate#evaluator
                               (mrsr.engines.TrainingRun) on configs/datalist.json, default-size network
    configs/datalist.json      the real-data datalist (pkg: paths into installed packages); --datalist and
                               --dataset_dir point the train and evaluate configs at other data
    configs/multi_gpu_train.json, configs/evaluate.json, configs/logging.conf
    models/model.pt            x2 weights (a plain state_dict); models/model_x4.pt: x4
    docs/README.md, docs/data_license.txt, LICENSE

The modules, by concern:

- :mod:`mrsr.bundle.discovery`: the search path (``$MRSR_BUNDLES``, then the installed package's
  ``mrsr/bundles/``: a wheel carries them there, see setup.py, then the source tree's ``bundles/``),
  :func:`list_bundles`, :func:`find_bundle`, :func:`read_metadata`, :func:`bundle_scales`;
- :mod:`mrsr.bundle.weights`: :func:`shipped_weights`, :func:`load_bundle_network`, :func:`bundle_detail`,
  :func:`install_weights`;
- :mod:`mrsr.bundle.errors`: :func:`one_line_errors` (the configs' one-line errors) and
  :func:`require_torchrun`;
- :mod:`mrsr.bundle.evaluation`: :func:`evaluate_bundle`, the command behind each model card's numbers,
  :func:`store_eval_metrics`, and :func:`held_out_pairs` / :func:`score_methods`, which ``mrsr benchmark``
  shares.

Every public name of those modules is an attribute of this package (``mrsr.bundle.find_bundle``, as
the configs write them). Importing the package loads only :mod:`~mrsr.bundle.discovery`; the other
modules (torch, MONAI) load on first use of one of their names. The parts the inference configs chain
are in the layers below: :func:`mrsr.data.as_datalist`, :class:`mrsr.data.SaveVolumed`,
:class:`mrsr.inference.RestoreVolumed` and :class:`mrsr.inference.ProgressLines`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from mrsr.bundle.discovery import (
    BUNDLES_ENV,
    PACKAGED_BUNDLES,
    SOURCE_BUNDLES,
    SUFFIX,
    bundle_scales,
    bundle_search_path,
    find_bundle,
    list_bundles,
    read_metadata,
    weights_path,
)

if TYPE_CHECKING:
    from mrsr.bundle.errors import STATE_DICT_ERROR, one_line_errors, require_torchrun
    from mrsr.bundle.evaluation import (
        ADAPT,
        DC,
        DO_NO_HARM_DB,
        TOO_SMALL,
        evaluate_bundle,
        held_out_pairs,
        score_methods,
        store_eval_metrics,
    )
    from mrsr.bundle.weights import bundle_detail, install_weights, load_bundle_network, shipped_weights

__all__ = [
    # discovery
    "BUNDLES_ENV",
    "PACKAGED_BUNDLES",
    "SOURCE_BUNDLES",
    "SUFFIX",
    "bundle_search_path",
    "list_bundles",
    "find_bundle",
    "weights_path",
    "bundle_scales",
    "read_metadata",
    # weights
    "shipped_weights",
    "load_bundle_network",
    "bundle_detail",
    "install_weights",
    # errors
    "STATE_DICT_ERROR",
    "require_torchrun",
    "one_line_errors",
    # evaluation
    "evaluate_bundle",
    "score_methods",
    "store_eval_metrics",
    "held_out_pairs",
    "DO_NO_HARM_DB",
    "DC",
    "ADAPT",
    "TOO_SMALL",
]

# the modules imported on first use of one of their names (torch and MONAI are not loaded before)
_MODULES = {
    "weights": ("shipped_weights", "load_bundle_network", "bundle_detail", "install_weights"),
    "errors": ("STATE_DICT_ERROR", "require_torchrun", "one_line_errors"),
    "evaluation": ("evaluate_bundle", "score_methods", "store_eval_metrics", "held_out_pairs", "DO_NO_HARM_DB", "DC",
                   "ADAPT", "TOO_SMALL"),
}  # fmt: skip
_LAZY = {name: module for module, names in _MODULES.items() for name in names}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'mrsr.bundle' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"mrsr.bundle.{module}"), name)
    globals()[name] = value  # once loaded, a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
