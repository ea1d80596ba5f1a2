"""MLflow tracking that never breaks a pipeline stage.

The store is a SQLite file and an artifact folder at absolute paths under the
repository root; under ``dvc exp run --temp`` or ``--queue`` the stage runs in a
temporary copy, so the root comes from ``DVC_ROOT`` and every experiment logs
into the same store. Any tracking error is printed once, as one line, and
tracking is then switched off for the rest of the stage: the DVC outputs are
still written. MLflow's own logging (database set-up notices, SQLAlchemy
tracebacks) is kept quiet while the tracker talks to it.

The store is created (or a half-created one repaired) under an ``flock`` on
``mlflow.db.lock`` beside it, so parallel stages never race to build its tables:
``liif repro`` creates it once before its jobs start (``create_store``), and every
stage takes the same lock anyway. Each open run leaves a marker under
``mlartifacts/.open-runs/`` naming its process; a stage that starts closes, as
KILLED, the runs of processes that died without ending them.

The experiment is tagged ``mlflow.experimentKind = custom_model_development``,
MLflow 3's mark of a model-training experiment (an untagged one counts as a
GenAI project wherever MLflow reads the tag). MLflow 3.17's UI picks its GenAI
or training views from a switch of its own instead, so the link the report
prints (``Tracker.experiment_link``) also sets that switch.
"""

import atexit
import contextlib
import fcntl
import json
import logging
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from liif.config.params import load_params
from liif.config.schema import runtime_settings
from liif.errors import UserError

if TYPE_CHECKING:  # pandas comes with the pipeline extra, as MLflow does; only the run look-ups need it
    import pandas as pd

# The experiment tag by which MLflow 3 tells a model-training experiment from a GenAI one.
KIND_TAG, TRAINING_KIND = "mlflow.experimentKind", "custom_model_development"


def repo_root() -> Path:
    return Path(os.environ.get("DVC_ROOT") or Path.cwd()).resolve()


def store_paths(root: Path | None = None) -> tuple[str, str]:
    root = root or repo_root()
    return f"sqlite:///{root / 'mlflow.db'}", (root / "mlartifacts").as_uri()


class StoreError(UserError):
    """An MLflow store this code cannot create or repair; the message names the file and the fix."""


STORE_LOCK = "mlflow.db.lock"  # beside mlflow.db: held while the store is created, migrated or repaired
OPEN_RUNS = Path("mlartifacts") / ".open-runs"  # one marker per open run: not a DVC output, never hashed


