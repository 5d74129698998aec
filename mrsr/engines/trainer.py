"""Training runs on MONAI's ignite engines: ``SupervisedTrainer`` for DURN, WASA, ICONet and MSRN,
:class:`MedGANTrainer` for MedGAN, whole-volume validation, checkpoints that resume exactly, DDP.

>>> from mrsr.engines import TrainConfig, train           # doctest: +SKIP
>>> history = train(TrainConfig("msrn", "data_manifests/real_data.json", iterations=200))  # doctest: +SKIP
"""

from __future__ import annotations

import gc
import math
import os
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from monai.engines import SupervisedTrainer, Trainer
from monai.engines.utils import IterationEvents, default_prepare_batch
from monai.handlers import LrScheduleHandler, ValidationHandler
from monai.inferers import Inferer, SimpleInferer
from monai.utils import set_determinism
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset

from mrsr.checkpoint import read_weights, save_weights
from mrsr.engines.config import TrainConfig
from mrsr.engines.data import (
    Degradation,
    PairedPatchDataset,
    SampleSampler,
    SyntheticSlabs,
    VolumePairDataset,
    load_hr_volumes,
    steps_per_epoch,
)
from mrsr.engines.distributed import DistContext, cleanup_distributed, setup_distributed
from mrsr.engines.evaluator import build_evaluator
from mrsr.engines.handlers import PanelWriter, RunRecorder
from mrsr.errors import MrsrError

__all__ = [
    "train",
    "TrainingRun",
    "training_dataset",
    "validation_dataset",
    "build_training",
    "Training",
    "StagesInferer",
    "StageTargetBatch",
    "StagesForward",
    "MedGANTrainer",
    "CosineSchedule",
    "build_network",
    "load_checkpoint",
]

CHECKPOINT = "checkpoint.pt"


class StagesInferer(Inferer):
    """Asks a :class:`StagesForward`-wrapped network (maybe inside DDP) for every stage's outputs."""

    def __call__(self, inputs: torch.Tensor, network: torch.nn.Module, *args: Any, **kwargs: Any) -> Any:
        return network(inputs, stages=True)


class StagesForward(torch.nn.Module):
    """Wraps a stages network (``NetworkSpec.stages``: ICONet) so that ``forward(x, stages=True)``
    returns ``forward_stages(x)``.

    DDP synchronises the gradients of what goes through ``forward()``; calling ``forward_stages``
    on the inner module would bypass it.
    """

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor, stages: bool = False) -> Any:
        return self.net.forward_stages(x) if stages else self.net(x)


class StageTargetBatch:
    """``prepare_batch`` for a stages network: ``(LR, {"sr": [...], "rec": [...]})``, the batch's stage targets.

    The targets are the batch's ``"label"`` (HR) and ``"label_<f>"`` (coarser grids, from whole slices;
    :class:`~mrsr.engines.data.PairedPatchDataset`), in the order of the network class's
    ``stage_factors(scale)`` (e.g. :meth:`mrsr.networks.ICONet.stage_factors`).

    Args:
        factors: ``{"sr": [f, ...], "rec": [f, ...]}``, the grid (HR size / f) of each stage's outputs.
    """

    def __init__(self, factors: Mapping[str, Sequence[int]]) -> None:
        self.factors = {kind: list(fs) for kind, fs in factors.items()}

    @classmethod
    def for_config(cls, config: TrainConfig) -> StageTargetBatch:
        """The targets of ``config``'s network (a stages network) at ``config.scale``."""
        from mrsr.networks import get_network_class

        return cls(get_network_class(config.network).stage_factors(config.scale))

    @property
    def grids(self) -> tuple[int, ...]:
        """The coarser grids (factors f > 1) the dataset must cut targets for (``target_grids``)."""
        return tuple(sorted({f for fs in self.factors.values() for f in fs} - {1}))

    def __call__(self, batchdata: dict, device: Any = None, non_blocking: bool = False, **kwargs: Any) -> tuple:
        def get(f: int) -> torch.Tensor:
            return batchdata["label" if f == 1 else f"label_{f}"].to(device=device, non_blocking=non_blocking, **kwargs)

        image = batchdata["image"].to(device=device, non_blocking=non_blocking, **kwargs)
        return image, {kind: [get(f) for f in fs] for kind, fs in self.factors.items()}


