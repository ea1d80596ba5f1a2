"""Training per spec section 3: L1 on normalised RGB, Adam, MultiStepLR, validation every epoch.

``train_variant`` trains one resolved variant from the prepared data; ``fit``
is the loop itself, on any pair of training and validation sets. It writes
into its output folder, atomically, after every epoch:
``epoch-last.pth`` (weights plus optimizer, scheduler and history),
``epoch-best.pth`` (best validation PSNR) and, every ``save_every`` epochs,
``epoch-<n>.pth``. Rerun after a kill, it resumes from ``epoch-last.pth`` and
ends with the same weights as a run that never stopped (data are a function
of seed, epoch and index; see ``liif.train.patches``). A checkpoint written under
another configuration, or from other training code or data (``train_inputs``),
is never resumed: the run starts over and says so. So when DVC re-runs
``train@v`` because, say, ``liif/images.py`` changed, the model is retrained.

Nothing is deleted before it is replaced: the files of such a run (its checkpoints, ``history.tsv``,
``summary.json``, ``diverged.json``) are moved into ``superseded/<config hash>-<inputs>/`` (``run_key``)
and come back, to resume exactly where they stopped, when that configuration runs again (a rejected
change, then a revert). Once the new run has saved its first epoch, the moved-aside runs are deleted.

A run that diverges (``divergence``: a non-finite loss, a loss above ``LOSS_CEILING``, or a loss level over
``EXPLOSION_FACTOR`` times the run's lowest: an epoch's loss when an epoch holds ``WINDOW_SAMPLES`` samples or
more, else the median of the last epochs that hold that many, so that a few-sample epoch's noise never stops
a healthy run) stops with ``DivergedError`` before saving that epoch:
``epoch-last.pth`` stays the last good epoch, the MLflow run ends FAILED, and ``diverged.json`` tells
evaluation to refuse the model (``liif.eval.scores.diverged``) until a run saves an epoch again.

Batches come from a DataLoader with ``runtime.workers`` processes; under
``torchrun`` (``runtime.nproc``) every process trains on its share of each
batch (``liif.train.distributed``). Mixed precision (``train.amp``) is part of a
variant's identity, since it changes the numbers; ``torch.compile`` and
channels-last (``runtime.compile``, ``runtime.channels_last``) are not.
"""

import contextlib
import hashlib
import json
import math
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from liif.config.schema import AMP_CHOICES
from liif.config.variants import config_hash
from liif.data.layout import PreparedData
from liif.device import resolve_device, resolve_workers
from liif.errors import UserError
from liif.files import atomic_write
from liif.models import build_model
from liif.models.checkpoint import read_checkpoint, save_checkpoint
from liif.tracking import Tracker
from liif.train import distributed
from liif.train.patches import EpochBatches, make_training_sets

# The autocast dtype of each train.amp mode, named in liif.config.schema.AMP_CHOICES; fp32 runs without autocast.
AMP_DTYPES = {name: getattr(torch, dtype) if dtype else None for name, dtype in AMP_CHOICES.items()}
RUN_MARKER = "mlflow-run.txt"  # names the MLflow run in progress (see start_tracking)
DIVERGED_MARKER = "diverged.json"  # a diverged run's record; read by liif.eval.scores.diverged (same name there)
SUPERSEDED = "superseded"  # superseded/<run key>/: another configuration's run, kept until this one saves an epoch
RUN_FILES = ("epoch-*.pth", "history.tsv", "summary.json", DIVERGED_MARKER)  # what belongs to one run
LAST = "epoch-last.pth"  # the resume point

