"""Stage evaluate@<variant>: each metric of ``eval.metrics`` per dataset and scale (spec section 4), one JSON of
means ``{metric: {dataset: {x<scale>: mean}}}`` (what ``dvc metrics show`` prints as ``psnr.<dataset>.x2``) and a
TSV with one row per image and one column per metric."""

import argparse
import json
import sys
import time
from pathlib import Path

from liif.config.params import load_params
from liif.config.schema import runtime_settings
from liif.config.variants import check_params
from liif.data.layout import PreparedData
from liif.errors import run_stage
from liif.eval.scores import evaluate_variant, finished_training, per_image_header
from liif.tracking import Tracker


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", required=True, help="configs/<variant>.json")
    parser.add_argument("--data", required=True, help="the prepared data folder")
    parser.add_argument("--models", required=True, help="the variant's model folder")
    parser.add_argument("--metrics", required=True, help="mean of each metric per dataset and scale, JSON")
    parser.add_argument("--per-image", required=True, help="each metric per image, TSV")
    args = parser.parse_args()
    params = load_params()
    config = json.loads(Path(args.config).read_text())
    params = check_params(params, variants=[config["variant"]])
    runtime = runtime_settings(params)
    began = time.perf_counter()
    summary = finished_training(config, args.models)  # before any score is computed or written
    metrics, rows = evaluate_variant(
        config,
        model_dir=args.models,
        prepared=PreparedData(args.data),
        evaluation=params["eval"],
        device=runtime["device"],
    )
    for path in (args.metrics, args.per_image):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(args.metrics).write_text(json.dumps(metrics, indent=2) + "\n")
    Path(args.per_image).write_text("\n".join([per_image_header(metrics), *rows]) + "\n")
    tracking = runtime["tracking"]
    tracker = Tracker(
        enabled=tracking["enabled"],
        experiment=tracking["experiment"],
        run_name=config["variant"],
        run_id=summary.get("mlflow_run_id"),
        stage=f"evaluate@{config['variant']}",
    )
    # psnr/<dataset>/x2, ssim/<dataset>/x2 ... sort and group by metric and dataset in the MLflow compare view
    scores = {f"{m}/{d}/{k}": v for m, by in metrics.items() for d, per in by.items() for k, v in per.items()}
    tracker.log_metrics(scores, model_id=summary.get("mlflow_model_id"))  # the run's, and its logged model's
    tracker.log_metrics({"eval_seconds": time.perf_counter() - began})
    tracker.log_artifact(args.per_image, artifact_path="evaluation")
    tracker.end()
    print(f"{config['variant']}: {json.dumps(metrics)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(run_stage("evaluate", main))