class CosineSchedule:
    """LR multiplier for ``LambdaLR``: a linear warm-up over ``warmup`` steps (``1/warmup`` to 1), then
    cosine from 1 to ``floor`` by step ``total``, then ``floor``.

    A class rather than a lambda so the scheduler's state (``total``, ``floor``, ``warmup``) is saved and a
    resumed run with a new length can set ``total``.
    """

    def __init__(self, total: int, floor: float = 0.01, warmup: int = 0) -> None:
        self.total, self.floor, self.warmup = int(total), float(floor), int(warmup)

    def __call__(self, step: int) -> float:
        if step < self.warmup:
            return (step + 1) / self.warmup
        span = max(1, self.total - self.warmup)
        t = min(step - self.warmup, span) / span
        return self.floor + (1 - self.floor) * 0.5 * (1 + math.cos(math.pi * t))


def build_network(config: TrainConfig) -> torch.nn.Module:
    """The network of ``config`` (registry name, preset, scale, 2k+1 input channels, overrides)."""
    from mrsr.networks import get_network

    kwargs = dict(config.network_kwargs)
    kwargs.setdefault("scale", config.scale)
    kwargs.setdefault("in_channels", config.in_channels)
    return get_network(config.network, preset=config.preset, **kwargs)


def _network_kwargs(config: TrainConfig) -> dict[str, Any]:
    from mrsr.networks import presets

    kwargs = dict(presets(config.network).get(config.preset, {})) if config.preset else {}
    kwargs.update(config.network_kwargs)
    kwargs.update(scale=config.scale, in_channels=config.in_channels)
    return kwargs


def load_checkpoint(path: Path) -> dict:
    """Read a run checkpoint (tensors and plain data only: ``weights_only=True``)."""
    if not path.is_file():
        raise MrsrError(f"No checkpoint at {path}; start without --resume, or give the run folder with --out.")
    return read_weights(path)  # weights_only=True, with mrsr's one-line errors


def _prepare_run_dir(
    config: TrainConfig, resume: bool, overwrite: bool, ctx: DistContext
) -> tuple[TrainConfig, dict | None]:
    out = Path(config.out)  # type: ignore[arg-type]
    if resume:
        ckpt = load_checkpoint(out / CHECKPOINT)
        return TrainConfig.from_dict(ckpt["config"]).resumed_with(config), ckpt
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise MrsrError(
                f"The run folder {out} is not empty; pass --resume to continue it, --overwrite to replace it, "
                "or another --out."
            )
        if ctx.is_main:
            shutil.rmtree(out)
    return config, None


def _sections(config: TrainConfig) -> dict[str, list[dict]]:
    from mrsr.data.manifest import load_manifest

    present = load_manifest(config.manifest, config.data_root, check=False)  # which sections there are
    sections = ("training", "validation") if config.val_every and "validation" in present else ("training",)
    lists = load_manifest(config.manifest, config.data_root, sections=sections)  # what is used must exist
    if not lists.get("training"):
        raise MrsrError(f"The manifest {config.manifest} has no training entries.")
    return lists


def _shows_progress(config: TrainConfig) -> bool:
    return bool(config.progress) and int(os.environ.get("RANK", "0")) == 0  # rank 0 only under torchrun


def training_dataset(config: TrainConfig) -> PairedPatchDataset:
    """The training pairs of ``config``: random aligned LR/HR patches from its manifest's training section.

    HR slices are degraded whole by :class:`~mrsr.transforms.KSpaceTruncate` (with the config's
    windows, noise and factor jitter), then cut into patches; a stages network (``NetworkSpec.stages``)
    also gets each stage's target grid. A bundle's ``train#dataset``.

    Raises:
        MrsrError: the manifest has no training entries, or names missing files.
    """
    volumes = [d["image"] for d in load_hr_volumes(_sections(config)["training"], progress=_shows_progress(config))]
    deg = Degradation(config.windows, config.snr_range, config.factor_jitter, config.augment)
    return PairedPatchDataset(
        volumes, config.scale, config.patch_size, config.neighbours, config.samples_per_epoch, deg,
        config.slice_axis, config.background_weight, config.seed,
        StageTargetBatch.for_config(config).grids if config.spec.stages else (), config.balance_volumes,
        config.data_consistency,  # consistency is exact on a patch only when the patch itself was degraded
        synthetic_slabs(config, volumes) if config.synthetic else None, config.synthetic,
    )  # fmt: skip


