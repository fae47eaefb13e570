"""One place that knows about processes: rank, world size, who writes.

Single-process runs need nothing; under ``torchrun`` the usual environment
variables (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, ...) are read and the
default process group is started (nccl on GPUs, gloo on CPUs).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class ProcessContext:
    """This process's place in the job.

    Attributes:
        rank: global rank (0 in a single-process run).
        world_size: number of processes.
        device: the device this process trains on.

    Example::

        context = init_process()                             # torchrun's RANK, WORLD_SIZE, ...; else rank 0 of 1
        trainer = DiffusionTrainer(pipe, images, "runs/ddim", config, context)
        if context.is_main:                                  # only rank 0 writes
            print(f"{context.world_size} processes, this one on {context.device}")
    """

    rank: int = 0
    world_size: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        """Only the main process writes checkpoints, sample grids and logs."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def any(self, flag: bool) -> bool:
        """True on every process if ``flag`` is true on any (so all processes stop at the same step)."""
        if not self.distributed:
            return flag
        value = torch.tensor([float(flag)], device=self.device)
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value.item())


def init_process(device: str | None = None) -> ProcessContext:
    """The context from torchrun's environment (single process when absent); starts the process group."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device is None:
        device = f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu"
    chosen = torch.device(device)
    if chosen.type == "cuda":
        torch.cuda.set_device(chosen)
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if chosen.type == "cuda" else "gloo")
    return ProcessContext(rank=rank, world_size=world_size, device=chosen)