# Divergence (see ``divergence``). Healthy L1 on normalised RGB starts below about 1 and falls noisily: on
# 11 healthy 100-epoch runs of the default profile an epoch's loss rose at most 1.33x over the epoch before
# and 1.59x over the lowest before it (tests/test_divergence.py holds the noisiest); runs that diverged went
# 0.47 -> 14.6 (lr 0.05: 31x), 0.07 -> 6.2 (a stretched schedule: 88x) and to 1.27e27 (lr 1000). An epoch of
# few samples is a noisy mean: one photograph at batch 1 (1 sample an epoch) swings 0.16 to 0.66 while it
# learns, so its loss level is the median of the last epochs holding WINDOW_SAMPLES samples; on the healthy
# few-sample runs of tests/data/few-sample-curves.json that median rose at most 1.5x over its lowest.
EXPLOSION_FACTOR = 4.0  # a loss level above this many times the run's lowest level: diverged
WINDOW_SAMPLES = 64  # the samples a loss level averages over at least (the default's 72 an epoch: one epoch)
LOSS_CEILING = 10.0  # ... or above this at all: L1 against targets in [-1, 1] is about 0.5 for a model predicting 0


class DivergedError(UserError):
    """Training diverged; the message is one line naming the variant, the epoch, the loss and what to change."""


def grad_scaler(amp_dtype, device: torch.device):
    """The gradient scaler fp16 autocast needs (its small range underflows gradients); None otherwise."""
    return torch.amp.GradScaler(device.type) if amp_dtype is torch.float16 else None


def make_loader(
    dataset,
    *,
    batch_size: int,
    seed: int,
    shuffle: bool,
    workers: int,
    pin_memory: bool = False,
    ranks: distributed.Ranks | None = None,
):
    """A DataLoader whose batches are a pure function of (seed, epoch): ``workers`` processes make them
    ahead of the training step (0: in this process), and the weights do not depend on how many."""
    ranks = ranks or distributed.Ranks()
    sampler = EpochBatches(
        len(dataset), batch_size=batch_size, seed=seed, shuffle=shuffle, rank=ranks.rank, world=ranks.world
    )
    extra = {"persistent_workers": True, "prefetch_factor": 4} if workers else {}
    return torch.utils.data.DataLoader(
        dataset, batch_sampler=sampler, num_workers=workers, pin_memory=pin_memory, **extra
    )


def make_loaders(train_set, val_set, *, batch_size: int, seed: int, workers: int | str, device, ranks):
    """The training loader (this rank's share of every batch) and, on rank 0 alone, the validation loader;
    ``workers`` is ``runtime.workers`` (``auto``: chosen for the device and number of ranks)."""
    workers, pin = resolve_workers(workers, device, ranks.world), device.type == "cuda"
    train_loader = make_loader(
        train_set, batch_size=batch_size, seed=seed, shuffle=True, workers=workers, pin_memory=pin, ranks=ranks
    )
    if not ranks.main:
        return train_loader, None
    val_loader = make_loader(val_set, batch_size=batch_size, seed=seed, shuffle=False, workers=workers, pin_memory=pin)
    return train_loader, val_loader


