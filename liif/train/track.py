"""The MLflow run of a training, on rank 0 alone (the store itself is ``liif.tracking``).

A training's run starts with its configuration, logs every epoch, and ends FINISHED with ``epoch-last.pth``
as its artifact, or FAILED when the run diverges. ``mlflow-run.txt`` in the model folder names the run in
progress: a kill before the run ends leaves it, and the next start closes that run as KILLED. A resumed
training continues the run its checkpoint names.
"""

import math
import sys
from pathlib import Path

from liif.config.variants import config_hash
from liif.files import LAST, RUN_MARKER
from liif.tracking import Tracker


def start_tracking(config: dict, *, out_dir: Path, tracking: dict | None, run_id: str | None, ranks) -> Tracker:
    """The MLflow run (rank 0 alone): ``run_id``'s when resuming, else a new one that logs the configuration.
    ``mlflow-run.txt`` names the run in progress; a kill before the first epoch leaves it RUNNING, and the
    next start closes it as KILLED."""
    tracking = tracking or {"enabled": False, "experiment": ""}
    tracker = Tracker(
        enabled=tracking["enabled"] and ranks.main,
        experiment=tracking["experiment"],
        run_name=config["variant"],
        run_id=run_id,
    )
    marker = out_dir / RUN_MARKER
    if ranks.main and marker.is_file():
        tracker.close_stale(marker.read_text().strip(), status="KILLED")
    if ranks.main and tracker.run_id:
        marker.write_text(tracker.run_id + "\n")
    if run_id is None:
        tracker.log_params({"model": config["model"], "train": config["train"], "config_hash": config_hash(config)})
    return tracker


def log_epoch(tracker: Tracker, record: dict, *, variant: str):
    """An epoch's MLflow metrics and its line on stderr."""
    metrics = {"train_loss": record["loss"], "val_psnr": record["val_psnr"], "lr": record["lr"]}
    tracker.log_metrics(metrics, step=record["epoch"])
    print(
        f"{variant} epoch {record['epoch']}: loss {record['loss']:.4f}, val PSNR {record['val_psnr']:.2f} dB, "
        f"{record['seconds']:.1f} s",
        file=sys.stderr,
    )


def end_tracking(tracker: Tracker, *, out_dir: Path):
    """The run ended: the last checkpoint becomes its artifact, and no run is left in progress."""
    tracker.log_artifact(out_dir / LAST, artifact_path="checkpoint")
    tracker.end()
    (out_dir / RUN_MARKER).unlink(missing_ok=True)


def fail_tracking(tracker: Tracker, *, out_dir: Path, epoch: int, loss: float):
    """The run diverged at ``epoch``: its loss (when a number) is logged and the run ends FAILED."""
    if math.isfinite(loss):
        tracker.log_metrics({"train_loss": loss}, step=epoch)
    tracker.end(status="FAILED")
    (out_dir / RUN_MARKER).unlink(missing_ok=True)  # the run ended: nothing left to close


def track_untrained(config: dict, tracking: dict) -> str | None:
    """A run for a model with nothing to learn (bicubic): its model, ended at once; returns its id."""
    tracker = Tracker(enabled=tracking["enabled"], experiment=tracking["experiment"], run_name=config["variant"])
    tracker.log_params({"model": config["model"]})
    tracker.end()
    return tracker.run_id
