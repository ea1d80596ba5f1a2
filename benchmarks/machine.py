"""The one line every benchmark prints beside its table, so a number always says where and on what code it was measured.

    machine: Intel(R) Xeon(R) Processor, 2 cores, torch 2.13.0+cpu (2 threads), no GPU, git 1a2b3c4+dirty

Imported by the scripts of benchmarks/ (``from machine import machine_line``: a script's own folder leads
``sys.path``). It needs torch only, not the project, so it also works where liif does not import.
"""

import os
import platform
import subprocess
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def cpu_model() -> str:
    """The CPU's model name as the kernel reports it (x86 ``model name``; some ARM kernels give none)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Model", "Hardware") and value.strip():
                return " ".join(value.split())
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def cores() -> str:
    """The cores this process may run on, and the machine's when that is more (a container, taskset)."""
    total = os.cpu_count() or 1
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else total
    return f"{usable} cores" if usable == total else f"{usable} of {total} cores"


def gpu() -> str:
    if not torch.cuda.is_available():
        return "no GPU"
    count = torch.cuda.device_count()
    name = torch.cuda.get_device_name(0)
    return name if count == 1 else f"{name} x{count}"


def git_revision(root: Path = ROOT) -> str:
    """The checkout's short commit, ``+dirty`` when tracked files differ from it (as ``git describe --dirty``);
    a copied tree without ``.git`` says so rather than guessing."""
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--show-toplevel", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        lines = head.stdout.split()
        if head.returncode or len(lines) != 2 or Path(lines[0]).resolve() != root.resolve():
            return "no git checkout"  # not one, or a copy inside another repository's folder
        status = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return "no git checkout"
    dirty = "+dirty" if status.returncode or status.stdout.strip() else ""
    return lines[1] + dirty


def machine_line() -> str:
    """CPU model, cores, torch version and its threads now, GPU name or "no GPU", git revision."""
    return (
        f"machine: {cpu_model()}, {cores()}, torch {torch.__version__} ({torch.get_num_threads()} threads), "
        f"{gpu()}, git {git_revision()}"
    )


if __name__ == "__main__":
    print(machine_line())
