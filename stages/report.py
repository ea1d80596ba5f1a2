"""Stage report: reports/ (README.md, one page per research question, figures, dvc plots data), the compact
headline metrics for ``dvc exp show``, and an MLflow run named ``report`` holding the same tables and figures."""

import argparse
import sys
from pathlib import Path

import pandas as pd

from liif import tracking
from liif.config.params import load_params
from liif.config.roles import study_roles
from liif.config.schema import runtime_settings
from liif.config.variants import check_params
from liif.data.layout import PreparedData
from liif.errors import run_stage
from liif.study import figures, report
from liif.study.pages import run_context, write_pages


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--metrics", required=True, help="folder of metrics/eval/<variant>.json and .tsv")
    parser.add_argument("--models", required=True, help="folder of the variants' model folders")
    parser.add_argument("--data", required=True, help="the prepared data folder (figures render test images)")
    parser.add_argument("--out", required=True, help="the report folder")
    parser.add_argument("--headline", required=True, help="compact metrics JSON for dvc exp show")
    parser.add_argument("--curves", help="a learning-curve study's table (experiments/learning-curves), for RQ3")
    args = parser.parse_args()
    params, models, out, prepared = load_params(), Path(args.models), Path(args.out), PreparedData(args.data)
    params = check_params(params)
    tracking_settings, roles = runtime_settings(params)["tracking"], study_roles(params)
    report.refuse_diverged(models, list(roles.of))
    study = report.load_study(Path(args.metrics), roles)
    summaries, history = report.load_summaries(models, list(roles.of)), report.load_history(models, list(roles.of))
    validation = report.validation_words(params["train"])
    captions = figures.report_charts(study, history, out / "figures", validation=validation)
    if params["report"]["figures"]:  # false in the smoke profiles, whose models are untrained
        captions |= figures.render_figures(
            roles, study.datasets(), models=models, prepared=prepared, out=out / "figures", evaluation=params["eval"]
        )
    curves = pd.DataFrame()
    if args.curves:
        curves = report.size_varied_curves(report.load_curves(Path(args.curves)), roles)
    if not curves.empty:
        path = out / "figures" / "rq3_curves.png"
        captions[path.name] = figures.size_varied_curves_figure(curves, path, source=args.curves)
    report.write_plot_data(study, history, out / "plots")
    headline = report.write_headline(study, Path(args.headline))

    tracker = tracking.report_tracker(tracking_settings)
    tracker.end_on_signal()  # a killed report leaves no run RUNNING (a SIGKILL's is closed at the next start)
    runs = tracking.variant_runs(list(summaries.get("mlflow_run_id", pd.Series()).dropna()), enabled=tracker.enabled)
    link, revision = tracking.ui_instructions(tracker), tracking.git_revision(tracking.repo_root())[:12]
    seconds = tracking.eval_times(runs)
    ctx = run_context(
        params,
        prepared,
        summaries,
        seconds,
        figures=captions,
        mlflow_link=link,
        revision=revision,
        curves=curves,
        curves_source=args.curves or "",
    )
    pages = write_pages(out, study, ctx, summaries)
    tracker.adopt(tracking.orphans(runs))
    run_params = {"profile": ctx.profile, "variants": ",".join(roles.of)}
    tables, folder = report.tables(study), out / "figures"
    tracking.log_report(
        tracker, params=run_params, metrics=headline, tables=tables, figures=folder, pages=list(pages.values())
    )
    print(f"report -> {pages['README']} ({len(pages)} pages, {len(captions)} figures)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(run_stage("report", main))
