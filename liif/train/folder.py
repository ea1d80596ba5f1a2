"""A training's run folder (``models/<v>/``): checkpoints, history and summary, resume and superseded runs.

After every epoch rank 0 writes, atomically, ``epoch-last.pth`` (weights plus optimizer, scheduler and history),
``epoch-best.pth`` (best validation PSNR) and, every ``save_every`` epochs, ``epoch-<n>.pth``, then
``history.tsv``; a finished training also writes ``summary.json``. Rerun after a kill, a training resumes from
``epoch-last.pth`` when that file was written under the same configuration and ``inputs`` (code and data,
``liif.train.loop.train_inputs``); otherwise it starts over and says so.

Nothing is deleted before it is replaced: the files of such a run (its checkpoints, ``history.tsv``,
``summary.json``, ``diverged.json``) are moved into ``superseded/<config hash>-<inputs>/`` (``run_key``) and come
back, to resume exactly where they stopped, when that configuration runs again (a rejected change, then a
revert). Once the new run has saved its first epoch, the moved-aside runs are deleted (``settle``).
"""

import contextlib
import json
import math
import os
import shutil
import sys
from pathlib import Path

import torch

from liif.config.variants import config_hash
from liif.files import BEST, CHECKPOINTS, DIVERGED, HISTORY, LAST, SNAPSHOT, SUMMARY
from liif.models.checkpoint import read_checkpoint, save_checkpoint

SUPERSEDED = "superseded"  # superseded/<run key>/: another configuration's run, kept until this one saves an epoch
RUN_FILES = (CHECKPOINTS, HISTORY, SUMMARY, DIVERGED)  # what belongs to one run


def prepare_out_dir(out_dir: Path):
    """Create ``out_dir``; remove what a kill during a checkpoint save left in it (DVC would hash it)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in out_dir.glob(".*.tmp"):
        stale.unlink()


def run_key(metadata: dict) -> str:
    """The name of a run's folder under ``superseded/``: its configuration hash and inputs fingerprint."""
    return "-".join(str(part) for part in (metadata.get("config_hash") or "unknown", metadata.get("inputs")) if part)


def _move_run(src: Path, dst: Path):
    """Move the files of one run (``RUN_FILES``) from folder ``src`` into ``dst``, the resume point last: a kill
    mid-way leaves ``epoch-last.pth`` where it was, so the next start sees the same state and finishes the move."""
    files = {path for pattern in RUN_FILES for path in src.glob(pattern)}
    dst.mkdir(parents=True, exist_ok=True)
    for path in sorted(files, key=lambda path: (path.name == LAST, path.name)):
        os.replace(path, dst / path.name)


def _same_run(raw: dict, metadata: dict) -> bool:
    stored = raw.get("metadata") or {}
    return (stored.get("config_hash"), stored.get("inputs")) == (metadata["config_hash"], metadata["inputs"])


def resumable(out_dir: Path, metadata: dict) -> dict | None:
    """(rank 0) The raw ``epoch-last.pth`` this run resumes from, or None to start over.

    Another run's files are moved into ``superseded/<its run_key>/``; this run's, if an earlier start moved
    them there, come back."""
    last = out_dir / LAST
    if last.is_file():
        raw = read_checkpoint(last)
        if _same_run(raw, metadata):
            return raw
        stored = raw.get("metadata") or {}
        aside = out_dir / SUPERSEDED / run_key(stored)
        _move_run(out_dir, aside)
        print(
            f"{last} was written under configuration {stored.get('config_hash')} (not {metadata['config_hash']}) or "
            f"from other training code or data: starting over; that run waits in {aside} and resumes if its "
            "configuration runs again before this one saves an epoch",
            file=sys.stderr,
        )
    mine = out_dir / SUPERSEDED / run_key(metadata)
    if not (mine / LAST).is_file():
        return None
    raw = read_checkpoint(mine / LAST)
    if not _same_run(raw, metadata):
        return None
    _move_run(mine, out_dir)
    for folder in (mine, mine.parent):  # when empty
        with contextlib.suppress(OSError):
            folder.rmdir()
    print(f"{last}: moved back from {mine}", file=sys.stderr)
    return raw


