"""Held-out agreement: the committed default checkpoints scored on benchmark photographs the project never sees.

Set5, Set14 and B100 from ``../shared/datasets/benchmark`` (EDSR layout) with the benchmark protocol of spec
section 4 (Y-PSNR, shave = scale, greyscale originals on their grey level, shipped MATLAB LR at x2-x4, PIL-bicubic
down-sampling beyond). LIIF is the mean over its seed replicates with twice their sd; each fixed-scale
up-sampler only at its own scale. Variants are found by their declared roles, as in the report.

    python benchmarks/held_out.py                       # after dvc repro (or liif repro): models/ and configs/
    python benchmarks/held_out.py --sets Set5 Set14 --scales 2 4
"""

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from liif.config.params import load_params
from liif.config.roles import study_roles
from liif.eval.scores import evaluate_pairs, load_trained
from liif.images import list_images
from liif.models import build_model


def mean_psnr(model, folder: Path, scale: int) -> float:
    lr_dir = folder / "LR_bicubic" / f"X{scale}" if scale <= 4 else None
    scores = evaluate_pairs(
        model, list_images(folder / "HR"), scale=scale, protocol="benchmark", lr_dir=lr_dir, grey_luma=True
    )
    return float(np.mean([s.psnr for s in scores]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default="../shared/datasets/benchmark")
    parser.add_argument("--sets", nargs="+", default=["Set5", "Set14", "B100"])
    parser.add_argument("--scales", nargs="+", type=int, default=[2, 3, 4, 8])
    parser.add_argument("--out", default="benchmarks/held-out", help="folder for held_out.md and .json")
    args = parser.parse_args()
    roles = study_roles(load_params())
    liif = [roles.base, *roles.replicates().get(roles.base, [])]
    fixed = roles.fixed_scale()
    variants = [*liif, roles.bicubic, roles.metasr, *fixed]

    def model_of(variant: str):
        if variant == roles.bicubic:
            return build_model({"name": "bicubic", "args": {}})
        config = json.loads(Path(f"configs/{variant}.json").read_text())
        return load_trained(config, Path("models") / variant / "epoch-last.pth").eval()

    scores = {}
    for variant in variants:
        model = model_of(variant)
        for name in args.sets:
            for s in args.scales:
                if variant in fixed and fixed[variant] != s:
                    continue
                scores[variant, name, s] = mean_psnr(model, Path(args.root) / name, s)
                print(f"{variant} {name} x{s}: {scores[variant, name, s]:.3f}", flush=True)
    rows = []
    for name in args.sets:
        for s in args.scales:
            seeds = [scores[v, name, s] for v in liif]
            row = {"set": name, "scale": f"x{s}", "LIIF": np.mean(seeds), "2 x seed sd": 2 * np.std(seeds, ddof=1)}
            row["minus Bicubic"] = row["LIIF"] - scores[roles.bicubic, name, s]
            row["minus MetaSR"] = row["LIIF"] - scores[roles.metasr, name, s]
            up = next((v for v, k in fixed.items() if k == s), None)
            row["minus up-sampler"] = row["LIIF"] - scores[up, name, s] if up else np.nan
            rows.append(row)
    table = pd.DataFrame(rows)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "held_out.md").write_text(table.to_markdown(index=False, floatfmt="+.2f") + "\n")
    (out / "scores.json").write_text(json.dumps({f"{v} {n} x{s}": p for (v, n, s), p in scores.items()}, indent=1))
    print(table.to_markdown(index=False, floatfmt="+.2f"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
