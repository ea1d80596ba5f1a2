"""Data-parallel training with PyTorch distributed (DDP), launched by ``torchrun``.

``runtime.nproc: N`` makes the train stage start itself again under ``torchrun`` with N processes on
this machine (``launch_command``); a multi-machine run calls ``torchrun`` with a rendezvous on the
stage script directly (docs/gpus.md). Each process learns its rank from the environment torchrun sets.
The global batch stays ``train.batch_size``: every rank takes its share of each batch, and the loss
is scaled so that the averaged gradients equal the gradient of the whole batch's mean loss; the
weights therefore do not depend on the number of processes (up to float rounding). Only rank 0
writes checkpoints, history, MLflow runs and progress; every rank resumes from ``epoch-last.pth``.
A rank that dies ends the others through ``torchrun``, and a collective that waits longer than
``TIMEOUT`` (30 minutes: rank 0 validates and saves while the others wait) fails instead of hanging.
"""

import datetime
import os
import sys
from dataclasses import dataclass

import torch
import torch.distributed as dist

TIMEOUT = datetime.timedelta(minutes=30)  # rank 0 validates and saves while the others wait


@dataclass(frozen=True)
class Ranks:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def under_torchrun() -> bool:
    return "LOCAL_RANK" in os.environ and "WORLD_SIZE" in os.environ


def start(device: torch.device) -> Ranks:
    """Join the process group torchrun prepared (NCCL on CUDA, gloo on CPU); a single process otherwise."""
    if not under_torchrun() or int(os.environ["WORLD_SIZE"]) == 1:
        return Ranks()
    ranks = Ranks(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ["LOCAL_RANK"]))
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=TIMEOUT)
    return ranks


def device_for(ranks: Ranks, device: torch.device) -> torch.device:
    """One GPU per local rank; CPU processes share the CPU."""
    if device.type == "cuda" and ranks.world > 1:
        torch.cuda.set_device(ranks.local_rank)
        return torch.device("cuda", ranks.local_rank)
    return device


def stop():
    if dist.is_initialized():
        dist.destroy_process_group()


def launch_command(nproc: int, script: str, args: list[str]) -> list[str]:
    """``torchrun --standalone --nproc-per-node N script args``, with this interpreter."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}", script, *args]
