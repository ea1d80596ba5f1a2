"""Stage report: reports/ (README.md, one page per research question, figures, dvc plots data), the compact
headline metrics for ``dvc exp show``, and an MLflow run named ``report`` holding the same tables and figures."""

import argparse
import hashlib
import json
import sys
from pathlib import Path

import pandas as pd

from liif import figures, report
from liif.images import list_images
from liif.layout import PreparedData
from liif.pages import Context, write_pages
from liif.params import load_params, runtime_settings
from liif.tracking import Tracker, git_revision, repo_root
from liif.variants import resolve_variant


def data_sources(params: dict, prepared: PreparedData) -> pd.DataFrame:
    rows = []
    for name, spec in params["data"]["datasets"].items():
        manifest = prepared.manifest(name)
        digest = hashlib.sha256(manifest.read_bytes()).hexdigest()[:16] if manifest.is_file() else "–"
        for split in ("train", "val", "test"):
            root = prepared.split(name, split)
            if root.is_dir():
                count = (
                    len({p.name for p in root.rglob("*.png")})
                    if not (root / "HR").is_dir()
                    else len(list_images(root / "HR"))
                )
                rows.append(
                    {
                        "dataset": name,
                        "source": spec["source"],
                        "split": split,
                        "images": count,
                        "manifest sha256": digest,
                    }
                )
    return pd.DataFrame(rows)


def encoders(params: dict) -> dict:
    """Each variant's encoder name (None for Bicubic): the paper's tables are set against same-encoder rows."""
    out = {}
    for variant in params["variants"]:
        args = resolve_variant(params, variant)["model"]["args"]
        out[variant] = args["encoder"]["name"] if "encoder" in args else None
    return out


def validation_words(params: dict) -> str:
    t = params["train"]
    name = t.get("val_dataset") or t["dataset"]
    if t["val_split"] == "test":  # the paper's protocol: the first images of the test set
        return f"the first images of the `{name}` test split, as the paper validates (so they are not held out)"
    return f"the `{name}` {t['val_split']} split (held out of training and never tested)"


def timings(summaries: pd.DataFrame, eval_seconds: dict) -> pd.DataFrame:
    rows = []
    for _, s in summaries.iterrows():
        rows.append(
            {
                "variant": s["variant"],
                "train (s)": s.get("train_seconds"),
                "evaluate (s)": eval_seconds.get(s["variant"]),
            }
        )
    return pd.DataFrame(rows)


def variant_runs(run_ids: list[str], enabled: bool) -> pd.DataFrame:
    """The variants' MLflow runs (``search_runs``), for their evaluation time and parent; empty when off."""
    if not enabled or not run_ids:
        return pd.DataFrame()
    try:
        import mlflow

        from liif.tracking import _quiet_mlflow, store_paths

        with _quiet_mlflow():
            mlflow.set_tracking_uri(store_paths()[0])
            runs = mlflow.search_runs(search_all_experiments=True, max_results=5000)
    except Exception:  # noqa: BLE001 - timings and nesting are a courtesy
        return pd.DataFrame()
    return runs[runs["run_id"].isin(run_ids)] if not runs.empty else runs


def eval_times(runs: pd.DataFrame) -> dict:
    if runs.empty or "metrics.eval_seconds" not in runs:
        return {}
    return dict(zip(runs["tags.variant"], runs["metrics.eval_seconds"]))


def orphans(runs: pd.DataFrame) -> list[str]:
    """Runs no report has adopted yet: a variant that a later experiment reuses stays under the report that
    first reported it, so earlier report runs keep their children."""
    if runs.empty:
        return []
    parent = runs.get("tags.mlflow.parentRunId", pd.Series(None, index=runs.index))
    return list(runs.loc[parent.isna(), "run_id"])


