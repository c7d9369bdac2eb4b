"""Multi-process training under ``torchrun`` (gloo on CPU, NCCL on GPU).

Gradients are averaged by hand with one all-reduce per network per step rather than through
DistributedDataParallel: R1 needs a double backward and the G/D phases freeze each other's
parameters, which DDP's reducer does not follow well.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    """This process's place in the job."""

    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_from_env(device: torch.device) -> DistInfo:
    """Join the process group that ``torchrun`` describes in the environment (no-op when alone)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return DistInfo(rank=dist.get_rank(), world_size=dist.get_world_size())


def average_gradients(module: torch.nn.Module, info: DistInfo) -> None:
    """Average ``.grad`` of every parameter over all processes (one flat all-reduce)."""
    if info.world_size == 1:
        return
    params = [p for p in module.parameters() if p.requires_grad]
    if not params:
        return
    # Every rank sends every parameter in the same order (zeros where it has no gradient), so the
    # buffers always line up.
    flat = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).flatten() for p in params])
    dist.all_reduce(flat)
    flat /= info.world_size
    offset = 0
    for p in params:
        n = p.numel()
        if p.grad is None:
            p.grad = torch.zeros_like(p)
        p.grad.copy_(flat[offset : offset + n].view_as(p.grad))
        offset += n


def broadcast_module(module: torch.nn.Module, info: DistInfo) -> None:
    """Give every process rank 0's parameters and buffers."""
    if info.world_size == 1:
        return
    for t in list(module.parameters()) + list(module.buffers()):
        dist.broadcast(t.data, src=0)


def barrier(info: DistInfo) -> None:
    if info.world_size > 1:
        dist.barrier()


def shutdown(info: DistInfo) -> None:
    if info.world_size > 1 and dist.is_initialized():
        dist.destroy_process_group()
