"""DDP set-up for ``torchrun``: one process per GPU (NCCL) or per CPU worker (gloo)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from mrsr.errors import MrsrError
from mrsr.runtime import resolve_device

__all__ = ["DistContext", "setup_distributed", "all_reduce_mean", "check_in_sync", "cleanup_distributed"]


@dataclass
class DistContext:
    """This process's place in the run: ``rank`` of ``world_size``, and the device it trains on."""

    rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0 writes checkpoints, logs and TensorBoard."""
        return self.rank == 0


def setup_distributed(device: str = "auto") -> DistContext:
    """Join the process group when started by ``torchrun`` (``WORLD_SIZE`` > 1), else run alone.

    Each rank takes ``cuda:LOCAL_RANK`` when CUDA is asked for (or ``"auto"`` finds it) and uses NCCL;
    on CPUs the backend is gloo.

    Args:
        device: ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"`` (``N`` is ignored under torchrun).
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext(device=resolve_device(device))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    wants_cuda = device == "auto" or device.startswith("cuda")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise MrsrError("--device cuda was asked for but CUDA is not available; use --device cpu (gloo).")
    use_cuda = wants_cuda and torch.cuda.is_available()
    if use_cuda:
        if local_rank >= torch.cuda.device_count():
            raise MrsrError(
                f"LOCAL_RANK {local_rank} but only {torch.cuda.device_count()} GPU(s): "
                "start at most that many processes."
            )
        torch.cuda.set_device(local_rank)
        dev = torch.device("cuda", local_rank)
    else:
        dev = torch.device("cpu")
    if not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    return DistContext(rank=dist.get_rank(), world_size=dist.get_world_size(), device=dev)


def all_reduce_mean(value: torch.Tensor) -> torch.Tensor:
    """The mean of a tensor over ranks (itself when not distributed); a detached copy."""
    value = value.detach().clone()
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(value)
        value /= dist.get_world_size()
    return value


def check_in_sync(module: torch.nn.Module) -> None:
    """Raise if the ranks' parameters differ (they must be identical after every DDP step).

    Raises:
        MrsrError: the checksums of the parameters differ between ranks.
    """
    if not (dist.is_available() and dist.is_initialized()):
        return
    total = torch.stack([p.detach().double().sum() for p in module.parameters()]).sum().reshape(1).cpu()
    gathered = [torch.zeros_like(total) for _ in range(dist.get_world_size())]
    dist.all_gather(gathered, total) if dist.get_backend() == "gloo" else _gather_cuda(gathered, total)
    if any(not torch.equal(g, gathered[0]) for g in gathered):
        raise MrsrError(f"DDP ranks are out of sync: parameter checksums {[float(g) for g in gathered]}.")


def _gather_cuda(gathered: list[torch.Tensor], total: torch.Tensor) -> None:
    dev = torch.device("cuda", torch.cuda.current_device())
    out = [g.to(dev) for g in gathered]
    dist.all_gather(out, total.to(dev))
    for g, o in zip(gathered, out):
        g.copy_(o.cpu())


def cleanup_distributed() -> None:
    """Leave the process group (if any)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