def synthetic_slabs(config: TrainConfig, volumes: Sequence[torch.Tensor]) -> SyntheticSlabs:
    """The synthetic HR slabs of ``config``: the MNI152 tissue maps (when nilearn is installed) and k-means
    tissue maps of every real training volume."""
    from mrsr.data.synth import kmeans_tissue_maps, mni152_tissue_maps

    maps = [kmeans_tissue_maps(v, seed=config.seed) for v in volumes]
    try:
        maps.insert(0, mni152_tissue_maps())
    except MrsrError:  # nilearn is an optional extra: the k-means maps of the real volumes still teach anatomy
        if not maps:
            raise
    return SyntheticSlabs(maps, config.scale, config.patch_size, config.neighbours)


def validation_dataset(config: TrainConfig) -> VolumePairDataset | None:
    """Whole-volume LR/HR pairs of the manifest's validation section (None without one, or with
    ``val_every=0``). A bundle's ``validate#dataset``."""
    if not config.val_every:
        return None
    entries = _sections(config).get("validation")
    if not entries:
        return None
    volumes = [d["image"] for d in load_hr_volumes(entries, progress=_shows_progress(config))]
    return VolumePairDataset(volumes, config.scale, config.slice_axis, seed=config.seed)


def _loaders(
    config: TrainConfig, ctx: DistContext, dataset: Dataset | None = None, val_set: Dataset | None | str = "auto"
) -> tuple[DataLoader, DataLoader | None, int]:
    """The training loader (this rank's share of ``dataset``), the validation loader and the steps per epoch."""
    dataset = training_dataset(config) if dataset is None else dataset
    val_set = validation_dataset(config) if isinstance(val_set, str) else val_set
    sampler = SampleSampler(dataset, ctx.world_size, ctx.rank, config.seed)
    cuda = ctx.device.type == "cuda"
    train_loader = DataLoader(
        dataset,
        batch_size=config.batch_size,
        sampler=sampler,
        num_workers=config.num_workers,
        pin_memory=cuda,
        drop_last=True,
    )
    steps = steps_per_epoch(config.samples_per_epoch, config.batch_size, ctx.world_size)
    val_loader = None
    if config.val_every and val_set is not None:
        from monai.data import DistributedSampler as EvenSampler

        # fewer volumes than ranks: pad (duplicates) so that no rank has an empty loader
        val_sampler = (
            EvenSampler(
                val_set,
                even_divisible=len(val_set) < ctx.world_size,
                num_replicas=ctx.world_size,
                rank=ctx.rank,
                shuffle=False,
            )
            if ctx.distributed
            else None
        )
        val_loader = DataLoader(val_set, batch_size=1, sampler=val_sampler, num_workers=0)
    return train_loader, val_loader, steps


def _epochs(config: TrainConfig, steps: int) -> tuple[int, int]:
    """(epochs, steps per epoch): ``iterations`` rounds up to whole epochs (or shortens a single one)."""
    if config.iterations is None:
        return config.epochs, steps
    if config.iterations < steps:
        return 1, config.iterations
    return math.ceil(config.iterations / steps), steps


def _grad_clipper(max_norm: float, scaler_fn: Callable[[], Any], params_fn: Callable[[], Any], optimizer) -> Callable:
    def clip(engine) -> None:
        scaler = scaler_fn()
        if scaler is not None:
            scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(params_fn(), max_norm)

    return clip


def train(
    config: TrainConfig,
    resume: bool = False,
    overwrite: bool = False,
    train_dataset: Dataset | None = None,
    val_dataset: Dataset | None | str = "auto",
    handlers: Sequence[Any] = (),
) -> dict:
    """Train a network as ``config`` says; returns the run's history (``TrainingRun(...).run()``).

    Writes ``config.out``: ``config.json``, ``checkpoint.pt`` (every epoch: everything to resume),
    ``model_last.pt`` / ``model_best.pt`` (weights for ``mrsr infer --weights``), ``history.json``
    (per-step losses, per-epoch metrics, the baselines' scores) and ``tensorboard/``. Under
    ``torchrun`` it trains with DDP (rank 0 writes).

    Args:
        config: the run.
        resume: continue the run in ``config.out`` from its last finished epoch; only the length,
            device, AMP, workers, progress and data root may change (see :class:`TrainConfig`).
        overwrite: replace a non-empty ``config.out``.
        train_dataset, val_dataset, handlers: see :class:`TrainingRun`.

    Raises:
        MrsrError: bad options, a manifest naming missing files, an existing run folder without
            ``resume``/``overwrite``, a checkpoint that does not match.
    """
    return TrainingRun(config, resume, overwrite, train_dataset, val_dataset, handlers).run()