def settle(out_dir: Path):
    """(rank 0) This run has saved an epoch: the moved-aside runs of other configurations and a stale
    ``diverged.json`` (a fixed recipe replaces the run that diverged) go."""
    shutil.rmtree(out_dir / SUPERSEDED, ignore_errors=True)
    (out_dir / DIVERGED).unlink(missing_ok=True)


def resume(out_dir: Path, model, optimizer, scheduler, scaler, *, config: dict, metadata: dict, ranks):
    """(history, best, next epoch, MLflow run id) from ``epoch-last.pth`` when it belongs to this run (also
    when it was moved aside; see ``resumable``); otherwise training starts over."""
    raw = resumable(out_dir, metadata) if ranks.main else None
    if ranks.world > 1:  # rank 0's file decides for every rank, also when machines do not share the folder
        shared = [raw]
        torch.distributed.broadcast_object_list(shared, src=0)
        raw = shared[0]
    state = (raw or {}).get("train_state") or {}
    if state.get("epoch", 0) <= 0:
        return [], -math.inf, 1, None
    model.load_state_dict(raw["state_dict"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    if scaler is not None and state.get("scaler"):  # fp16: the loss scale, so a resume skips the same steps
        scaler.load_state_dict(state["scaler"])
    if ranks.main:
        print(
            f"resuming {config['variant']} from {out_dir / LAST} (epoch {state['epoch']} of {config['train']['epochs']})",
            file=sys.stderr,
        )
    return state["history"], state["best_val_psnr"], state["epoch"] + 1, state.get("mlflow_run_id")


def train_state(optimizer, scheduler, scaler, *, history: list, best: float, run_id: str | None) -> dict:
    """What a checkpoint holds besides the weights: enough to resume as if the run had never stopped."""
    return {
        "epoch": history[-1]["epoch"],
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "scaler": scaler.state_dict() if scaler else None,
        "history": history,
        "best_val_psnr": best,
        "mlflow_run_id": run_id,
    }


def save_epoch(out_dir: Path, model, *, state: dict, metadata: dict, is_best: bool, save_every: int):
    """After an epoch (rank 0): ``epoch-best.pth`` when ``is_best``, ``epoch-<n>.pth`` every ``save_every``
    epochs, ``epoch-last.pth`` (the resume point) and ``history.tsv``."""
    epoch = state["epoch"]
    if is_best:  # "kept": why a file stops before the last epoch without its run being unfinished
        best = {**metadata, "kept": "best validation PSNR"}
        save_checkpoint(out_dir / BEST, model=model, train_state=state, metadata=best)
    if save_every and epoch % save_every == 0:
        snapshot = {**metadata, "kept": f"snapshot every {save_every} epochs"}
        save_checkpoint(out_dir / SNAPSHOT.format(epoch=epoch), model=model, train_state=state, metadata=snapshot)
    save_checkpoint(out_dir / LAST, model=model, train_state=state, metadata=metadata)  # resume point
    write_history(state["history"], out_dir)


def write_history(history: list[dict], out_dir: Path):
    """``history.tsv``: one line per epoch (the report's learning curves read it)."""
    lines = ["epoch\tloss\tval_psnr\tlr\tseconds"]
    lines += [f"{h['epoch']}\t{h['loss']:.6f}\t{h['val_psnr']:.4f}\t{h['lr']:.3e}\t{h['seconds']:.2f}" for h in history]
    (out_dir / HISTORY).write_text("\n".join(lines) + "\n")


def finish(
    out_dir: Path, config: dict, history: list, best: float, run_id: str | None, *, model_id: str | None = None
) -> dict:
    """The history and ``summary.json`` of a finished training (evaluation scores only such a training);
    ``model_id``: its MLflow logged model, to which ``evaluate`` adds the scores."""
    write_history(history, out_dir)
    summary = {
        "variant": config["variant"],
        "epochs": len(history),
        "final_loss": history[-1]["loss"] if history else None,
        "best_val_psnr": best if history else None,
        "train_seconds": sum(h["seconds"] for h in history),
        "mlflow_run_id": run_id,
        "mlflow_model_id": model_id,
        "config_hash": config_hash(config),
    }
    (out_dir / SUMMARY).write_text(json.dumps(summary, indent=2) + "\n")
    return summary