def write_plots(study: report.Study, history: pd.DataFrame, plots: Path):
    """Long CSVs (one row per variant and x) that dvc.yaml's plots read without naming any variant."""
    psnr = plots / "psnr"
    psnr.mkdir(parents=True, exist_ok=True)
    for old in psnr.glob("*.csv"):
        old.unlink()
    for dataset in study.datasets():
        table = study.table(dataset).stack().rename("psnr").reset_index()
        table.to_csv(psnr / f"{dataset}.csv", index=False, float_format="%.4f")
    history[["variant", "epoch", "val_psnr"]].to_csv(plots / "val_psnr.csv", index=False, float_format="%.4f")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--metrics", required=True, help="folder of metrics/eval/<variant>.json and .tsv")
    parser.add_argument("--models", required=True, help="folder of the variants' model folders")
    parser.add_argument("--data", required=True, help="the prepared data folder (figures render test images)")
    parser.add_argument("--out", required=True, help="the report folder")
    parser.add_argument("--headline", required=True, help="compact metrics JSON for dvc exp show")
    args = parser.parse_args()
    params = load_params()
    runtime = runtime_settings(params)
    variants = list(params["variants"])
    settings = params.get("report") or {}
    metrics_dir, models, out = Path(args.metrics), Path(args.models), Path(args.out)
    study = report.Study(
        scores=report.load_scores(metrics_dir, variants),
        per_image=report.load_per_image(metrics_dir, variants),
        replicates=settings.get("replicates") or {},
    )
    summaries = report.load_summaries(models, variants)
    history = report.load_history(models, variants)
    (out / "figures").mkdir(parents=True, exist_ok=True)
    for old in (out / "figures").glob("*.png"):
        old.unlink()
    prepared = PreparedData(args.data)
    validation = validation_words(params)
    # report.figures: false skips the rendered figures (the smoke profiles, whose models are untrained)
    captions = figures.make_figures(study, params, models, prepared, out / "figures") if settings["figures"] else {}
    if not history.empty:
        captions["training.png"] = report.plot_training(
            history, out / "figures" / "training.png", validation=validation
        )
    write_plots(study, history, out / "plots")
    Path(args.headline).parent.mkdir(parents=True, exist_ok=True)
    Path(args.headline).write_text(json.dumps(report.headline(study), indent=2) + "\n")

    tracking = runtime["tracking"]
    run_ids = [r for r in summaries.get("mlflow_run_id", pd.Series(dtype=str)).dropna()]
    tracker = Tracker(enabled=tracking["enabled"], experiment=tracking["experiment"], run_name="report", stage="report")
    link = tracker.experiment_link()
    runs = variant_runs(run_ids, tracking["enabled"])
    ctx = Context(
        profile=settings.get("profile", "unnamed"),
        encoder=params["model"]["encoder"]["name"],
        revision=git_revision(repo_root())[:12],
        sources=data_sources(params, prepared),
        timings=timings(summaries, eval_times(runs)),
        encoders=encoders(params),
        validation=validation,
        figures=captions,
        mlflow_link=(
            f"`mlflow ui --backend-store-uri sqlite:///mlflow.db`, then open "
            f"<http://127.0.0.1:5000/{link}> (the runs table: one child run per variant under this report's "
            "run; tick two or more and press **Compare**, or group by the `dvc_experiment` tag to set two "
            "`dvc exp` runs side by side)"
        )
        if link
        else "",
        variants=params["variants"],
    )
    pages = write_pages(out, study, ctx, summaries)

    tracker.adopt(orphans(runs))
    tracker.log_params({"profile": ctx.profile, "variants": ",".join(variants)})
    tracker.log_metrics(report.headline(study))
    for dataset in study.datasets():
        tracker.log_table(
            study.table(dataset).rename(columns=lambda s: f"x{s}").reset_index(), f"tables/psnr_{dataset}.json"
        )
        for other in ("bicubic", "metasr"):
            frame = report.comparison(study, dataset, other)
            if not frame.empty:
                tracker.log_table(frame, f"tables/liif_vs_{other}_{dataset}.json")
        diffs = report.differences(study, dataset, list(report.ABLATIONS))
        if not diffs.empty:
            tracker.log_table(diffs.reset_index(), f"tables/ablations_{dataset}.json")
    sized = report.size_varied(study)
    if not sized.empty:
        tracker.log_table(sized, "tables/size_varied.json")
    tracker.log_artifacts(out / "figures", artifact_path="figures")
    for path in pages.values():
        tracker.log_artifact(path, artifact_path="pages")
    tracker.end()
    print(f"report -> {pages['README']} ({len(pages)} pages, {len(captions)} figures)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
