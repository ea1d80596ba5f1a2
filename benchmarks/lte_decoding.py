"""LTE's decoding beside LIIF's: output pixels per second and peak memory of the tiled, chunked renderer.

Both models are paper size (EDSR-baseline encoder; LIIF's 5-layer decoder, LTE's estimators and 4-layer MLP),
with the same input. Each render runs in a fresh subprocess, so one peak does not hide another; "peak MB" is
what the render added to its process, "output MB" the returned image alone, so what is left is the working
memory, which the chunks bound whatever the output size. Prints measured LTE/LIIF ratios; asserts nothing.

    python benchmarks/lte_decoding.py                   # x4 (64x64 -> 256x256) and x30 (48x48 -> 1440x1440)
    python benchmarks/lte_decoding.py --literal         # plus LTE's literal path (query_reference) at x4
    python benchmarks/lte_decoding.py --device cuda     # on a GPU (peak: torch.cuda.max_memory_allocated)
"""

import argparse
import json
import subprocess
import sys
import time

import torch
from decode import peak_rss_mb, rss_mb  # the same memory probes as the LIIF decoding benchmark
from machine import machine_line  # benchmarks/machine.py: a script's own folder leads sys.path

CASES = {"x4": ((64, 64), (256, 256)), "x30": ((48, 48), (1440, 1440))}


def build(name: str, checkpoint: str | None):
    from liif.models import LIIF
    from liif.models.checkpoint import load_checkpoint
    from liif.models.lte import LTE

    if checkpoint:
        return load_checkpoint(checkpoint)[0]
    torch.manual_seed(0)
    return (LTE if name == "lte" else LIIF)(encoder={"name": "edsr-baseline"}).eval()


def worker(args) -> None:
    from liif.eval.render import render_image, render_reference

    torch.set_grad_enabled(False)
    model = build(args.model, args.checkpoint)
    (h, w), size = CASES[args.case]
    g = torch.Generator().manual_seed(1)
    lr = torch.nn.functional.interpolate(torch.rand(1, 3, h // 8, w // 8, generator=g), (h, w), mode="bicubic")[0]
    lr = torch.round(lr.clamp(0, 1) * 255) / 255
    cuda = args.device == "cuda"
    if cuda:
        model = model.cuda()
        render_image(model, lr, (h, w), device="cuda")  # CUDA context and kernels outside the measurement
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    base = rss_mb()
    best = float("inf")
    for _ in range(args.repeat):
        start = time.perf_counter()
        if args.path == "literal":
            render_reference(model, lr, size, device=args.device, chunk=args.chunk)
        else:
            render_image(model, lr, size, device=args.device, chunk=args.chunk)
        if cuda:
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    peak = torch.cuda.max_memory_allocated() / 2**20 if cuda else peak_rss_mb() - base
    print(json.dumps({"seconds": best, "peak_mb": peak, "pixels": size[0] * size[1]}))


def measure(model: str, case: str, path: str, opts) -> dict:
    cmd = [sys.executable, __file__, "--worker", "--model", model, "--case", case, "--path", path]
    cmd += ["--device", opts.device, "--chunk", str(opts.chunk), "--repeat", str(opts.repeat if case == "x4" else 1)]
    checkpoint = opts.lte_checkpoint if model == "lte" else opts.liif_checkpoint
    if checkpoint:
        cmd += ["--checkpoint", checkpoint]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"{model} {case} {path} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--model", default="lte", choices=["lte", "liif"], help=argparse.SUPPRESS)
    parser.add_argument("--case", default="x4", choices=sorted(CASES), help=argparse.SUPPRESS)
    parser.add_argument("--path", default="fast", choices=["fast", "literal"], help=argparse.SUPPRESS)
    parser.add_argument("--checkpoint", help=argparse.SUPPRESS)
    parser.add_argument("--lte-checkpoint", help="LTE weights (default: random EDSR-baseline-LTE)")
    parser.add_argument("--liif-checkpoint", help="LIIF weights (default: random EDSR-baseline-LIIF)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--chunk", type=int, default=4096, help="queries per decoder call (the renderer's default)")
    parser.add_argument("--repeat", type=int, default=3, help="renders of the x4 case; the best time is kept")
    parser.add_argument("--literal", action="store_true", help="also LTE's literal query path at x4")
    args = parser.parse_args()
    if args.worker:
        return worker(args)

    print(machine_line())
    print(f"device {args.device}, chunk {args.chunk}")
    print(f"{'case':<24}{'model':<13}{'px/s':>11}{'peak MB':>9}{'output MB':>11}")
    ratios = []
    for case, ((h, w), (oh, ow)) in CASES.items():
        label = f"{case} {h}x{w}->{oh}x{ow}"
        runs = {"lte": measure("lte", case, "fast", args), "liif": measure("liif", case, "fast", args)}
        if args.literal and case == "x4":
            runs["lte literal"] = measure("lte", case, "literal", args)
        for name, run in runs.items():
            output_mb = run["pixels"] * 3 * 4 / 2**20
            print(
                f"{label:<24}{name:<13}{run['pixels'] / run['seconds']:>11,.0f}{run['peak_mb']:>9.0f}{output_mb:>11.0f}"
            )
        lte, liif = runs["lte"], runs["liif"]
        ratios.append(
            f"{label}: LTE decodes at {liif['seconds'] / lte['seconds']:.2f}x LIIF's pixels per second, "
            f"with {lte['peak_mb'] / max(liif['peak_mb'], 1e-9):.2f}x its peak memory"
            + (
                f"; its fast path runs {runs['lte literal']['seconds'] / lte['seconds']:.2f}x its literal one"
                if "lte literal" in runs
                else ""
            )
        )
    print("\n".join(["", *ratios]))


if __name__ == "__main__":
    main()
