"""Training-step benchmark: the project's LIIF step against a literal implementation of the spec's query.

One run, the same weights and the same batch for every path. A step is forward, L1 loss, backward and
an Adam update. It prints the median step time of each path, the ratio to the literal path, and the
largest gradient difference from it (same weights, one backward each), then what channels-last and
``torch.compile`` add on top of the project's path.

    python benchmarks/train_step.py                       # the paper configuration (spec 3.1), CPU
    python benchmarks/train_step.py --batch 4 --steps 3   # quicker
    python benchmarks/train_step.py --device cuda --amp bf16

Paper configuration: EDSR-baseline-LIIF (16 x 64 encoder, 4 x 256 decoder), batch 16, 48 x 48 inputs,
2304 queries per input, fp32.
"""

import argparse
import copy
import statistics
import time

import torch
from machine import machine_line  # benchmarks/machine.py: a script's own folder leads sys.path

from liif.device import resolve_device
from liif.models import LIIF, make_coord
from liif.train.loop import AMP_DTYPES, grad_scaler, train_step


def make_batch(batch: int, sample_q: int, device, seed: int = 0) -> dict:
    """A training batch as ``DownsampledPatches`` makes it: inputs in [-1, 1], queries at HR pixel centres."""
    g = torch.Generator().manual_seed(seed)
    inp = torch.rand(batch, 3, 48, 48, generator=g) * 2 - 1
    coords, cells = [], []
    for _ in range(batch):
        side = int(torch.randint(48, 193, (1,), generator=g))  # scale x1-x4
        grid = make_coord((side, side))
        coords.append(grid[torch.randperm(len(grid), generator=g)[:sample_q]])
        cells.append(torch.full((sample_q, 2), 2 / side))
    gt = torch.rand(batch, sample_q, 3, generator=g) * 2 - 1
    return {
        k: v.to(device)
        for k, v in {"inp": inp, "coord": torch.stack(coords), "cell": torch.stack(cells), "gt": gt}.items()
    }


class Literal(torch.nn.Module):
    """The spec's query procedure (``LIIF.query_reference``) behind the usual ``forward(inp, coord, cell)``."""

    def __init__(self, model: LIIF):
        super().__init__()
        self.model = model

    def forward(self, inp, coord, cell):
        return self.model.query_reference(self.model.encoder(inp), coord, cell)


def gradients(model: torch.nn.Module, batch: dict) -> list[torch.Tensor]:
    model.zero_grad(set_to_none=True)
    torch.nn.functional.l1_loss(model(batch["inp"], batch["coord"], batch["cell"]), batch["gt"]).backward()
    return [p.grad.detach().clone() for p in model.parameters()]


def time_steps(model: torch.nn.Module, batch: dict, *, steps: int, warmup: int, amp: str | None, device) -> float:
    """Median seconds of a full training step (``liif.train.loop.train_step``), after warm-up steps."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    dtype = AMP_DTYPES[amp or "fp32"]
    scaler = grad_scaler(dtype, device)
    times = []
    for i in range(warmup + steps):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        train_step(model, batch, optimizer, amp_dtype=dtype, scaler=scaler)
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--sample-q", type=int, default=2304)
    parser.add_argument("--steps", type=int, default=5, help="timed steps per path (median reported)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--device", default="auto")
    autocast = [name for name, dtype in AMP_DTYPES.items() if dtype is not None]
    parser.add_argument("--amp", choices=autocast, help="also time the project's path under autocast")
    parser.add_argument("--no-compile", action="store_true", help="skip torch.compile")
    args = parser.parse_args()
    device = resolve_device(args.device)
    torch.manual_seed(0)
    base = LIIF(encoder={"name": "edsr-baseline"}).to(device)
    batch = make_batch(args.batch, args.sample_q, device)
    print(machine_line())
    print(f"device {device}, batch {args.batch}, 48x48 inputs, {args.sample_q} queries, fp32 unless stated")

    ours = gradients(copy.deepcopy(base), batch)
    literal = gradients(Literal(copy.deepcopy(base)), batch)
    grad_diff = max((a - b).abs().max().item() for a, b in zip(ours, literal, strict=True))

    timings = {}
    timings["literal (spec 2.4 step by step)"] = time_steps(
        Literal(copy.deepcopy(base)), batch, steps=args.steps, warmup=args.warmup, amp=None, device=device
    )
    timings["project"] = time_steps(
        copy.deepcopy(base), batch, steps=args.steps, warmup=args.warmup, amp=None, device=device
    )
    channels_last = copy.deepcopy(base).to(memory_format=torch.channels_last)
    cl_batch = {**batch, "inp": batch["inp"].contiguous(memory_format=torch.channels_last)}
    timings["project + channels-last"] = time_steps(
        channels_last, cl_batch, steps=args.steps, warmup=args.warmup, amp=None, device=device
    )
    if args.amp:
        timings[f"project + {args.amp} autocast"] = time_steps(
            copy.deepcopy(base), batch, steps=args.steps, warmup=args.warmup, amp=args.amp, device=device
        )
    if not args.no_compile:
        try:
            compiled = torch.compile(copy.deepcopy(base))
            timings["project + torch.compile"] = time_steps(
                compiled, batch, steps=args.steps, warmup=args.warmup + 1, amp=None, device=device
            )
        except Exception as e:  # noqa: BLE001 - a missing compiler is a result to report, not a crash
            print(f"torch.compile unavailable here: {type(e).__name__}: {str(e).splitlines()[0][:200]}")

    reference = timings["literal (spec 2.4 step by step)"]
    print("\n| path | step (s) | speed-up vs literal |\n|---|---|---|")
    for name, seconds in timings.items():
        print(f"| {name} | {seconds:.3f} | {reference / seconds:.2f}x |")
    print(f"\nlargest gradient difference, project vs literal, same weights and batch: {grad_diff:.2e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