def train_step(model, batch: dict, optimizer, *, amp_dtype=None, scaler=None, weight: float | None = None):
    """One optimisation step: ``model(inp, coord, cell)`` under autocast when ``amp_dtype`` is set, L1
    against ``gt`` (times ``weight``: a rank's share of a distributed batch), backward, optimizer step
    (through ``scaler`` for fp16). Returns the unweighted loss."""
    with torch.autocast(batch["inp"].device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
        pred = model(batch["inp"], batch["coord"], batch["cell"])
        loss = torch.nn.functional.l1_loss(pred.float(), batch["gt"])
    scaled = loss * weight if weight is not None else loss
    optimizer.zero_grad(set_to_none=True)
    if scaler:
        scaler.scale(scaled).backward()
        scaler.step(optimizer)
        scaler.update()
    else:
        scaled.backward()
        optimizer.step()
    return loss


def train_one_epoch(
    model, loader, optimizer, *, epoch: int, device, amp_dtype=None, scaler=None, channels_last=False, ranks, desc=""
) -> tuple[float, float]:
    """One pass over ``loader`` at ``epoch``, a ``train_step`` per batch. Returns the epoch's mean loss over every
    rank's share and the learning rate it trained at (the scheduler steps after). A single process stops at
    the first non-finite step loss, which makes the mean non-finite (``divergence``)."""
    loader.batch_sampler.set_epoch(epoch)
    global_sizes, pin = loader.batch_sampler.global_sizes(), device.type == "cuda"
    began, total, count = time.perf_counter(), 0.0, 0
    bar = tqdm(loader, desc=desc, unit="batch", leave=False, disable=not ranks.main)
    for step, batch in enumerate(bar):
        batch = {k: v.to(device, non_blocking=pin) for k, v in batch.items()}
        if channels_last:
            batch["inp"] = batch["inp"].contiguous(memory_format=torch.channels_last)
        # DDP averages gradients over ranks: weight each share by its size, so the result is the
        # gradient of the whole batch's mean loss whatever the number of processes.
        weight = len(batch["inp"]) * ranks.world / global_sizes[step] if ranks.world > 1 else None
        loss = train_step(model, batch, optimizer, amp_dtype=amp_dtype, scaler=scaler, weight=weight).item()
        total += loss * len(batch["inp"])
        count += len(batch["inp"])
        if not math.isfinite(loss) and ranks.world == 1:
            break  # diverged: nothing after can bring the mean back (ranks go on in step, and stop together)
        bar.set_postfix(
            loss=f"{total / count:.4f}", samples_s=f"{count * ranks.world / (time.perf_counter() - began):.1f}"
        )
    bar.close()
    if ranks.world > 1:  # the epoch's mean loss over every rank's share
        sums = torch.tensor([total, count], dtype=torch.float64, device=device)  # NCCL reduces GPU tensors
        torch.distributed.all_reduce(sums)
        total, count = sums.tolist()
    return total / max(count, 1), optimizer.param_groups[0]["lr"]


def psnr_normalised(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """Per-sample RGB PSNR of normalised predictions, clamped to [0, 1] (validation, spec 3.1)."""
    pred = (pred * 0.5 + 0.5).clamp(0, 1)
    gt = gt * 0.5 + 0.5
    mse = (pred - gt).pow(2).flatten(1).mean(1)
    return -10 * torch.log10(mse.clamp_min(1e-12))


@torch.no_grad()
def validate(model, loader, *, device) -> float:
    model.eval()
    scores = []
    for batch in loader:
        batch = {k: v.to(device) for k, v in batch.items()}
        scores.append(psnr_normalised(model(batch["inp"], batch["coord"], batch["cell"]), batch["gt"]).cpu())
    model.train()
    return torch.cat(scores).mean().item()


def build_training(config: dict, *, device, amp_dtype=None, channels_last=False):
    """(model, optimizer, scheduler, scaler) of a resolved variant: the model initialised from ``train.seed``,
    Adam, MultiStepLR and, for fp16, the gradient scaler."""
    t = config["train"]
    torch.manual_seed(t["seed"])
    model = build_model(config["model"]).to(device).train()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=t["lr"])
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=t["milestones"], gamma=t["gamma"])
    return model, optimizer, scheduler, grad_scaler(amp_dtype, device)


def wrap_model(model, *, device, ranks, compile_model=False):
    """The module the training steps call: ``model`` under DDP across ranks, compiled when asked (the weights
    stay ``model``'s)."""
    if ranks.world > 1:
        cuda = device.type == "cuda"
        model = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if cuda else None)
    if compile_model:
        model = torch.compile(model)
    return model


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


def _resumable(out_dir: Path, metadata: dict) -> dict | None:
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


def _settle(out_dir: Path):
    """(rank 0) This run has saved an epoch: the moved-aside runs of other configurations and a stale
    ``diverged.json`` (a fixed recipe replaces the run that diverged) go."""
    shutil.rmtree(out_dir / SUPERSEDED, ignore_errors=True)
    (out_dir / DIVERGED_MARKER).unlink(missing_ok=True)


