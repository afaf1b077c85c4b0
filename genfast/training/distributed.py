"""Data-parallel training under torchrun, set up in one place.

`torchrun --nproc_per_node=K -m genfast <workflow> train ...` starts K processes with RANK,
WORLD_SIZE and LOCAL_RANK in their environment; `setup()` reads them, picks each process's device,
joins the process group (gloo on the CPU, NCCL on GPUs) and says which rank writes files (rank 0
only: checkpoints, weights, sample grids, logs, the progress bar). Without torchrun it is one
process and nothing is initialised.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from genfast.checks import check_device


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    own_group: bool = False        # we initialised the process group, so we destroy it

    @property
    def main(self) -> bool:
        """The process that writes files and draws the progress bar."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        """The model as the training step should call it: DistributedDataParallel when distributed."""
        if not self.distributed:
            return model
        from torch.nn.parallel import DistributedDataParallel

        return DistributedDataParallel(model, device_ids=[self.device.index] if self.device.type == "cuda" else None)

    def all_mean(self, value: float) -> float:
        """The mean of a number over the ranks (a logged loss, a metric)."""
        if not self.distributed:
            return value
        import torch.distributed as dist

        t = torch.tensor([float(value)], device=self.device if self.device.type == "cuda" else "cpu")
        dist.all_reduce(t)
        return t.item() / self.world

    def barrier(self) -> None:
        if self.distributed:
            import torch.distributed as dist

            dist.barrier()

    def close(self) -> None:
        """Wait for every rank, then leave the process group if we joined it."""
        if self.distributed:
            import torch.distributed as dist

            dist.barrier()
            if self.own_group:
                dist.destroy_process_group()


def env() -> tuple[int, int, int]:
    """(rank, world size, local rank) from torchrun's environment; (0, 1, 0) outside it."""
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1")), int(os.environ.get("LOCAL_RANK", "0"))


def setup(device=None) -> Dist:
    """The process's rank and device, and the process group joined when WORLD_SIZE > 1.

    device: None (cuda:LOCAL_RANK when GPUs are present, else the CPU), or "cpu" / "cuda" / "cuda:N"
    (checked: a missing GPU is an error naming `device`)."""
    rank, world, local_rank = env()
    if device is None and world > 1 and torch.cuda.is_available():
        device = f"cuda:{local_rank}"
    dev = check_device(device)
    if dev.type == "cuda" and world > 1 and dev.index is None:
        dev = torch.device("cuda", local_rank)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    own = False
    if world > 1:
        import torch.distributed as dist

        if not dist.is_initialized():
            dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
            own = True
        rank, world = dist.get_rank(), dist.get_world_size()
    return Dist(rank=rank, world=world, local_rank=local_rank, device=dev, own_group=own)