@contextlib.contextmanager
def store_lock(root: Path):
    """Exclusive ``flock`` on ``mlflow.db.lock``: the kernel frees it when its holder dies, however it dies."""
    root.mkdir(parents=True, exist_ok=True)
    fd = os.open(root / STORE_LOCK, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _tables(database: Path) -> set[str]:
    with contextlib.closing(sqlite3.connect(database, timeout=60)) as db:
        return {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def _repair_leftovers(database: Path):
    """Alembic's scratch tables left by a migration that died (``_alembic_tmp_<table>``): dropped, or renamed
    back where the migration had already dropped the original. Only under ``store_lock``: no migration runs."""
    tables = _tables(database)
    with contextlib.closing(sqlite3.connect(database, timeout=60)) as db, db:
        for scratch in sorted(t for t in tables if t.startswith("_alembic_tmp_")):
            original = scratch.removeprefix("_alembic_tmp_")
            if original in tables:
                db.execute(f'DROP TABLE "{scratch}"')
            else:
                db.execute(f'ALTER TABLE "{scratch}" RENAME TO "{original}"')


def _holds_runs(database: Path) -> bool:
    if "runs" not in _tables(database):
        return False
    with contextlib.closing(sqlite3.connect(database, timeout=60)) as db:
        return db.execute("SELECT COUNT(*) FROM runs").fetchone()[0] > 0


def _open_store(uri: str, artifacts: str, database: Path):
    """MLflow's SQLite store, created or finished under ``store_lock``: a half-created store without runs is
    started afresh, one with runs has its migration rerun; what cannot be repaired is one ``StoreError``."""
    from mlflow.store.db.utils import _upgrade_db
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    def engine():
        return SqlAlchemyStore._get_or_create_engine(uri)

    if database.is_file():
        _repair_leftovers(database)
    try:
        return SqlAlchemyStore(uri, artifacts)
    except Exception as first:  # noqa: BLE001 - a half-created store: repaired below or reported
        engine().dispose()
        _repair_leftovers(database)
        try:
            if _holds_runs(database):
                _upgrade_db(engine())
            else:  # nothing tracked yet: nothing to lose by building it again
                with contextlib.closing(sqlite3.connect(database, timeout=60)) as db, db:
                    for table in _tables(database):
                        db.execute(f'DROP TABLE IF EXISTS "{table}"')
            engine().dispose()
            return SqlAlchemyStore(uri, artifacts)
        except Exception as e:  # noqa: BLE001
            reason = _reason(e) or _reason(first)
            raise StoreError(
                f"{database}: a half-migrated MLflow store ({reason}); back it up and run "
                f"`mlflow db upgrade sqlite:///{database}`, or move it away to start a new one"
            ) from None


def ensure_store(root: Path, experiment: str):
    """The store under ``root`` with its tables at MLflow's schema and ``experiment`` in it, made by one process
    at a time: parallel stages creating a fresh store lost tracking (``table experiments already exists``) or
    broke it for good (``table _alembic_tmp_tags already exists`` at every later start)."""
    from mlflow.entities import ExperimentTag

    database = root / "mlflow.db"
    if database.exists() and not database.is_file():  # MLflow would retry for about 100 s, then fail
        raise StoreError(f"{database} is not a SQLite file; move it away to track runs")
    uri, artifacts = store_paths(root)
    with store_lock(root):
        store = _open_store(uri, artifacts, database)
        found = store.get_experiment_by_name(experiment)
        if found is None:
            store.create_experiment(
                experiment, artifact_location=artifacts, tags=[ExperimentTag(KIND_TAG, TRAINING_KIND)]
            )
        elif KIND_TAG not in found.tags:  # a store made before the tag (a kind set in the UI stays)
            store.set_experiment_tag(found.experiment_id, ExperimentTag(KIND_TAG, TRAINING_KIND))


def create_store(settings: dict | None = None) -> bool:
    """Create the MLflow store before parallel jobs start (``liif repro``); ``settings`` is the runtime.tracking
    section, read from params.yaml when None. Nothing when tracking is off; a failure is one warning line (each
    stage then says why it tracks nothing), never a stop."""
    try:
        if settings is None:
            settings = runtime_settings(load_params())["tracking"]
        if not settings["enabled"]:
            return False
        import mlflow  # noqa: F401 - before quieting: importing it configures its loggers

        with _quiet_mlflow():
            ensure_store(repo_root(), settings["experiment"])
        return True
    except Exception as e:  # noqa: BLE001 - the stages report params errors; tracking never stops a pipeline
        print(f"warning: MLflow store not created: {type(e).__name__}: {_reason(e)}", file=sys.stderr)
        return False


def _reason(error: Exception) -> str:
    """The line of an error worth showing (SQLAlchemy's ``(sqlite3.OperationalError) ...``, not its SQL)."""
    lines = [line for line in str(error).splitlines() if line.strip()]
    return next((line for line in lines if re.search(r"\(\w+(\.\w+)*Error\)", line)), lines[0] if lines else "")


def _started(pid: int) -> str | None:
    """When a process started (clock ticks since boot, /proc), to tell it from a later one given its PID."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _alive(pid: int, started: str | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return started is None or _started(pid) in (None, started)


def mark_open(root: Path, run_id: str, stage: str):
    """Name the process holding ``run_id`` open, so a later stage can end the run if this process dies."""
    folder = root / OPEN_RUNS
    folder.mkdir(parents=True, exist_ok=True)
    info = {"run_id": run_id, "pid": os.getpid(), "started": _started(os.getpid()), "host": socket.gethostname()}
    (folder / f"{run_id}.json").write_text(json.dumps({**info, "stage": stage}) + "\n")


def unmark(root: Path, run_id: str | None):
    if run_id:
        (root / OPEN_RUNS / f"{run_id}.json").unlink(missing_ok=True)


def stale_runs(root: Path) -> list[str]:
    """Runs left open by processes of this host that are gone (killed): their markers are removed."""
    folder, host, stale = root / OPEN_RUNS, socket.gethostname(), []
    for marker in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            info = json.loads(marker.read_text())
            run_id, pid = str(info["run_id"]), int(info["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            marker.unlink(missing_ok=True)  # unreadable: it can name no run
            continue
        if info.get("host") == host and pid != os.getpid() and not _alive(pid, info.get("started")):
            stale.append(run_id)
            marker.unlink(missing_ok=True)
    return stale


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

    def __init__(
        self,
        *,
        enabled: bool,
        experiment: str,
        run_name: str,
        run_id: str | None = None,
        stage: str = "",
        system_metrics: float = 0,
    ):
        """``system_metrics``: seconds between MLflow's samples of CPU, memory and GPU use (0: none)."""
        self.run_id = None
        self.enabled = enabled
        self.root = repo_root()
        if not enabled:
            return
        try:
            import mlflow  # before quieting: importing it configures its loggers

            self.mlflow = mlflow
        except Exception as e:  # noqa: BLE001 - tracking must never stop training
            self._disable(e)
            return
        with _quiet_mlflow():
            self._start(experiment=experiment, run_name=run_name, run_id=run_id, stage=stage, system=system_metrics)

    def _start(self, *, experiment: str, run_name: str, run_id: str | None, stage: str, system: float):
        mlflow = self.mlflow
        try:
            root = self.root = repo_root()
            uri, _ = store_paths(root)
            self._retry(lambda: ensure_store(root, experiment))
            mlflow.set_tracking_uri(uri)
            mlflow.set_experiment(experiment)
            for stale in stale_runs(root):  # runs of killed stages, so none shows as running forever
                self.close_stale(stale, status="KILLED")
            tags = {
                "git_revision": git_revision(root),
                "dvc_experiment": os.environ.get("DVC_EXP_NAME", "workspace"),
                "dvc_baseline": os.environ.get("DVC_EXP_BASELINE_REV", ""),
                "stage": os.environ.get("DVC_STAGE", stage),
                "variant": run_name,
            }
            if system:
                mlflow.set_system_metrics_sampling_interval(system)
            run = self._retry(
                lambda: mlflow.start_run(
                    run_id=run_id, run_name=None if run_id else run_name, tags=tags, log_system_metrics=bool(system)
                )
            )
            self.run_id = run.info.run_id
            mark_open(root, self.run_id, tags["stage"] or run_name)
            # Registered after MLflow's own exit hook, so it runs first: a stage that stops before ending its run
            # (Ctrl-C, a runner's SIGINT, an error) would otherwise have MLflow close it as FINISHED.
            atexit.register(self._end_unfinished)
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
        print(f"warning: MLflow tracking disabled: {type(error).__name__}: {_reason(error)}", file=sys.stderr)
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

    def log_metrics(self, metrics: dict, step: int | None = None, model_id: str | None = None):
        """Metrics of the run; with ``model_id`` also of that logged model (the UI's models view shows them)."""
        clean = {k.replace("@", "_"): float(v) for k, v in metrics.items() if v is not None}
        self._call(lambda: self.mlflow.log_metrics(clean, step=step, model_id=model_id))

    def log_datasets(self, datasets: list[dict]):
        """The data the run read, each ``{name, split, path, digest}`` (``path``: its manifest; ``split``: the
        splits read, as "train, val"): MLflow's dataset inputs, which the UI lists per run and which tell two runs
        on different data apart by digest."""

        def log():
            from mlflow.data.dataset_source_registry import resolve_dataset_source
            from mlflow.data.meta_dataset import MetaDataset

            for d in datasets:
                source = resolve_dataset_source(str(Path(d["path"]).resolve()))
                dataset = MetaDataset(source=source, name=d["name"], digest=d["digest"])
                context = "training" if "train" in d["split"].split(", ") else "validation"
                self.mlflow.log_input(dataset, context=context, tags={"split": d["split"]})

        self._call(log)

    def log_model(self, path: str | Path, *, name: str, params: dict, metrics: dict) -> str | None:
        """``path`` (a checkpoint) as an MLflow logged model of this run with ``params`` and ``metrics``, so the
        UI's models view compares variants; returns its id (None when tracking is off)."""
        found = []

        def log():
            flat = {k: str(v)[:500] for k, v in flatten(params).items()}
            model = self.mlflow.initialize_logged_model(
                name=name, source_run_id=self.run_id, params=flat, model_type="liif-repro checkpoint"
            )
            self.mlflow.MlflowClient().log_model_artifact(model.model_id, str(path))
            self.mlflow.finalize_logged_model(model.model_id, "READY")
            found.append(model.model_id)

        self._call(log)
        if found:
            self.log_metrics(metrics, model_id=found[0])
        return found[0] if found else None

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
        if self.enabled:  # ended: nothing left for a later stage to close
            unmark(self.root, self.run_id)
        self.ended = True

    def _end_unfinished(self):
        if self.run_id and not getattr(self, "ended", False):
            self.end(status="KILLED")

    def end_on_signal(self):
        """A SIGTERM or SIGINT ends this run KILLED at once, then stops the process as the signal would have."""

        def stop(signum, frame):
            self.end(status="KILLED")
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)

        if self.run_id:
            for signum in (signal.SIGTERM, signal.SIGINT):
                signal.signal(signum, stop)


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