def resume(out_dir: Path, model, optimizer, scheduler, scaler, *, config: dict, metadata: dict, ranks):
    """(history, best, next epoch, MLflow run id) from ``epoch-last.pth`` when it belongs to this run (also
    when it was moved aside; see ``_resumable``); otherwise training starts over."""
    raw = _resumable(out_dir, metadata) if ranks.main else None
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
        save_checkpoint(out_dir / "epoch-best.pth", model=model, train_state=state, metadata=best)
    if save_every and epoch % save_every == 0:
        snapshot = {**metadata, "kept": f"snapshot every {save_every} epochs"}
        save_checkpoint(out_dir / f"epoch-{epoch}.pth", model=model, train_state=state, metadata=snapshot)
    save_checkpoint(out_dir / "epoch-last.pth", model=model, train_state=state, metadata=metadata)  # resume point
    _write_history(state["history"], out_dir)


def loss_window(samples: int) -> int:
    """The epochs a loss level is the median of: enough to hold ``WINDOW_SAMPLES`` of ``samples`` an epoch."""
    return max(1, math.ceil(WINDOW_SAMPLES / max(samples, 1)))


def divergence(loss: float, losses: list[float], *, samples: int) -> str | None:
    """How an epoch of mean loss ``loss`` over ``samples`` samples, after epochs of mean losses ``losses``,
    diverged ("is not finite", "is above ...", "... is over ..."), or None for a healthy epoch: a non-finite
    loss, a loss above ``LOSS_CEILING``, or a loss level above ``EXPLOSION_FACTOR`` times the lowest level
    before it. The level is the median loss of the last ``loss_window(samples)`` epochs: the epoch's own loss
    when it holds ``WINDOW_SAMPLES`` samples or more, a median when a single epoch is too noisy to judge."""
    if not math.isfinite(loss):
        return "is not finite"
    if loss > LOSS_CEILING:
        return f"is above {LOSS_CEILING:g} (a model predicting 0 scores about 0.5 on colours in [-1, 1])"
    k = loss_window(samples)
    if len(losses) < k:  # a level needs a full window now and one before it
        return None
    series = np.asarray([*losses, loss], dtype=np.float64)
    levels = np.median(np.lib.stride_tricks.sliding_window_view(series, k), axis=1)
    now, lowest = float(levels[-1]), float(levels[:-1].min())
    if now <= EXPLOSION_FACTOR * lowest:
        return None
    if k == 1:
        return f"is over {EXPLOSION_FACTOR:g}x the lowest epoch loss so far ({lowest:.4g})"
    return (
        f"(median of the last {k} epochs {now:.4g}, {samples} samples each) is over {EXPLOSION_FACTOR:g}x "
        f"the lowest such median so far ({lowest:.4g})"
    )


def remedy(config: dict) -> str:
    """What to change in a recipe that diverged."""
    t = config["train"]
    fix = (
        f"lower train.lr (now {t['lr']:g}) or decay it sooner (train.milestones {t['milestones']}, "
        f"train.gamma {t['gamma']:g})"
    )
    if t.get("amp") == "fp16":
        fix += ", or train with train.amp: bf16 or fp32"
    return f"{fix}, then rerun `dvc repro train@{config['variant']}`"


