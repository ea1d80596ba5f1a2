"""Data-loading benchmark: training throughput of a variant with 0, 1 and 2 DataLoader worker processes.

Trains the variant's real training set (``data/prepared``, so run ``dvc repro prepare`` first) for a few
epochs per setting, from the same initial weights, and prints samples per second with data loading
included, plus the share of an inline (0-worker) step spent making the batch.

    python benchmarks/data_loading.py                    # the default profile's liif
    python benchmarks/data_loading.py --variant metasr --epochs 3 --workers 0 2 4
"""

import argparse
import time

import torch
from machine import machine_line  # benchmarks/machine.py: a script's own folder leads sys.path

from liif.config.params import load_params
from liif.config.variants import resolve_variant
from liif.data.layout import PreparedData
from liif.models import build_model
from liif.train.loop import make_loader, train_step
from liif.train.patches import make_training_sets


def throughput(config: dict, train_set, *, workers: int, epochs: int) -> tuple[float, float]:
    """(samples per second over ``epochs`` epochs after one warm-up epoch, seconds spent waiting for batches)."""
    torch.manual_seed(0)
    model = build_model(config["model"]).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=config["train"]["lr"])
    loader = make_loader(train_set, batch_size=config["train"]["batch_size"], seed=0, shuffle=True, workers=workers)
    samples, waiting, began = 0, 0.0, None
    for epoch in range(epochs + 1):
        if epoch == 1:
            samples, waiting, began = 0, 0.0, time.perf_counter()
        loader.batch_sampler.set_epoch(epoch)
        asked = time.perf_counter()
        for batch in loader:
            waiting += time.perf_counter() - asked
            train_step(model, batch, optimizer)
            samples += len(batch["inp"])
            asked = time.perf_counter()
    return samples / (time.perf_counter() - began), waiting


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", default="liif")
    parser.add_argument("--data", default="data/prepared")
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs per setting (after one warm-up)")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    config = resolve_variant(load_params(), args.variant)
    train_set, _ = make_training_sets(config, PreparedData(args.data))
    print(machine_line())
    print(f"{args.variant}: {len(train_set)} samples per epoch, batch {config['train']['batch_size']}")
    print("| workers | samples/s | waiting for batches (s) |\n|---|---|---|")
    rates = {}
    for workers in args.workers:
        rates[workers], waiting = throughput(config, train_set, workers=workers, epochs=args.epochs)
        print(f"| {workers} | {rates[workers]:.1f} | {waiting:.2f} |")
    if 0 in rates:
        print(" ".join(f"{w} workers: {rates[w] / rates[0]:.2f}x of inline." for w in rates if w))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
