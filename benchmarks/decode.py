"""Decoding benchmark: the fast rendering path against the spec's literal query procedure.

For each case it prints output pixels per second of both paths on the same
weights and input, their ratio, the largest absolute difference, and the peak
memory each one added to its process (every measurement runs in a fresh
subprocess, so peaks do not leak into each other).

    python benchmarks/decode.py                       # x4 and x30, fast vs plain
    python benchmarks/decode.py --large               # plus 1024x1024 -> 4096x4096, fast path only
    python benchmarks/decode.py --checkpoint CKPT     # other weights (default: random EDSR-baseline-LIIF)

Targets on the 2-core CPU: fast/plain >= 1.7x with max difference <= 1e-5; the
large render within 2 GB of peak memory.
"""

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from machine import machine_line  # benchmarks/machine.py: a script's own folder leads sys.path

CASES = {"x4": ((64, 64), (256, 256)), "x30": ((48, 48), (1440, 1440)), "large": ((1024, 1024), (4096, 4096))}


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker(args):
    from liif.eval.render import render_image, render_reference
    from liif.models import LIIF
    from liif.models.checkpoint import load_checkpoint

    torch.set_grad_enabled(False)
    if args.checkpoint:
        model, _ = load_checkpoint(args.checkpoint)
    else:
        torch.manual_seed(0)
        model = LIIF(encoder={"name": "edsr-baseline"}).eval()
    (h, w), size = CASES[args.case]
    g = torch.Generator().manual_seed(1)
    lr = torch.nn.functional.interpolate(torch.rand(1, 3, h // 8, w // 8, generator=g), (h, w), mode="bicubic")[0]
    lr = torch.round(lr.clamp(0, 1) * 255) / 255
    if args.device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    base = rss_mb()
    best = float("inf")
    for _ in range(args.repeat):
        start = time.perf_counter()
        if args.path == "fast":
            out = render_image(model, lr, size, device=args.device, chunk=args.chunk, tile=args.tile)
        else:
            out = render_reference(model, lr, size, device=args.device, chunk=30000)
        best = min(best, time.perf_counter() - start)
    result = {"seconds": best, "peak_mb": peak_rss_mb() - base, "pixels": size[0] * size[1]}
    if args.device == "cuda":
        result["cuda_peak_mb"] = torch.cuda.max_memory_allocated() / 2**20
    if args.save:
        np.save(args.save, out.numpy())
    print(json.dumps(result))


def run_worker(case, path, opts, save=None):
    cmd = [sys.executable, __file__, "--worker", "--case", case, "--path", path, "--device", opts.device]
    cmd += ["--repeat", str(opts.repeat if case == "x4" else 1), "--chunk", str(opts.chunk), "--tile", str(opts.tile)]
    if opts.checkpoint:
        cmd += ["--checkpoint", opts.checkpoint]
    if save:
        cmd += ["--save", str(save)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"{case}/{path} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--case", default="x4", choices=sorted(CASES))
    parser.add_argument("--path", default="fast", choices=["fast", "plain"])
    parser.add_argument("--save")
    parser.add_argument("--checkpoint")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--chunk", type=int, default=4096)
    parser.add_argument("--tile", type=int, default=512)
    parser.add_argument("--large", action="store_true", help="also render 1024x1024 -> 4096x4096 (fast path)")
    args = parser.parse_args()
    if args.worker:
        return worker(args)

    print(machine_line())
    print(f"device {args.device}")
    header = (
        f"{'case':<22}{'fast px/s':>12}{'plain px/s':>12}{'ratio':>8}{'max |diff|':>12}{'fast MB':>9}{'plain MB':>10}"
    )
    print(header)
    with tempfile.TemporaryDirectory() as tmp:
        for case in ("x4", "x30"):
            fast = run_worker(case, "fast", args, save=Path(tmp) / "fast.npy")
            plain = run_worker(case, "plain", args, save=Path(tmp) / "plain.npy")
            diff = np.abs(np.load(Path(tmp) / "fast.npy") - np.load(Path(tmp) / "plain.npy")).max()
            (h, w), (oh, ow) = CASES[case]
            label = f"{case} {h}x{w}->{oh}x{ow}"
            fps, pps = fast["pixels"] / fast["seconds"], plain["pixels"] / plain["seconds"]
            print(
                f"{label:<22}{fps:>12,.0f}{pps:>12,.0f}{fps / pps:>7.2f}x{diff:>12.2e}"
                f"{fast['peak_mb']:>9.0f}{plain['peak_mb']:>10.0f}"
            )
        if args.large:
            big = run_worker("large", "fast", args)
            print(
                f"{'large 1024->4096':<22}{big['pixels'] / big['seconds']:>12,.0f}{'-':>12}{'-':>8}{'-':>12}"
                f"{big['peak_mb']:>9.0f}{'-':>10}   ({big['seconds']:.0f} s, output alone "
                f"{big['pixels'] * 12 / 2**20:.0f} MB)"
            )


if __name__ == "__main__":
    main()