def stop_diverged(config: dict, out_dir: Path, *, epoch: int, loss: float, rule: str, metadata: dict, tracker, ranks):
    """Stop a run whose epoch ``epoch`` diverged (every rank calls it): that epoch is not saved, so
    ``epoch-last.pth`` stays the last good one; rank 0 writes ``diverged.json`` and ends the MLflow run
    FAILED. Raises ``DivergedError``, whose message is the one line the train stage prints."""
    kept = f"epoch-last.pth stays at epoch {epoch - 1}" if epoch > 1 else "no epoch was saved"
    message = f"{config['variant']} diverged at epoch {epoch}: loss {loss:.4g} {rule}; {remedy(config)} ({kept})"
    if ranks.main:
        record = {
            "variant": config["variant"],
            "config_hash": metadata["config_hash"],
            "inputs": metadata["inputs"],
            "epoch": epoch,
            "loss": loss if math.isfinite(loss) else str(loss),  # JSON has no NaN or infinity
            "rule": rule,
            "remedy": remedy(config),
            "last_good_epoch": epoch - 1,
        }
        with atomic_write(out_dir / DIVERGED_MARKER) as f:
            f.write((json.dumps(record, indent=2) + "\n").encode())
        if math.isfinite(loss):
            tracker.log_metrics({"train_loss": loss}, step=epoch)
        tracker.end(status="FAILED")
        (out_dir / RUN_MARKER).unlink(missing_ok=True)  # the run ended: nothing left to close
    distributed.stop()
    raise DivergedError(message)


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
    tracker.log_artifact(out_dir / "epoch-last.pth", artifact_path="checkpoint")
    tracker.end()
    (out_dir / RUN_MARKER).unlink(missing_ok=True)


def _write_history(history: list[dict], out_dir: Path):
    lines = ["epoch\tloss\tval_psnr\tlr\tseconds"]
    lines += [f"{h['epoch']}\t{h['loss']:.6f}\t{h['val_psnr']:.4f}\t{h['lr']:.3e}\t{h['seconds']:.2f}" for h in history]
    (out_dir / "history.tsv").write_text("\n".join(lines) + "\n")


def _finish(out_dir: Path, config: dict, history: list, best: float, run_id: str | None) -> dict:
    _write_history(history, out_dir)
    summary = {
        "variant": config["variant"],
        "epochs": len(history),
        "final_loss": history[-1]["loss"] if history else None,
        "best_val_psnr": best if history else None,
        "train_seconds": sum(h["seconds"] for h in history),
        "mlflow_run_id": run_id,
        "config_hash": config_hash(config),
    }
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def train_inputs(config: dict, prepared: PreparedData) -> str:
    """A fingerprint of what the weights depend on besides the configuration: the training code (the
    source of every loaded ``liif`` module, which is what ``dvc.yaml`` lists for the stage) and the
    training data (the manifests of the datasets the recipe reads)."""
    digest = hashlib.sha256()
    for name in sorted(m for m in sys.modules if m == "liif" or m.startswith("liif.")):
        source = getattr(sys.modules[name], "__file__", None)
        if source:
            digest.update(name.encode() + b"\0" + Path(source).read_bytes())
    t = config["train"]
    for dataset in sorted({t["dataset"], t.get("val_dataset") or t["dataset"]}):
        digest.update(dataset.encode() + b"\0" + prepared.manifest(dataset).read_bytes())
    return digest.hexdigest()[:16]


def train_variant(config: dict, *, prepared: PreparedData, out_dir: str | Path, runtime: dict) -> dict:
    """Train (or resume, or skip when finished) one variant; returns the summary written to ``summary.json``.

    ``runtime`` is the ``params.yaml`` runtime section: how to run, never what is computed.
    """
    out_dir = Path(out_dir)
    if runtime["threads"]:
        torch.set_num_threads(runtime["threads"])
    tracking = runtime["tracking"]
    if config["train"] is None:  # Bicubic: nothing to learn, a parameterless checkpoint for evaluate
        out_dir.mkdir(parents=True, exist_ok=True)
        metadata = {"variant": config["variant"], "config_hash": config_hash(config)}
        save_checkpoint(
            out_dir / "epoch-last.pth",
            model=build_model(config["model"]),
            train_state={"epoch": 0, "history": []},
            metadata=metadata,
        )
        tracker = Tracker(enabled=tracking["enabled"], experiment=tracking["experiment"], run_name=config["variant"])
        tracker.log_params({"model": config["model"]})
        tracker.end()
        return _finish(out_dir, config, [], 0.0, tracker.run_id)
    train_set, val_set = make_training_sets(config, prepared)
    return fit(
        config,
        train_set,
        val_set,
        out_dir,
        device=runtime["device"],
        save_every=runtime["save_every"],
        workers=runtime["workers"],
        compile_model=runtime["compile"],
        channels_last=runtime["channels_last"],
        tracking=tracking,
        inputs=train_inputs(config, prepared),
    )