class TrainingRun:
    """A training run, built from the parts a MONAI bundle's ``train.json`` names.

    Building it sets up DDP (under torchrun), prepares the run folder, builds the loaders, the
    network, its loss and optimiser, the MONAI ``trainer`` and the validation ``evaluator``, and
    attaches the run's handlers (checkpoints, history, TensorBoard) and ``handlers``. :meth:`run`
    trains and leaves the process group. ``train(config)`` is ``TrainingRun(config).run()``.

    Args:
        config: the run.
        resume: continue the run in ``config.out`` (see :func:`train`).
        overwrite: replace a non-empty ``config.out``.
        train_dataset: the training pairs, each ``{"image": LR, "label": HR, ...}``; default
            :func:`training_dataset` of ``config`` (``train#dataset`` in a bundle).
        val_dataset: whole-volume validation pairs; ``"auto"``: :func:`validation_dataset` of
            ``config``; None: no validation (``validate#dataset``).
        handlers: more handlers for the trainer, objects with ``attach(engine)`` such as MONAI's
            ``StatsHandler`` (``train#handlers``).

    Attributes:
        trainer: the MONAI ``SupervisedTrainer`` (or :class:`MedGANTrainer`).
        evaluator: the validation ``SupervisedEvaluator`` (None without validation).
        network: the network being trained (not DDP-wrapped).
        history: per-step losses, per-epoch metrics, the baselines' scores.
    """

    def __init__(
        self,
        config: TrainConfig,
        resume: bool = False,
        overwrite: bool = False,
        train_dataset: Dataset | None = None,
        val_dataset: Dataset | None | str = "auto",
        handlers: Sequence[Any] = (),
    ) -> None:
        self.ctx = setup_distributed(config.device)
        try:
            self._build(config, resume, overwrite, train_dataset, val_dataset, handlers)
        except BaseException:
            cleanup_distributed()
            raise

    def _build(self, config, resume, overwrite, train_dataset, val_dataset, handlers) -> None:
        ctx = self.ctx
        config, self.checkpoint = _prepare_run_dir(config, resume, overwrite, ctx)
        if config.deterministic:
            set_determinism(config.seed)
            torch.use_deterministic_algorithms(True, warn_only=True)
        self.config, self.out = config, Path(config.out)  # type: ignore[arg-type]
        train_loader, val_loader, steps = _loaders(config, ctx, train_dataset, val_dataset)
        self.epochs, self.steps = _epochs(config, steps)
        run = self.training = build_training(config, ctx, train_loader, self.epochs, self.steps)
        self.trainer, self.network = run.trainer, run.net

        self.writer = None
        if ctx.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            config.save(self.out / "config.json")
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(self.out / "tensorboard"))
        self.history: dict = dict(self.checkpoint["history"]) if self.checkpoint else {}
        self.evaluator = None
        if val_loader is not None:
            self.evaluator = self._evaluator(val_loader)
            ValidationHandler(interval=config.val_every, validator=self.evaluator, epoch_level=True).attach(run.trainer)
            if "baselines" not in self.history:
                self.history["baselines"] = _baseline_scores(val_loader, config, ctx)

        def weights(path: Path) -> None:
            save_weights(path, run.net, config.network, _network_kwargs(config))

        RunRecorder(
            self.history, self.out, lambda: run.state_dict(self.history), weights, self.evaluator, ctx.is_main,
            self.writer, run.net if ctx.distributed else None, run.lr, config.val_every,
        ).attach(run.trainer)  # fmt: skip
        for handler in handlers:
            handler.attach(run.trainer)
        if ctx.is_main and config.progress:
            from ignite.handlers import ProgressBar

            ProgressBar(persist=False).attach(run.trainer, output_transform=lambda o: {"loss": float(o["loss"])})
        if self.checkpoint is not None:
            run.load_state_dict(self.checkpoint, self.epochs, self.steps)

    def _evaluator(self, val_loader: DataLoader) -> Any:
        config, ctx = self.config, self.ctx
        amp = bool(config.amp and ctx.device.type == "cuda")
        trainer = self.trainer
        panels = [PanelWriter(self.writer, lambda: trainer.state.epoch, config.slice_axis)] if self.writer else []
        return build_evaluator(
            self.network, val_loader, config.scale, ctx.device, config.in_channels, config.slice_axis,
            config.val_roi, amp, panels, config.data_consistency,
        )  # fmt: skip

    def run(self) -> dict:
        """Train (what is left of) the run; returns its history. Leaves the process group at the end."""
        ctx = self.ctx
        try:
            if ctx.is_main:
                _announce(self.config, ctx, self.epochs, self.steps, self.history, self.checkpoint is not None)
            if self.trainer.state.epoch < self.epochs:
                self.trainer.run()
            if self.writer is not None:
                self.writer.close()
            if ctx.distributed:
                # the engine's reference cycles keep DDP's reducer (and its gloo work) alive; a process group
                # freed at interpreter exit can abort, so free it now, then let every rank finish (rank 0 writes last)
                self.training = self.trainer = self.evaluator = self.network = None  # type: ignore[assignment]
                gc.collect()
                torch.distributed.barrier()
            return self.history
        finally:
            cleanup_distributed()


