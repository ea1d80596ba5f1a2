"""MLflow tracking that never breaks a pipeline stage.

The store is a SQLite file and an artifact folder at absolute paths under the
repository root; under ``dvc exp run --temp`` or ``--queue`` the stage runs in a
temporary copy, so the root comes from ``DVC_ROOT`` and every experiment logs
into the same store. Any tracking error is printed once, as one line, and
tracking is then switched off for the rest of the stage: the DVC outputs are
still written. MLflow's own logging (database set-up notices, SQLAlchemy
tracebacks) is kept quiet while the tracker talks to it.

The experiment is tagged ``mlflow.experimentKind = custom_model_development``,
MLflow 3's mark of a model-training experiment (an untagged one counts as a
GenAI project wherever MLflow reads the tag). MLflow 3.17's UI picks its GenAI
or training views from a switch of its own instead, so the link the report
prints (``Tracker.experiment_link``) also sets that switch.
"""

import contextlib
import logging
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pandas comes with the pipeline extra, as MLflow does; only the run look-ups need it
    import pandas as pd

# The experiment tag by which MLflow 3 tells a model-training experiment from a GenAI one.
KIND_TAG, TRAINING_KIND = "mlflow.experimentKind", "custom_model_development"


def repo_root() -> Path:
    return Path(os.environ.get("DVC_ROOT") or Path.cwd()).resolve()


def store_paths(root: Path | None = None) -> tuple[str, str]:
    root = root or repo_root()
    return f"sqlite:///{root / 'mlflow.db'}", (root / "mlartifacts").as_uri()


def git_revision(root: Path) -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in d.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