def fit(
    config: dict,
    train_set,
    val_set,
    out_dir: str | Path,
    *,
    device: str = "auto",
    save_every: int = 0,
    workers: int | str = 0,
    compile_model: bool = False,
    channels_last: bool = False,
    tracking: dict | None = None,
    inputs: str = "",
) -> dict:
    """Train a resolved variant: resume from ``epoch-last.pth`` of the same configuration and ``inputs`` (code and
    data, see ``train_inputs``) or start over; under torchrun each rank trains its share, rank 0 alone writes."""
    out_dir, t = Path(out_dir), config["train"]
    device = resolve_device(device)
    ranks = distributed.start(device)
    device = distributed.device_for(ranks, device)
    if ranks.main:
        _prepare_out_dir(out_dir)
    # epochs: what `liif info` and `liif evaluate` measure a checkpoint's epoch against (unfinished or not)
    metadata = {
        "variant": config["variant"],
        "config_hash": config_hash(config),
        "inputs": inputs,
        "epochs": t["epochs"],
    }
    amp_dtype = AMP_DTYPES[t.get("amp", "fp32")]

    model, optimizer, scheduler, scaler = build_training(
        config, device=device, amp_dtype=amp_dtype, channels_last=channels_last
    )
    history, best, start_epoch, run_id = resume(
        out_dir, model, optimizer, scheduler, scaler, config=config, metadata=metadata, ranks=ranks
    )
    losses = [h["loss"] for h in history]  # every rank's: the divergence check must stop them all together
    tracker = start_tracking(config, out_dir=out_dir, tracking=tracking, run_id=run_id, ranks=ranks)
    train_loader, val_loader = make_loaders(
        train_set, val_set, batch_size=t["batch_size"], seed=t["seed"], workers=workers, device=device, ranks=ranks
    )
    step_model = wrap_model(model, device=device, ranks=ranks, compile_model=compile_model)

    for epoch in range(start_epoch, t["epochs"] + 1):
        began = time.perf_counter()
        loss, lr = train_one_epoch(
            step_model,
            train_loader,
            optimizer,
            epoch=epoch,
            device=device,
            amp_dtype=amp_dtype,
            scaler=scaler,
            channels_last=channels_last,
            ranks=ranks,
            desc=f"{config['variant']} epoch {epoch}/{t['epochs']}",
        )
        scheduler.step()
        rule = divergence(loss, losses, samples=len(train_set))
        if rule:
            stop_diverged(
                config, out_dir, epoch=epoch, loss=loss, rule=rule, metadata=metadata, tracker=tracker, ranks=ranks
            )
        losses.append(loss)
        if not ranks.main:
            continue
        val_psnr = validate(model, val_loader, device=device)
        history.append(
            {"epoch": epoch, "loss": loss, "val_psnr": val_psnr, "lr": lr, "seconds": time.perf_counter() - began}
        )
        is_best, best = val_psnr > best, max(best, val_psnr)
        state = train_state(optimizer, scheduler, scaler, history=history, best=best, run_id=tracker.run_id)
        save_epoch(out_dir, model, state=state, metadata=metadata, is_best=is_best, save_every=save_every)
        _settle(out_dir)
        log_epoch(tracker, history[-1], variant=config["variant"])

    distributed.stop()
    if not ranks.main:
        return {}
    if history:  # also a finished run moved back: it has saved its epochs
        _settle(out_dir)
    end_tracking(tracker, out_dir=out_dir)
    return _finish(out_dir, config, history, best, tracker.run_id)


def _prepare_out_dir(out_dir: Path):
    """Create ``out_dir``; remove what a kill during a checkpoint save left in it (DVC would hash it)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in out_dir.glob(".*.tmp"):
        stale.unlink()
