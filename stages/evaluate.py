"""Stage evaluate@<variant>: PSNR per dataset and scale (spec section 4) into metrics/eval/<variant>.json."""

import argparse
import json
import sys
from pathlib import Path

from liif.checkpoint import load_checkpoint
from liif.config import load_params
from liif.evaluate import evaluate_pairs, evaluate_task, list_images
from liif.tracking import Tracker


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("variant")
    args = parser.parse_args()
    params = load_params()
    ev = params["eval"]
    model_dir = Path("models") / args.variant
    config = json.loads((Path("configs") / f"{args.variant}.json").read_text())
    metrics, rows = {}, ["dataset\tscale\timage\tpsnr\tssim"]
    task = config["train"].get("task")
    if task:  # the size-varied study: the variant's own L -> H task, reported with epoch-best (spec 3.4)
        model, _ = load_checkpoint(model_dir / ev["task_checkpoint"])
        dataset, (lr_size, hr_size) = config["train"]["dataset"], task
        split = Path("data/prepared") / dataset / "test"
        scores = evaluate_task(model, split / str(lr_size), split / str(hr_size), device=ev["device"],
                               desc=f"{args.variant} {dataset} {lr_size}->{hr_size}")  # fmt: skip
        metrics[dataset] = {f"{lr_size}-{hr_size}": round(sum(s.psnr for s in scores) / len(scores), 4)}
        rows += [f"{dataset}\t{lr_size}-{hr_size}\t{s.name}\t{s.psnr:.4f}\t{s.ssim:.5f}" for s in scores]
    else:
        model, _ = load_checkpoint(model_dir / ev["checkpoint"])
    for dataset, spec in ev["datasets"].items() if not task else ():
        split = Path("data/prepared") / dataset / "test"
        hr_paths = list_images(split / "HR")
        metrics[dataset] = {}
        for scale in spec["scales"]:
            lr_dir = split / "LR_bicubic" / f"X{scale}"
            scores = evaluate_pairs(
                model, hr_paths, scale=scale, protocol=spec["protocol"], lr_dir=lr_dir if lr_dir.is_dir() else None,
                device=ev["device"], desc=f"{args.variant} {dataset} x{scale}",
            )  # fmt: skip
            metrics[dataset][f"x{scale}"] = round(sum(s.psnr for s in scores) / len(scores), 4)
            rows += [f"{dataset}\t{scale}\t{s.name}\t{s.psnr:.4f}\t{s.ssim:.5f}" for s in scores]
    out = Path("metrics/eval")
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{args.variant}.json").write_text(json.dumps(metrics, indent=2) + "\n")
    (out / f"{args.variant}.tsv").write_text("\n".join(rows) + "\n")
    summary = json.loads((model_dir / "summary.json").read_text())
    tracker = Tracker(enabled=params["tracking"]["enabled"], experiment=params["tracking"]["experiment"],
                      run_name=args.variant, run_id=summary.get("mlflow_run_id"), stage=f"evaluate@{args.variant}")  # fmt: skip
    tracker.log_metrics({f"{d}_{k}": v for d, per in metrics.items() for k, v in per.items()})
    tracker.log_artifact(out / f"{args.variant}.tsv", artifact_path="evaluation")
    tracker.end()
    print(f"{args.variant}: {json.dumps(metrics)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