@contextlib.contextmanager
def _quiet_mlflow():
    loggers = [logging.getLogger(name) for name in ("mlflow", "alembic", "sqlalchemy")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


class Tracker:
    """One MLflow run; ``run_id`` continues an existing run (resumed training, evaluation)."""

    def __init__(self, *, enabled: bool, experiment: str, run_name: str, run_id: str | None = None, stage: str = ""):
        self.run_id = None
        self.enabled = enabled
        if not enabled:
            return
        try:
            import mlflow  # before quieting: importing it configures its loggers

            self.mlflow = mlflow
        except Exception as e:  # noqa: BLE001 - tracking must never stop training
            self._disable(e)
            return
        with _quiet_mlflow():
            self._start(experiment=experiment, run_name=run_name, run_id=run_id, stage=stage)

    def _start(self, *, experiment: str, run_name: str, run_id: str | None, stage: str):
        mlflow = self.mlflow
        try:
            root = repo_root()
            uri, artifacts = store_paths(root)
            database = root / "mlflow.db"
            if database.exists() and not database.is_file():  # MLflow would retry for about 100 s, then fail
                raise OSError(f"{database} is not a SQLite file; move it away to track runs")
            mlflow.set_tracking_uri(uri)
            found = mlflow.get_experiment_by_name(experiment)
            if found is None:
                kind = {KIND_TAG: TRAINING_KIND}
                self._retry(lambda: mlflow.create_experiment(experiment, artifact_location=artifacts, tags=kind))
            elif KIND_TAG not in found.tags:  # a store made before the tag (a kind set in the UI stays)
                self._retry(
                    lambda: mlflow.MlflowClient().set_experiment_tag(found.experiment_id, KIND_TAG, TRAINING_KIND)
                )
            mlflow.set_experiment(experiment)
            tags = {
                "git_revision": git_revision(root),
                "dvc_experiment": os.environ.get("DVC_EXP_NAME", "workspace"),
                "dvc_baseline": os.environ.get("DVC_EXP_BASELINE_REV", ""),
                "stage": os.environ.get("DVC_STAGE", stage),
                "variant": run_name,
            }
            run = self._retry(lambda: mlflow.start_run(run_id=run_id, run_name=None if run_id else run_name, tags=tags))
            self.run_id = run.info.run_id
        except Exception as e:  # noqa: BLE001 - tracking must never stop training
            self._disable(e)

    @staticmethod
    def _retry(fn, attempts: int = 5):
        for i in range(attempts):
            try:
                return fn()
            except Exception as e:  # SQLite "database is locked" under parallel runs
                if "locked" not in str(e) or i == attempts - 1:
                    raise
                time.sleep(0.5 * 2**i)

    def _disable(self, error: Exception):
        lines = [line for line in str(error).splitlines() if line.strip()]
        reason = next((line for line in lines if re.search(r"\(\w+(\.\w+)*Error\)", line)), lines[0] if lines else "")
        print(f"warning: MLflow tracking disabled: {type(error).__name__}: {reason}", file=sys.stderr)
        self.enabled = False

    def _call(self, fn):
        if not self.enabled:
            return
        try:
            with _quiet_mlflow():
                self._retry(fn)
        except Exception as e:  # noqa: BLE001
            self._disable(e)

    def close_stale(self, run_id: str, status: str = "KILLED"):
        """End a run that a killed process left RUNNING (it would show as running forever)."""

        def terminate():
            client = self.mlflow.MlflowClient()
            try:
                run = client.get_run(run_id)
            except self.mlflow.exceptions.MlflowException:  # not in this store (it was deleted): nothing to end
                return
            if run.info.status == "RUNNING":
                client.set_terminated(run_id, status=status)

        if run_id != self.run_id:
            self._call(terminate)

    def log_params(self, params: dict):
        flat = {k: str(v)[:500] for k, v in flatten(params).items()}
        self._call(lambda: self.mlflow.log_params(flat))

    def log_metrics(self, metrics: dict, step: int | None = None):
        clean = {k.replace("@", "_"): float(v) for k, v in metrics.items() if v is not None}
        self._call(lambda: self.mlflow.log_metrics(clean, step=step))

    def log_artifact(self, path: str | Path, artifact_path: str | None = None):
        self._call(lambda: self.mlflow.log_artifact(str(path), artifact_path=artifact_path))

    def log_table(self, frame, artifact_file: str):
        """A DataFrame as an MLflow table artifact (shown in the UI's artifact view)."""
        self._call(lambda: self.mlflow.log_table(frame.reset_index(drop=True), artifact_file=artifact_file))

    def log_artifacts(self, folder: str | Path, artifact_path: str | None = None):
        self._call(lambda: self.mlflow.log_artifacts(str(folder), artifact_path=artifact_path))

    def adopt(self, run_ids: list[str]):
        """Make the given runs children of this one (the UI nests them under it)."""

        def tag():
            client = self.mlflow.MlflowClient()
            for run_id in run_ids:
                try:
                    client.set_tag(run_id, "mlflow.parentRunId", self.run_id)
                except self.mlflow.exceptions.MlflowException:  # a run deleted from the store
                    pass

        if self.run_id:
            self._call(tag)

    def experiment_link(self) -> str:
        """Where the runs table of this run's experiment opens in ``mlflow ui`` (not the GenAI overview).

        MLflow 3.17's UI takes GenAI or model-training views from a switch of its own (GenAI unless the
        browser chose otherwise), not from the experiment's kind tag: ``workflowType`` sets it.
        """
        if not self.run_id:
            return ""
        found = []
        self._call(lambda: found.append(self.mlflow.get_run(self.run_id).info.experiment_id))
        return f"#/experiments/{found[0]}/runs?workflowType=machine_learning" if found else ""

    def end(self, status: str = "FINISHED"):
        self._call(lambda: self.mlflow.end_run(status=status))


def variant_runs(run_ids: list[str], *, enabled: bool) -> "pd.DataFrame":
    """The MLflow runs (a ``search_runs`` DataFrame) with these ids, from every experiment of the store.

    Empty when tracking is off, ``run_ids`` is empty or the store cannot be read: what callers take from
    these runs (evaluation times, nesting) is a courtesy.
    """
    import pandas as pd

    if not enabled or not run_ids:
        return pd.DataFrame()
    try:
        import mlflow

        with _quiet_mlflow():
            mlflow.set_tracking_uri(store_paths()[0])
            runs = mlflow.search_runs(search_all_experiments=True, max_results=5000)
    except Exception:  # noqa: BLE001 - timings and nesting are a courtesy
        return pd.DataFrame()
    return runs[runs["run_id"].isin(run_ids)] if not runs.empty else runs


def eval_times(runs: "pd.DataFrame") -> dict:
    """Variant name -> ``eval_seconds`` metric of its run ({} when no run logged one)."""
    if runs.empty or "metrics.eval_seconds" not in runs:
        return {}
    return dict(zip(runs["tags.variant"], runs["metrics.eval_seconds"]))


def orphans(runs: "pd.DataFrame") -> list[str]:
    """Runs no report has adopted yet: a variant that a later experiment reuses stays under the report that
    first reported it, so earlier report runs keep their children."""
    import pandas as pd

    if runs.empty:
        return []
    parent = runs.get("tags.mlflow.parentRunId", pd.Series(None, index=runs.index))
    return list(runs.loc[parent.isna(), "run_id"])


def report_tracker(settings: dict) -> Tracker:
    """The MLflow run named ``report`` of the report stage (``settings``: the runtime.tracking section)."""
    return Tracker(enabled=settings["enabled"], experiment=settings["experiment"], run_name="report", stage="report")


def ui_instructions(tracker: Tracker) -> str:
    """How to open this report's runs in ``mlflow ui``, in words ("" when tracking is off)."""
    link = tracker.experiment_link()
    if not link:
        return ""
    return (
        f"`mlflow ui --backend-store-uri sqlite:///mlflow.db`, then open <http://127.0.0.1:5000/{link}> (the runs "
        "table: one child run per variant under this report's run; tick two or more and press **Compare**, or group "
        "by the `dvc_experiment` tag to set two `dvc exp` runs side by side)"
    )


def log_report(tracker: Tracker, *, params: dict, metrics: dict, tables: dict, figures: Path, pages: list[Path]):
    """Log the report run's parameters, headline metrics, tables (MLflow's table view), figures and pages, and end it."""
    tracker.log_params(params)
    tracker.log_metrics(metrics)
    for name, frame in tables.items():
        tracker.log_table(frame, name)
    tracker.log_artifacts(figures, artifact_path="figures")
    for path in pages:
        tracker.log_artifact(path, artifact_path="pages")
    tracker.end()
