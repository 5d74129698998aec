"""Ignite handlers of a training run: history and checkpoints, TensorBoard scalars and image panels."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ignite.engine import Engine, Events

from mrsr.engines.distributed import all_reduce_mean, check_in_sync
from mrsr.paths import atomic_path, write_text_atomic

__all__ = ["RunRecorder", "PanelWriter", "panel_image", "atomic_save"]


def atomic_save(obj: Any, path: Path) -> None:
    """``torch.save`` to a temporary name, then rename: a kill never leaves half a checkpoint."""
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


class RunRecorder:
    """Keeps the run's history and, on rank 0, its files; attach after the validation handler.

    Every iteration: the loss (and named loss terms), averaged over ranks. Every epoch: the mean
    loss, the learning rate, the validation metrics, elapsed time; then (rank 0) ``checkpoint.pt``
    from ``state_fn()``, ``model_last.pt``, ``model_best.pt`` when the validation PSNR improves,
    ``history.json``, and one console line. Under DDP it also checks the ranks' weights agree.

    Args:
        history: the dict to fill (``{"loss": [...], "terms": {...}, "epochs": [...], ...}``); a
            resumed run passes the one from its checkpoint.
        out: the run folder.
        state_fn: returns the checkpoint dict (model, optimisers, schedulers, engine, history, config).
        weights_fn: ``weights_fn(path)`` writes the network's weights file.
        evaluator: the validation engine (its ``state.metrics`` are read), or ``None``.
        is_main: whether this rank writes.
        writer: a TensorBoard ``SummaryWriter`` or ``None``.
        module: the (unwrapped) network, for the DDP sync check.
        lr_fn: returns the current learning rate.
        val_every: the validation interval in epochs (0: none), as given to the ``ValidationHandler``.
    """

    def __init__(
        self,
        history: dict,
        out: Path,
        state_fn: Callable[[], dict],
        weights_fn: Callable[[Path], None],
        evaluator: Engine | None,
        is_main: bool,
        writer=None,
        module: torch.nn.Module | None = None,
        lr_fn: Callable[[], float] | None = None,
        val_every: int = 1,
    ) -> None:
        self.history, self.out, self.state_fn, self.weights_fn = history, out, state_fn, weights_fn
        self.evaluator, self.is_main, self.writer, self.module, self.lr_fn = evaluator, is_main, writer, module, lr_fn
        self.val_every = val_every
        for key, empty in (("loss", []), ("terms", {}), ("epochs", []), ("best", None)):
            history.setdefault(key, empty)
        self._epoch_start = time.perf_counter()

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.EPOCH_STARTED, self._start_epoch)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self.iteration_completed)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self.epoch_completed)

    def _start_epoch(self, engine: Engine) -> None:
        self._epoch_start = time.perf_counter()

    def iteration_completed(self, engine: Engine) -> None:
        out = engine.state.output
        loss = float(all_reduce_mean(out["loss"]))
        self.history["loss"].append(loss)
        step = engine.state.iteration
        for name, value in out.get("terms", {}).items():
            v = float(all_reduce_mean(value))
            self.history["terms"].setdefault(name, []).append(v)
            if self.writer is not None:
                self.writer.add_scalar(f"train/{name}", v, step)
        if self.writer is not None:
            self.writer.add_scalar("train/loss", loss, step)
            if self.lr_fn is not None:
                self.writer.add_scalar("train/lr", self.lr_fn(), step)

    def epoch_completed(self, engine: Engine) -> None:
        if self.module is not None:
            check_in_sync(self.module)
        n = engine.state.epoch_length or 1
        losses = self.history["loss"][-n:]
        record = {
            "epoch": engine.state.epoch,
            "iteration": engine.state.iteration,
            "loss": float(np.mean(losses)) if losses else math.nan,
            "lr": self.lr_fn() if self.lr_fn else None,
            "seconds": time.perf_counter() - self._epoch_start,
        }
        validated = self.evaluator is not None and self.val_every > 0 and engine.state.epoch % self.val_every == 0
        if validated:
            record.update({k: float(v) for k, v in self.evaluator.state.metrics.items()})  # type: ignore[union-attr]
        self.history["epochs"].append(record)
        improved = validated and (self.history["best"] is None or record["val_psnr"] > self.history["best"]["val_psnr"])
        if improved:
            self.history["best"] = {
                "epoch": record["epoch"],
                "val_psnr": record["val_psnr"],
                "val_ssim": record["val_ssim"],
            }
        if not self.is_main:
            return
        if self.writer is not None and validated:
            for k in ("val_psnr", "val_ssim"):
                self.writer.add_scalar(f"val/{k[4:]}", record[k], engine.state.epoch)
            self.writer.flush()
        self.weights_fn(self.out / "model_last.pt")
        if improved:
            self.weights_fn(self.out / "model_best.pt")
        atomic_save(self.state_fn(), self.out / "checkpoint.pt")
        _write_json(self.history, self.out / "history.json")
        print(_epoch_line(engine, record, self.history), flush=True)


def _epoch_line(engine: Engine, record: dict, history: dict) -> str:
    text = f"epoch {record['epoch']}/{engine.state.max_epochs}  loss {record['loss']:.5f}"
    if record.get("lr") is not None:
        text += f"  lr {record['lr']:.3g}"
    if "val_psnr" in record:
        text += f"  val PSNR {record['val_psnr']:.3f} dB  SSIM {record['val_ssim']:.4f}"
        base = history.get("baselines") or {}
        if base:
            text += "  (" + ", ".join(f"{n} {m['val_psnr']:.3f}" for n, m in base.items()) + ")"
    return text + f"  {record['seconds']:.1f} s"


def _write_json(obj: Any, path: Path) -> None:
    import json

    write_text_atomic(path, json.dumps(obj, indent=1, default=float) + "\n")


def panel_image(lr: torch.Tensor, sr: torch.Tensor, hr: torch.Tensor, error_gain: float = 4.0) -> torch.Tensor:
    """One (1, H, 4W) image: LR (nearest, on the HR grid) | SR | HR | |SR - HR| x ``error_gain``, in [0, 1].

    Args:
        lr: (h, w) LR slice.
        sr: (H, W) SR slice.
        hr: (H, W) HR slice.
        error_gain: the error map is amplified so small errors are visible.
    """
    lr_up = torch.nn.functional.interpolate(lr[None, None].float(), size=tuple(hr.shape), mode="nearest")[0, 0]
    tiles = [lr_up, sr.float(), hr.float(), (sr.float() - hr.float()).abs() * error_gain]
    return torch.cat([t.clamp(0, 1) for t in tiles], dim=1)[None]


class PanelWriter:
    """Evaluator handler: writes an LR | SR | HR | error panel of the first validation volume's middle
    slice to TensorBoard at every validation (tag ``val/panel``, step: the trainer's epoch).

    Args:
        writer: a TensorBoard ``SummaryWriter``.
        epoch_fn: returns the trainer's epoch.
        slice_axis: the axis across which slices are taken.
    """

    def __init__(self, writer, epoch_fn: Callable[[], int], slice_axis: int = 2) -> None:
        self.writer, self.epoch_fn, self.slice_axis = writer, epoch_fn, slice_axis

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.ITERATION_COMPLETED(once=1), self)

    def __call__(self, engine: Engine) -> None:
        out = engine.state.output
        lr, sr, hr = (
            out[k][0, 0].detach().float().cpu().movedim(self.slice_axis, 0) for k in ("image", "pred", "label")
        )
        z = hr.shape[0] // 2
        self.writer.add_image("val/panel", panel_image(lr[z], sr[z], hr[z]), self.epoch_fn())
