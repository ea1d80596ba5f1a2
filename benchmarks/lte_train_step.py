"""LTE's training step beside LIIF's: the same batch, the same machine, each model's own configuration.

A step is forward, L1 loss, backward and an Adam update (``liif.train.loop.train_step``), on a batch built as
``train@`` builds one (48 x 48 inputs at scales x1-x4, queries at HR pixel centres). Two configurations:

* ``default``: params.yaml's models (EDSR-baseline 2 x 32; LIIF's decoder 4 x 64, LTE hidden_dim 64, 3 x 64),
  batch 8 x 256 queries, as the default study trains them;
* ``paper``: the reference sizes (EDSR-baseline 16 x 64; LIIF 4 x 256, LTE 256 and 3 x 256), 2304 queries per
  input, at ``--paper-batch`` inputs (the paper's 16 by default; smaller on a CPU to save time: the ratio is
  what is measured).

Prints the median step time of each and LTE/LIIF; asserts nothing.

    python benchmarks/lte_train_step.py                        # both configurations
    python benchmarks/lte_train_step.py --paper-batch 4 --threads 1
"""

import argparse

import torch
from machine import machine_line  # benchmarks/machine.py: a script's own folder leads sys.path
from train_step import make_batch, time_steps

from liif.device import resolve_device
from liif.models import LIIF
from liif.models.lte import LTE

SMALL = {"name": "edsr-baseline", "n_resblocks": 2, "n_feats": 32}
CONFIGS = {  # name -> (LIIF, LTE, queries per input)
    "default": (
        lambda: LIIF(encoder=SMALL, decoder_hidden=[64] * 4),
        lambda: LTE(encoder=SMALL, hidden_dim=64, decoder_hidden=[64] * 3),
        256,
    ),
    "paper": (lambda: LIIF(encoder={"name": "edsr-baseline"}), lambda: LTE(encoder={"name": "edsr-baseline"}), 2304),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", choices=list(CONFIGS), default=list(CONFIGS))
    parser.add_argument("--default-batch", type=int, default=8)
    parser.add_argument("--paper-batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=5, help="timed steps per model (median reported)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    print(machine_line())
    rows = []
    for name in args.configs:
        make_liif, make_lte, queries = CONFIGS[name]
        batch_size = args.default_batch if name == "default" else args.paper_batch
        batch = make_batch(batch_size, queries, device)
        seconds = {}
        for label, make in (("LIIF", make_liif), ("LTE", make_lte)):
            torch.manual_seed(0)
            model = make().to(device)
            seconds[label] = time_steps(model, batch, steps=args.steps, warmup=args.warmup, amp=None, device=device)
        rows.append((name, batch_size, queries, seconds["LIIF"], seconds["LTE"]))
    print(f"device {device}, fp32, median of {args.steps} steps after {args.warmup} warm-up\n")
    print("| configuration | batch x queries | LIIF step (s) | LTE step (s) | LTE / LIIF |\n|---|---|---|---|---|")
    for name, batch_size, queries, liif, lte in rows:
        print(f"| {name} | {batch_size} x {queries} | {liif:.3f} | {lte:.3f} | {lte / liif:.2f}x |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
