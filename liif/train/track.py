"""The MLflow run of a training, on rank 0 alone (the store itself is ``liif.tracking``).

A training's run starts with its configuration and the datasets it reads (name, split, manifest digest), samples
CPU, memory and GPU use (``runtime.tracking.system_metrics``), logs every epoch (loss, validation PSNR, lr, seconds,
the process's peak memory), and ends FINISHED with ``epoch-last.pth`` as an MLflow logged model (``evaluate``
adds its scores to it), or FAILED when the run diverges. ``mlflow-run.txt`` in the model folder names the run in
progress: a kill before the run ends leaves it, and the next start closes that run as KILLED. A resumed
training continues the run its checkpoint names.
"""

import math
import resource
import sys
from pathlib import Path

import torch

from liif.config.variants import config_hash
from liif.files import LAST, RUN_MARKER
from liif.tracking import Tracker


def start_tracking(
    config: dict, *, out_dir: Path, tracking: dict | None, run_id: str | None, ranks, datasets: list[dict] = ()
) -> Tracker:
    """The MLflow run (rank 0 alone): ``run_id``'s when resuming, else a new one that logs the configuration and
    ``datasets`` (``{name, split, path, digest}`` each, see ``Tracker.log_datasets``).
    ``mlflow-run.txt`` names the run in progress; a kill before the first epoch leaves it RUNNING, and the
    next start closes it as KILLED."""
    tracking = tracking or {"enabled": False, "experiment": ""}
    tracker = Tracker(
        enabled=tracking["enabled"] and ranks.main,
        experiment=tracking["experiment"],
        run_name=config["variant"],
        run_id=run_id,
        system_metrics=tracking.get("system_metrics", 0),
    )
    marker = out_dir / RUN_MARKER
    if ranks.main and marker.is_file():
        tracker.close_stale(marker.read_text().strip(), status="KILLED")
    if ranks.main and tracker.run_id:
        marker.write_text(tracker.run_id + "\n")
    if run_id is None:
        tracker.log_params(_identity(config))
        tracker.log_datasets(list(datasets))
    return tracker


def peak_memory(device) -> dict:
    """The training process's peak resident memory so far (and the GPU's peak allocation on CUDA), in MB."""
    peak = {"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}  # Linux reports KiB
    if torch.device(device).type == "cuda":
        peak["cuda_peak_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    return peak


def log_epoch(tracker: Tracker, record: dict, *, variant: str, device="cpu"):
    """An epoch's MLflow metrics and its line on stderr."""
    metrics = {"train_loss": record["loss"], "val_psnr": record["val_psnr"], "lr": record["lr"]}
    metrics.update(epoch_seconds=record["seconds"], **peak_memory(device))
    tracker.log_metrics(metrics, step=record["epoch"])
    print(
        f"{variant} epoch {record['epoch']}: loss {record['loss']:.4f}, val PSNR {record['val_psnr']:.2f} dB, "
        f"{record['seconds']:.1f} s",
        file=sys.stderr,
    )


def end_tracking(tracker: Tracker, *, out_dir: Path, config: dict, history: list, device="cpu") -> str | None:
    """The run ended: the last checkpoint becomes its logged model, with the run's time, peak memory and best
    validation PSNR, and no run is left in progress. Returns the model's id (None without tracking)."""
    metrics = {"train_seconds": sum(h["seconds"] for h in history), **peak_memory(device)}
    if history:
        metrics["best_val_psnr"] = max(h["val_psnr"] for h in history)
    model_id = tracker.log_model(out_dir / LAST, name=config["variant"], params=_identity(config), metrics=metrics)
    tracker.end()
    (out_dir / RUN_MARKER).unlink(missing_ok=True)
    return model_id


def _identity(config: dict) -> dict:
    return {"model": config["model"], "train": config["train"], "config_hash": config_hash(config)}


def fail_tracking(tracker: Tracker, *, out_dir: Path, epoch: int, loss: float):
    """The run diverged at ``epoch``: its loss (when a number) is logged and the run ends FAILED."""
    if math.isfinite(loss):
        tracker.log_metrics({"train_loss": loss}, step=epoch)
    tracker.end(status="FAILED")
    (out_dir / RUN_MARKER).unlink(missing_ok=True)  # the run ended: nothing left to close


def track_untrained(config: dict, tracking: dict, *, checkpoint: Path) -> tuple[str | None, str | None]:
    """A run for a model with nothing to learn (bicubic): its model and parameterless checkpoint (a logged model,
    so the models view lists it beside the trained ones), ended at once; returns the run's and the model's ids."""
    tracker = Tracker(enabled=tracking["enabled"], experiment=tracking["experiment"], run_name=config["variant"])
    tracker.log_params({"model": config["model"]})
    model_id = tracker.log_model(checkpoint, name=config["variant"], params=_identity(config), metrics={})
    tracker.end()
    return tracker.run_id, model_id
