"""How a bundle command fails: one line for bad input (:func:`one_line_errors`), and the torchrun check.

``python -m monai.bundle`` wraps every error of a config expression in RuntimeErrors and prints the
whole chain; the bundles' configs install :func:`one_line_errors` so that bad input ends with
``mrsr: error: ...`` instead. This module imports neither torch nor MONAI until an error needs them.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

from mrsr.bundle.discovery import _cli_options, _config_files, _is_bundle
from mrsr.errors import MrsrError

__all__ = ["STATE_DICT_ERROR", "one_line_errors", "require_torchrun"]

STATE_DICT_ERROR = "Error(s) in loading state_dict"  # torch's load_state_dict(strict=True)


def require_torchrun() -> None:
    """Stop with a clear message when ``multi_gpu_train.json`` is run without ``torchrun``."""
    if "WORLD_SIZE" not in os.environ:
        raise MrsrError(
            "multi_gpu_train.json runs under torchrun: torchrun --nproc_per_node=N -m monai.bundle run "
            "--config_file \"['configs/train.json','configs/multi_gpu_train.json']\"; for one GPU or the CPU "
            "use configs/train.json alone."
        )


def _user_error(err: BaseException | None) -> BaseException | None:
    """The first :class:`MrsrError` or ``OSError`` in ``err``'s chain of causes (MONAI wraps them in RuntimeErrors)."""
    seen = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, (MrsrError, OSError)):
            return err
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return None


def _weights_scale(ckpt: Path, bundle: Path, config: Path | None, skip: int, key: str = "") -> int | None:
    """The scale at which the bundle's ``network_def`` takes the weights in ``ckpt`` (``None``: none does)."""
    from mrsr.bundle.weights import _inference_parser
    from mrsr.checkpoint import read_weights

    state = read_weights(ckpt)
    state = state.get(key, state) if key else state
    state = state.get("state_dict", state)  # an mrsr weights file
    for scale in (2, 3, 4, 8):
        if scale == skip:
            continue
        try:
            network = _inference_parser(bundle, scale, config).get_parsed_content("network_def")
            network.load_state_dict(state)
        except Exception:  # noqa: BLE001 - any failure: not this scale
            continue
        return scale
    return None


def _weights_error(err: BaseException | None) -> str | None:
    """One line for a checkpoint that does not fit the network of a ``monai.bundle`` command (``ckpt_export``
    or ``run --ckpt_path``): the scale it fits, from the command line's arguments, and the ``--scale`` to pass."""
    seen = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, RuntimeError) and str(err).startswith(STATE_DICT_ERROR):
            break
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    else:
        return None
    options = _cli_options()
    detail = " ".join(str(err).split())
    detail = detail if len(detail) <= 160 else detail[:157] + "..."
    ckpt = options.get("ckpt_file") or options.get("ckpt_path")
    configs = _config_files(options)
    root = options.get("bundle_root")
    bundle = Path(root) if root and _is_bundle(Path(root)) else None
    if bundle is None and configs and _is_bundle(configs[0].parent.parent):
        bundle = configs[0].parent.parent
    try:
        built = int(options["scale"]) if "scale" in options else int(json.loads(configs[0].read_text())["scale"])
    except (LookupError, ValueError, OSError, TypeError):
        built = None
    what = f"The checkpoint {ckpt}" if ckpt else "The weights"
    at = f"scale {built}" if built else "its scale"
    if "scale" not in options and built:
        at += " (the config's default)"
    if ckpt and bundle is not None and built is not None and Path(ckpt).is_file():
        config = configs[0] if configs else None
        try:
            fits = _weights_scale(Path(ckpt), bundle, config, built, options.get("key_in_ckpt", ""))
        except Exception:  # noqa: BLE001 - the hint is a best effort; the line below still says what to do
            fits = None
        if fits is not None:
            return f"{what} is for scale {fits}, but the network was built for {at}: pass --scale {fits}."
    return (
        f"{what} does not fit the network built for {at} ({detail}); pass the --scale it was trained for, "
        "or weights of this bundle's network."
    )


def one_line_errors(traceback: bool = False) -> None:
    """End a bundle command that fails on bad input with one line, ``mrsr: error: ...``, not MONAI's traceback.

    The bundles' configs call this in their ``initialize`` step and when their ``network_def`` is built
    (its ``_requires_``: ``ckpt_export`` and ``onnx_export`` build only that): ``python -m monai.bundle``
    wraps every error of a config expression in RuntimeErrors and prints the whole chain, which buries the
    one-line message. The hook (``sys.excepthook``) prints the first :class:`MrsrError` or ``OSError``
    of an uncaught error's chain instead, and for weights that do not fit the network (x4 weights into
    the default x2 network) says which ``--scale`` they are for, and exits with status 2 as ``mrsr`` does.
    The engines' own ERROR log lines about that error are dropped. Other errors, and every error when
    ``traceback`` is true (``--traceback True`` on the command line), keep the full traceback.
    """
    if traceback or getattr(sys.excepthook, "mrsr_one_line", False):  # once per process
        return
    previous = sys.excepthook

    def hook(kind: type[BaseException], value: BaseException, tb: Any) -> None:
        cause = _user_error(value)
        try:
            line = str(cause) if cause is not None else _weights_error(value)
        except Exception:  # noqa: BLE001 - never lose the original error to a bug in the hint
            line = None
        if line is None:
            previous(kind, value, tb)
            return
        print(f"mrsr: error: {line}", file=sys.stderr, flush=True)
        sys.stdout.flush()
        # the exit status of `mrsr` for bad input; an excepthook cannot raise SystemExit, and the interpreter
        # is shutting down anyway (finally blocks and context managers have already run)
        _exit(EXIT_USAGE)

    hook.mrsr_one_line = True  # type: ignore[attr-defined]
    sys.excepthook = hook
    for handler in logging.getLogger().handlers:
        handler.addFilter(_drop_user_error_logs)


EXIT_USAGE = 2  # mrsr.cli.EXIT_USAGE
_exit = os._exit  # how the hook ends the process (tests replace it)


def _drop_user_error_logs(record: logging.LogRecord) -> bool:
    """A logging filter: drop the ERROR lines an engine logs while it handles a user error (ignite's "Engine run
    is terminating due to exception: ..."), which the one line of :func:`one_line_errors` replaces."""
    if record.levelno < logging.ERROR:
        return True
    handling = record.exc_info[1] if record.exc_info else sys.exc_info()[1]
    return handling is None or (_user_error(handling) is None and _weights_error(handling) is None)