@dataclass
class Training:
    """A built training engine and what its checkpoints hold (see :func:`build_training`)."""

    config: TrainConfig
    net: torch.nn.Module
    trainer: Trainer
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    extra: dict = field(default_factory=dict)  # MedGAN's discriminator: its state, loaders, schedulers

    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def state_dict(self, history: dict) -> dict:
        """Everything ``--resume`` needs: weights, optimisers, schedulers, scalers, engine, RNG, history, config."""
        s = {
            "config": self.config.to_dict(),
            "network": self.net.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "trainer": dict(self.trainer.state_dict()),
            "history": history,
            "rng": torch.get_rng_state(),
        }
        if getattr(self.trainer, "scaler", None) is not None:
            s["scaler"] = self.trainer.scaler.state_dict()
        s.update({k: v() for k, v in self.extra.get("state", {}).items()})
        return s

    def load_state_dict(self, ckpt: dict, epochs: int, steps: int) -> None:
        """Restore a checkpoint; a run resumed with more epochs stretches the cosine from here on."""
        saved_steps = int(ckpt["trainer"]["epoch_length"])
        if saved_steps != steps:
            raise MrsrError(
                f"The checkpoint has {saved_steps} steps per epoch, this run {steps}: resume with the same "
                "samples per epoch, batch size and number of ranks."
            )
        self.net.load_state_dict(ckpt["network"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        for key, load in self.extra.get("load", {}).items():
            load(ckpt[key])
        for sched in [self.scheduler, *self.extra.get("schedulers", [])]:
            sched.lr_lambdas[0].total = epochs * steps
        if "scaler" in ckpt and getattr(self.trainer, "scaler", None) is not None:
            self.trainer.scaler.load_state_dict(ckpt["scaler"])
        state = dict(ckpt["trainer"])
        state["max_epochs"] = epochs
        self.trainer.load_state_dict(state)
        torch.set_rng_state(ckpt["rng"])


def build_training(config: TrainConfig, ctx: DistContext, loader: DataLoader, epochs: int, steps: int) -> Training:
    """The network (seeded), its loss, Adam with the per-step schedule, and the MONAI trainer.

    ``SupervisedTrainer`` for supervised networks (a stages network such as ICONet through
    :class:`StagesForward`), :class:`MedGANTrainer` for a network with a ``NetworkSpec.discriminator``
    (CasNet); DDP-wrapped under torchrun.
    """
    from mrsr.losses import get_loss

    torch.manual_seed(config.seed)
    net = build_network(config).to(ctx.device)
    amp = bool(config.amp and ctx.device.type == "cuda")
    loss_options = dict(config.loss)
    loss_options.pop("discriminator", None)  # the discriminator's build options, not the loss's
    loss_fn = get_loss(config.network, **loss_options)
    if isinstance(loss_fn, torch.nn.Module):
        loss_fn = loss_fn.to(ctx.device)
    schedule = CosineSchedule(epochs * steps, 0.01 if config.lr_schedule == "cosine" else 1.0, config.warmup)
    opt = torch.optim.Adam(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, schedule)
    spec = config.spec
    wrapped = StagesForward(net) if spec.stages else net
    if config.data_consistency:  # the weights stay net's own; only the forward pass changes
        from mrsr.networks.consistent import DataConsistent

        wrapped = DataConsistent(wrapped)
    if ctx.distributed:
        wrapped = DistributedDataParallel(wrapped, device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None)
    if spec.discriminator:
        trainer, extra = _gan_trainer(config, ctx, wrapped, opt, schedule, loss_fn, loader, epochs, steps, amp)
    else:
        trainer = SupervisedTrainer(
            device=ctx.device, max_epochs=epochs, train_data_loader=loader, network=wrapped, optimizer=opt,
            loss_function=loss_fn, epoch_length=steps, inferer=StagesInferer() if spec.stages else SimpleInferer(),
            prepare_batch=StageTargetBatch.for_config(config) if spec.stages else default_prepare_batch,
            amp=amp, decollate=False, optim_set_to_none=True,
        )  # fmt: skip
        extra = {}
        if config.grad_clip:
            clip = _grad_clipper(config.grad_clip, lambda: trainer.scaler, net.parameters, opt)
            trainer.add_event_handler(IterationEvents.BACKWARD_COMPLETED, clip)
    for s in [sched, *extra.get("schedulers", [])]:
        LrScheduleHandler(s, print_lr=False, epoch_level=False).attach(trainer)
    return Training(config, net, trainer, opt, sched, extra)


def _announce(config: TrainConfig, ctx: DistContext, epochs: int, steps: int, history: dict, resumed: bool) -> None:
    where = f"{ctx.device}" + (f" x {ctx.world_size} ranks" if ctx.distributed else "")
    verb = "resuming" if resumed else "training"
    print(
        f"{verb} {config.network} ({config.preset or 'class defaults'}) x{config.scale}, "
        f"{config.in_channels} input channel(s), "
        + (f"{config.synthetic:.0%} synthetic samples, " if config.synthetic else "")
        + f"{epochs} epoch(s) of {steps} steps, batch {config.batch_size} per rank, on {where}; "
        f"run folder {config.out}",
        flush=True,
    )
    for name, m in (history.get("baselines") or {}).items():
        print(f"  baseline {name}: val PSNR {m['val_psnr']:.3f} dB, SSIM {m['val_ssim']:.4f}", flush=True)


def _baseline_scores(val_loader: DataLoader, config: TrainConfig, ctx: DistContext) -> dict[str, dict[str, float]]:
    """The interpolation baselines' validation scores, for reference (computed once per run)."""
    from mrsr.networks.baselines import Bicubic, ZeroFill

    scores = {}
    for name, cls in (("zerofill", ZeroFill), ("bicubic", Bicubic)):
        ev = build_evaluator(
            cls(in_channels=config.in_channels, scale=config.scale),
            val_loader,
            config.scale,
            ctx.device,
            config.in_channels,
            config.slice_axis,
        )
        ev.run()
        scores[name] = {k: float(v) for k, v in ev.state.metrics.items()}
    return scores


class MedGANTrainer(Trainer):
    """MedGAN's conditional GAN step on MONAI's ``Trainer``: one discriminator update, then one
    generator update, per batch of (LR, HR) pairs.

    MONAI's ``GanTrainer`` draws the generator's input from a latent distribution and gives the
    generator loss only the fake images; SR is conditional and its generator loss needs the HR
    target, so this engine keeps MONAI's workflow (handlers, AMP scaler, prepare_batch) and only
    replaces ``_iteration``.

    Args:
        device: where to train.
        max_epochs: epochs.
        train_data_loader: batches of ``{"image": LR, "label": HR}``.
        g_network: the generator (CasNet), possibly DDP-wrapped.
        g_optimizer: its optimiser.
        d_network: the discriminator (PatchDiscriminator), possibly DDP-wrapped.
        d_optimizer: its optimiser.
        loss: a :class:`mrsr.losses.MedGANLoss`-like object with ``generator_loss(lr, sr, hr, d_network)``
            and ``discriminator_loss(lr, sr, hr, d_network)`` returning ``(total, terms)``.
        epoch_length: steps per epoch.
        amp: float16 autocast with gradient scalers (CUDA).

    ``engine.state.output``: ``{"image", "label", "pred", "loss" (generator total), "terms": {...}}``.
    """

    def __init__(
        self,
        device: torch.device,
        max_epochs: int,
        train_data_loader: DataLoader,
        g_network: torch.nn.Module,
        g_optimizer: torch.optim.Optimizer,
        d_network: torch.nn.Module,
        d_optimizer: torch.optim.Optimizer,
        loss: Any,
        epoch_length: int | None = None,
        amp: bool = False,
        prepare_batch: Callable = default_prepare_batch,
    ) -> None:
        super().__init__(
            device=device, max_epochs=max_epochs, data_loader=train_data_loader, epoch_length=epoch_length,
            prepare_batch=prepare_batch, amp=amp, decollate=False,
        )  # fmt: skip
        self.g_network, self.g_optimizer, self.d_network, self.d_optimizer = (
            g_network,
            g_optimizer,
            d_network,
            d_optimizer,
        )
        self.network = g_network
        self.loss = loss
        self.g_scaler = torch.amp.GradScaler("cuda") if amp else None
        self.d_scaler = torch.amp.GradScaler("cuda") if amp else None

    def _autocast(self):
        import contextlib

        return torch.autocast("cuda", dtype=torch.float16) if self.amp else contextlib.nullcontext()

    def _step(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer, scaler) -> None:
        optimizer.zero_grad(set_to_none=True)
        if scaler is None:
            loss.backward()
            optimizer.step()
        else:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()

    def _iteration(self, engine: MedGANTrainer, batchdata: dict[str, torch.Tensor]) -> dict:
        lr, hr = engine.prepare_batch(batchdata, engine.state.device, engine.non_blocking)[:2]
        engine.g_network.train()
        engine.d_network.train()
        with engine._autocast():
            sr = engine.g_network(lr)
            d_loss, d_terms = engine.loss.discriminator_loss(lr, sr.detach(), hr, engine.d_network)
        engine._step(d_loss, engine.d_optimizer, engine.d_scaler)
        with engine._autocast():
            g_loss, g_terms = engine.loss.generator_loss(lr, sr, hr, engine.d_network)
        engine._step(g_loss, engine.g_optimizer, engine.g_scaler)
        terms = {
            **{f"g_{k}": v.detach() for k, v in g_terms.items()},
            **{f"d_{k}": v.detach() for k, v in d_terms.items()},
        }
        terms["d_loss"] = d_loss.detach()
        return {"image": lr, "label": hr, "pred": sr.detach(), "loss": g_loss.detach(), "terms": terms}


def _gan_trainer(config, ctx, wrapped, g_opt, schedule, loss_fn, train_loader, epochs, steps, amp):
    from mrsr.networks import get_network

    # the discriminator: the run's preset, overridden by loss["discriminator"] (a dict of its options)
    d_net = get_network(config.spec.discriminator, preset=config.preset, **config.loss.get("discriminator", {})).to(
        ctx.device
    )
    d_opt = torch.optim.Adam(d_net.parameters(), lr=config.lr, betas=(0.5, 0.999))
    d_sched = torch.optim.lr_scheduler.LambdaLR(d_opt, CosineSchedule(schedule.total, schedule.floor, schedule.warmup))
    d_wrapped = (
        DistributedDataParallel(d_net, device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None)
        if ctx.distributed
        else d_net
    )
    trainer = MedGANTrainer(ctx.device, epochs, train_loader, wrapped, g_opt, d_wrapped, d_opt, loss_fn, steps, amp)

    def scalers() -> dict:
        return {
            k: s.state_dict()
            for k, s in (("g_scaler", trainer.g_scaler), ("d_scaler", trainer.d_scaler))
            if s is not None
        }

    extra = {
        "schedulers": [d_sched],
        "state": {
            "discriminator": d_net.state_dict,
            "d_optimizer": d_opt.state_dict,
            "d_scheduler": d_sched.state_dict,
            "scalers": scalers,
        },
        "load": {
            "discriminator": d_net.load_state_dict,
            "d_optimizer": d_opt.load_state_dict,
            "d_scheduler": d_sched.load_state_dict,
            "scalers": lambda s: [
                getattr(trainer, k).load_state_dict(v) for k, v in s.items() if getattr(trainer, k) is not None
            ],
        },
    }
    return trainer, extra
