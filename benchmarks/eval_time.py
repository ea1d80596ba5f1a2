"""Evaluation-at-scale benchmark: seconds per image for a paper-size model at the paper's test scales.

Scores a paper-size EDSR-baseline-LIIF (random weights unless ``--checkpoint``) on DIV2K-size images as
``evaluate@<variant>`` does (one image at a time as the paper's test.py, its queries decoded in chunks by
the fast renderer on the chosen device) at x2-x30 with the DIV2K protocol, and prints the time per image
and scale, and what the DIV2K evaluation of one variant (100 images x 8 scales) would take at that rate.
The benchmark protocol renders the same way; only the score differs.

    python benchmarks/eval_time.py                  # ../shared/datasets/div2k/0004.png when present, else synthetic
    python benchmarks/eval_time.py --device cuda --images 3
"""

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from machine import machine_line  # benchmarks/machine.py: a script's own folder leads sys.path
from PIL import Image

from liif.eval.scores import evaluate_pairs
from liif.models import LIIF
from liif.models.checkpoint import load_checkpoint
from liif.protocol import DIV2K_SCALES

SHARED_DIV2K = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "div2k" / "DIV2K_train_HR"


def test_images(folder: Path, count: int) -> list[Path]:
    """DIV2K images when ../shared has them, otherwise smooth synthetic 2040 x 1356 ones."""
    found = sorted(SHARED_DIV2K.glob("*.png"))[:count] if SHARED_DIV2K.is_dir() else []
    g = np.random.default_rng(0)
    for i in range(count - len(found)):
        small = g.integers(0, 256, (1356 // 16, 2040 // 16, 3), dtype=np.uint8)
        path = folder / f"synthetic{i}.png"
        Image.fromarray(small).resize((2040, 1356), Image.Resampling.BICUBIC).save(path)
        found.append(path)
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", help="weights to score (default: random paper-size EDSR-baseline-LIIF)")
    parser.add_argument("--images", type=int, default=1)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--scales", type=float, nargs="+", default=list(DIV2K_SCALES))
    args = parser.parse_args()
    if args.checkpoint:
        model, _ = load_checkpoint(args.checkpoint)
    else:
        torch.manual_seed(0)
        model = LIIF(encoder={"name": "edsr-baseline"}).eval()
    with tempfile.TemporaryDirectory() as tmp:
        images = test_images(Path(tmp), args.images)
        print(machine_line())
        print(
            f"{len(images)} image(s) of {Image.open(images[0]).size[0]}x{Image.open(images[0]).size[1]}, "
            f"device {args.device}"
        )
        print("| scale | seconds per image | PSNR (dB) |\n|---|---|---|")
        per_image = {}
        for scale in args.scales:
            began = time.perf_counter()
            scores = evaluate_pairs(model, images, scale=scale, protocol="div2k", device=args.device, progress=False)
            per_image[scale] = (time.perf_counter() - began) / len(images)
            print(f"| x{scale:g} | {per_image[scale]:.1f} | {np.mean([s.psnr for s in scores]):.2f} |")
    div2k = 100 * sum(per_image.values())
    print(
        f"\nthe paper's DIV2K evaluation of one variant (100 images x {len(per_image)} scales) would take about "
        f"{div2k / 3600:.1f} h at this rate"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
