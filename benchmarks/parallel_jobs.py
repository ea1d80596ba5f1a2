"""Jobs x threads: training throughput of one variant trained by J processes side by side with T threads each.

What ``liif repro --jobs auto`` is chosen from. Each process trains the variant's real training set
(``data/prepared``, so run ``dvc repro prepare`` first) for a few epochs after one warm-up epoch, from the same
initial weights; J processes start together. Throughput is epochs per minute summed over the processes.

    python benchmarks/parallel_jobs.py                            # 1x2 and 2x1 on the default profile's liif
    python benchmarks/parallel_jobs.py --layouts 1x16 2x8 4x4 16x1 --epochs 3
    python benchmarks/parallel_jobs.py --layouts 2x1 2x1+compile 2x1+w1   # torch.compile, 1 DataLoader worker each
"""

import argparse
import json
import os
import subprocess
import sys
import time

import torch
from machine import machine_line  # benchmarks/machine.py: a script's own folder leads sys.path

from liif.config.params import load_params
from liif.config.variants import resolve_variant
from liif.data.layout import PreparedData
from liif.models import build_model
from liif.train.loop import make_loader, train_step
from liif.train.patches import make_training_sets


def seconds_per_epoch(variant: str, data: str, *, epochs: int, compile_model: bool = False, workers: int = 0) -> float:
    """(in a worker process) Mean seconds per training epoch after one warm-up epoch (which also compiles)."""
    config = resolve_variant(load_params(), variant)
    train_set, _ = make_training_sets(config, PreparedData(data))
    torch.manual_seed(0)
    model = build_model(config["model"]).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=config["train"]["lr"])
    loader = make_loader(train_set, batch_size=config["train"]["batch_size"], seed=0, shuffle=True, workers=workers)
    step_model = torch.compile(model) if compile_model else model  # as runtime.compile does
    began = None
    for epoch in range(epochs + 1):
        if epoch == 1:
            began = time.perf_counter()
        loader.batch_sampler.set_epoch(epoch)
        for batch in loader:
            train_step(step_model, batch, optimizer)
    return (time.perf_counter() - began) / epochs


def run_layout(layout: str, *, variant: str, data: str, epochs: int) -> list[float]:
    """Seconds per epoch of each process of ``layout`` (``JOBSxTHREADS``, optionally ``+compile`` and ``+w<N>``
    DataLoader workers per job), all started together."""
    shape, *options = layout.split("+")
    jobs, threads = (int(n) for n in shape.split("x"))
    workers = next((int(o[1:]) for o in options if o.startswith("w")), 0)
    code = (
        "import json, sys, torch; torch.set_num_threads(int(sys.argv[1]));"
        "sys.path.insert(0, 'benchmarks'); from parallel_jobs import seconds_per_epoch;"
        "print(json.dumps(seconds_per_epoch(sys.argv[2], sys.argv[3], epochs=int(sys.argv[4]), "
        "compile_model=sys.argv[5] == '1', workers=int(sys.argv[6]))))"
    )
    flags = ["1" if "compile" in options else "0", str(workers)]
    command = [sys.executable, "-c", code, str(threads), variant, data, str(epochs), *flags]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    procs = [subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env) for _ in range(jobs)]
    return [json.loads(p.communicate()[0]) for p in procs]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", default="liif")
    parser.add_argument("--data", default="data/prepared")
    parser.add_argument("--epochs", type=int, default=4, help="timed epochs per process (after one warm-up)")
    parser.add_argument("--layouts", nargs="+", default=["1x2", "2x1"], help="JOBSxTHREADS[+compile][+wN]")
    args = parser.parse_args()
    print(machine_line())
    print(f"{args.variant}: {args.epochs} timed epochs per process\n")
    print("| jobs x threads | s per epoch (each job) | epochs per minute (all jobs) | vs first |\n|---|---|---|---|")
    first = None
    for layout in args.layouts:
        seconds = run_layout(layout, variant=args.variant, data=args.data, epochs=args.epochs)
        rate = sum(60 / s for s in seconds)
        first = first or rate
        shown = ", ".join(f"{s:.2f}" for s in seconds)
        print(f"| {layout} | {shown} | {rate:.1f} | {rate / first:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
