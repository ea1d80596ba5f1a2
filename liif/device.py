"""Which torch device to run on (``auto``, ``cpu`` or ``cuda[:N]``), and how many loader workers to give it."""

import os

import torch

from liif.errors import UserError


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``auto`` picks CUDA when available; asking for CUDA without one is an error."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError("device 'cuda' requested but no CUDA device is available; use --device cpu or auto")
    if device != "cpu" and not device.startswith("cuda"):
        raise UserError(f"unknown device {device!r}: expected auto, cpu or cuda[:N]")
    return torch.device(device)


def resolve_workers(workers: int | str, device: torch.device, processes: int = 1) -> int:
    """``auto``: no worker processes on a CPU, whose cores all compute already (measured on 2 cores: 1 or 2
    workers ran at 0.80x and 0.98x of inline loading); beside a GPU up to 8, sharing the cores with the
    other training ``processes`` of the machine."""
    if workers != "auto":
        if not isinstance(workers, int) or workers < 0:
            raise UserError(f"runtime.workers {workers!r}: expected auto or a number >= 0")
        return workers
    return 0 if device.type == "cpu" else max(0, min(8, (os.cpu_count() or 1) // processes - 1))
